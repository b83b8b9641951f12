"""``automl-tl report`` and ``automl-tl compare``: the reports of runs, written from their folders
(or from a shared search's storage)."""

from __future__ import annotations

from pathlib import Path

from automl_tl.cli._common import EXIT_OK


def add_parsers(sub) -> None:
    """The ``report`` and ``compare`` commands."""
    p = sub.add_parser("report", help="write report.html / report.md / report.json for a run",
                       description="Write a self-contained report.html, report.md and report.json "
                                   "for a run (finished, still running or interrupted).")
    p.add_argument("run_dir", help="a run directory (with --storage, any new or empty folder will do)")
    p.add_argument("--out", help="write the report files here instead of into RUN_DIR")
    p.add_argument("--storage", help="read the trials from this Optuna storage URL (the one the workers "
                                     "of a shared search use) and rebuild RUN_DIR's summary.json and "
                                     "leaderboard.csv from it first: any machine gets the same views")

    p = sub.add_parser("compare", help="compare runs of one task at different sizes",
                       description="Compare finished runs of one task fitted on different amounts of "
                                   "data (e.g. 100, 1 000 and all labelled items): which strategy won at "
                                   "each size (the empirical strategy table) and where the recommendation "
                                   "disagreed with the winner, as compare.html / compare.md / "
                                   "compare.json in --out.")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run directories of finished fits")
    p.add_argument("--out", default="runs/compare", help="output folder (default runs/compare)")


def cmd_report(args) -> int:
    from automl_tl.report import write_report

    storage = None
    if args.storage:
        storage = _rebuild_views(Path(args.run_dir), args.storage)
    from automl_tl.plugin_manager import get_plugin_manager

    # the run's summary describes its strategies; the registered ones describe what an older run does not
    paths = write_report(args.run_dir, args.out, storage=storage, strategies=get_plugin_manager().strategies)
    for kind, path in paths.items():
        print(f"{kind}: {path}")
    return EXIT_OK


def _rebuild_views(run_dir: Path, storage: str) -> str:
    """Rewrite ``run_dir``'s views from the study at ``storage``; its normalised URL."""
    import optuna

    from automl_tl.artifacts import write_views
    from automl_tl.errors import ConfigError
    from automl_tl.run_directory import check_run_dir
    from automl_tl.schema import STUDY_NAME
    from automl_tl.search import storage_url

    url = storage_url(run_dir, storage)
    try:
        optuna.logging.set_verbosity(optuna.logging.ERROR)
        study = optuna.load_study(study_name=STUDY_NAME, storage=optuna.storages.RDBStorage(url, skip_table_creation=True))
    except Exception as exc:  # noqa: BLE001 - bad URL, server down, no such study
        raise ConfigError(f"cannot read the search from {storage!r} ({type(exc).__name__}: {exc}); give the "
                          f"URL the workers were started with") from exc
    check_run_dir(run_dir)
    write_views(study, run_dir)
    return url


def cmd_compare(args) -> int:
    from automl_tl.report import write_comparison

    paths = write_comparison(args.run_dirs, args.out)
    for kind, path in paths.items():
        print(f"{kind}: {path}")
    return EXIT_OK


COMMANDS = {"report": cmd_report, "compare": cmd_compare}
