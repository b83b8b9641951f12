"""``automl-tl fit``: run (or resume) the search and say what it delivered."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from automl_tl.cli._common import (EXIT_OK, _add_data_options, _csv_list, _estimator, _non_negative_int,
                                   _positive_int, _time_budget)
from automl_tl.accelerator import PRECISIONS
from automl_tl.presets import DEFAULT_PRESET, PRESETS
from automl_tl.pruners import DEFAULT_PRUNER, PRUNERS


def add_parsers(sub) -> None:
    """The ``fit`` command."""
    p = sub.add_parser("fit", help="search strategies and hyperparameters; save the best model",
                       description="Run (or resume) the search. Writes to --run-dir: model.keras, "
                                   "config.json, labels.json, leaderboard.csv, summary.json, "
                                   "study.db and a report. Running the same command again resumes "
                                   "the study and loses no finished trial.")
    _add_data_options(p)
    b = p.add_argument_group("budget and search")
    b.add_argument("--preset", choices=tuple(PRESETS), metavar="{" + ",".join(PRESETS) + "}",
                   help="a budget, candidate set and strategy set in one word; the options below that "
                        "you give override it (--trials or --time-budget replaces its budget whole). "
                        + "; ".join(f"{p.name}: {p.description}" for p in PRESETS.values())
                        + f" (default {DEFAULT_PRESET}; docs/benchmarks.md has their measured times)")
    b.add_argument("--trials", type=_positive_int, help="total trials in the study (default: the preset's, 20 "
                                                        "for balanced; none when only --time-budget is given)")
    b.add_argument("--time-budget", type=_time_budget, metavar="DURATION",
                   help="the whole fit (profile, search, refit, saving) ends within this long, e.g. 90s, "
                        "20m, 2h, 1h30m (default: the preset's; none for balanced)")
    b.add_argument("--run-dir", "-o", help="where results go (default: runs/<dataset name>)")
    b.add_argument("--seed", type=int, default=0, help="seed for the split, sampler and training (default 0)")
    b.add_argument("--storage", help="Optuna storage URL (default: sqlite:///<run-dir>/study.db); with a "
                                     "database server (postgresql://user:pw@host/db, pip install "
                                     "'automl-tl[postgres]') any number of processes on any machines "
                                     "share one search and one --trials budget (docs/distributed.md)")
    b.add_argument("--metric", default="accuracy", choices=("accuracy", "balanced_accuracy", "macro_f1"),
                   help="validation metric to maximise (default accuracy)")
    b.add_argument("--strategies", type=_csv_list, metavar="S,...",
                   help="restrict the searched strategies (default: all registered; see "
                        "`automl-tl strategies`; fast: feature_extraction), e.g. feature_extraction,lp_ft")
    b.add_argument("--val-fraction", type=float, default=0.2, help="validation share (default 0.2)")
    b.add_argument("--batch-size", type=_batch_size, default=None, metavar="N|auto",
                   help="batch size of the backbones' passes (default auto: 32 on a CPU; on a GPU or TPU the "
                        "size a short probe finds fastest per backbone, fine-tuning at most 32); a number "
                        "overrides it")
    b.add_argument("--precision", choices=PRECISIONS, default="auto",
                   help="the backbones' arithmetic (default auto: bfloat16 where the device computes it well, "
                        "a GPU of compute capability 8.0 or more or a TPU; float32 elsewhere). bfloat16 on a "
                        "CPU is allowed: correct, but no faster than float32 there")
    b.add_argument("--cache-dir", help="embedding cache folder (default: $AUTOML_TL_CACHE_DIR or "
                                       "~/.cache/automl-tl/embeddings)")
    b.add_argument("--refit", action=argparse.BooleanOptionalAction, default=None,
                   help="retrain the selected configuration on all labelled data before delivering "
                        "it (default: on small and medium data, and whenever a --time-budget leaves "
                        "room); --no-refit delivers the model as the search trained it")
    b.add_argument("--ensemble", action=argparse.BooleanOptionalAction, default=None,
                   help="average the selected model with linear probes of the run (frozen or classical "
                        "features) when that improves it on validation: log-loss lower by 1%% at least, the "
                        "metric not lower (default on; --no-ensemble delivers one model)")
    b.add_argument("--warm-start", action=argparse.BooleanOptionalAction, default=None,
                   help="after the recommendation, also try what the searches of the nearest past tasks "
                        "selected (the knowledge base: $AUTOML_TL_KNOWLEDGE, default ~/.local/share/automl-tl/"
                        "knowledge.jsonl, plus the prior shipped with automl-tl); every finished fit adds "
                        "its own record there (default on; --no-warm-start ignores it)")
    b.add_argument("--compare-strategies", action=argparse.BooleanOptionalAction, default=None,
                   help="after the recommendation and the probes, try every strategy once on the "
                        "recommended backbone (or the best one that can be fine-tuned), so that the "
                        "report compares strategies on the same features (the demo and --preset best do)")
    b.add_argument("--patience", type=_non_negative_int, default=None, metavar="N",
                   help="stop when N trials in a row have not raised the top score by more than half "
                        "its standard error, or as soon as a trial scores a perfect 1.0 (default: the "
                        "preset's, 15 for balanced; 0: never stop early)")
    b.add_argument("--pruner", choices=PRUNERS, default=DEFAULT_PRUNER,
                   help="how fine-tuning trials are stopped early, epoch by epoch: median (below the median "
                        "of earlier trials at the same epoch), successive-halving (only the best third of "
                        "the trials goes on after their 2nd and 4th epochs), hyperband (successive "
                        "halving in brackets), none "
                        f"(default {DEFAULT_PRUNER}; docs/benchmarks.md compares them)")
    b.add_argument("--no-report", action="store_true", help="do not write report.html at the end")
    b.add_argument("--mlflow", metavar="URI", help="also log the fit to MLflow at this tracking URI (http://host:5000, "
                   "sqlite:///mlflow.db, a folder): one run, a nested run per trial, the model and the report "
                   "as artifacts; the same command again adds only what is missing; a server that is down is "
                   "one warning, not a failed fit (pip install 'automl-tl[mlflow]'; docs/deploy.md)")
    b.add_argument("--quiet", action="store_true", help="no progress bars")


def _batch_size(text: str) -> int | None:
    """``--batch-size``: ``auto`` (None) or a whole number of 1 or more."""
    if text.strip().lower() == "auto":
        return None
    try:
        return _positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"must be a whole number of 1 or more, or auto, not {text!r}") from None


def cmd_fit(args) -> int:
    est = _estimator(args, trials=args.trials, preset=args.preset, time_budget=args.time_budget, run_dir=args.run_dir,
                     seed=args.seed, storage=args.storage, metric=args.metric,
                     strategies=args.strategies, val_fraction=args.val_fraction,
                     batch_size=args.batch_size, precision=args.precision, cache_dir=args.cache_dir,
                     progress=not args.quiet, report=not args.no_report, refit=args.refit,
                     patience=args.patience, ensemble=args.ensemble, warm_start=args.warm_start,
                     pruner=args.pruner, compare_strategies=args.compare_strategies, tracking_uri=args.mlflow)
    est.fit(args.data, started=_process_started())
    _print_fit(est)
    return EXIT_OK


def _process_started() -> float | None:
    """When this process started, as a ``time.monotonic()`` value: the time budget's clock
    starts there, so the interpreter's start and the imports (18 s of a 1 minute budget on a
    loaded machine) are inside it. Linux: the start time in ``/proc/self/stat`` against the boot
    clock it counts from; None where that is not known (the clock starts at ``fit``)."""
    import time

    try:
        with open("/proc/self/stat", encoding="ascii", errors="replace") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()  # the command name may hold spaces and ')'
        ticks = int(fields[19])  # field 22, starttime: clock ticks after boot
        age = time.clock_gettime(time.CLOCK_BOOTTIME) - ticks / os.sysconf("SC_CLK_TCK")
        if 0 <= age < 86400 * 365:
            return time.monotonic() - age
    except (OSError, IndexError, ValueError, AttributeError):
        pass
    return None


#: a class the delivered model gets right less often than this on validation is named
WEAK_RECALL = 0.5


def _minority_note(predictions: Path, metric: str, imbalanced: bool) -> str | None:
    """On imbalanced data selected by accuracy, the classes the delivered model mostly misses on
    validation (val_predictions.csv), and the metric that weighs them (285 fresh + 15 rotten
    reviews: the model was right on 6 of the 15 rotten ones, and the run said nothing)."""
    if metric != "accuracy" or not imbalanced or not predictions.is_file():
        return None
    import pandas as pd

    from automl_tl.data import listed

    rows = pd.read_csv(predictions, dtype=str, keep_default_na=False)
    weak = []
    for label, group in rows.groupby("label"):
        right = int((group["predicted"] == label).sum())
        if right < WEAK_RECALL * len(group):
            weak.append(f"{right} of {len(group)} {label!r}")
    if not weak:
        return None
    return (f"the model gets {listed(weak, 5)} validation items "
            f"right: accuracy favours the larger classes; --metric balanced_accuracy (or macro_f1) "
            f"weighs every class alike")


def _print_fit(est) -> None:
    from automl_tl.schema import trial_counts

    n = trial_counts(est.study_.get_trials(deepcopy=False))
    extra = "".join(f", {k} {what}" for k, what in (
        (n["repeats"], "repeats not rerun"), (n["trailing"], "new heads on far-trailing features not tried"),
        (n["not_started"] - n["repeats"] - n["trailing"], "not started (no time left)")) if k)
    print(f"\nrun directory:  {est.run_dir_}")
    print(f"trials:         {n['complete']} complete, {n['pruned']} pruned, {n['fail']} failed{extra}")
    print(f"recommended:    {est.recommendation_.strategy} ({est.recommendation_.rule})")
    cfg = est.best_config_
    sel = est.selection_
    se = f" ± {sel.se:.4f}" if sel is not None and sel.se == sel.se else ""
    head = "linear head" if not cfg.get("head_units") else f"{cfg['head_units']}-unit head"
    print(f"selected:       trial {sel.trial if sel else '?'}: {cfg['backbone']} / {cfg['strategy']} / {head} "
          f"-> {est.metric} {est.best_score_:.4f}{se} ({est.delivered_.get('kind', '')})")
    if sel is not None and sel.trial != sel.top_trial:
        print(f"                top score {sel.top_score:.4f} (trial {sel.top_trial}) is within one "
              f"standard error: the simpler trial is delivered")
    if est.delivered_.get("refit_reason"):
        print(f"refit:          {est.delivered_['refit_reason']}")
    if est.delivered_.get("ensemble_reason"):
        print(f"ensemble:       {est.delivered_['ensemble_reason']}")
    if est.stop_.get("reason"):
        saved = est.stop_.get("seconds_saved")
        print(f"stopped:        {est.stop_['reason']}" + (f" ({saved:.0f} s saved)" if saved else ""))
    print(f"fit time:       {est.fit_seconds_:.0f} s")
    note = _minority_note(Path(est.run_dir_) / "val_predictions.csv", est.metric,
                          bool(getattr(est.profile_, "imbalanced", False)))
    if note:
        print(f"note:           {note}")
    if est.skipped_:
        print(f"skipped inputs: {len(est.skipped_)} (listed in summary.json)")
    print(f"model:          {Path(est.run_dir_) / 'model.keras'}")
    if (Path(est.run_dir_) / "report.html").exists():
        print(f"report:         {Path(est.run_dir_) / 'report.html'}")


COMMANDS = {"fit": cmd_fit}
