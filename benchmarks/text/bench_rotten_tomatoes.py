"""Rotten Tomatoes fresh/rotten on the fixed shared split: baselines and the automl-tl search.

    python benchmarks/text/bench_rotten_tomatoes.py                       # everything
    python benchmarks/text/bench_rotten_tomatoes.py --methods tfidf,frozen
    python benchmarks/text/bench_rotten_tomatoes.py --methods engine --sizes 200 --time-budget 300

Data: /work/shared/data/rotten_tomatoes/{train.csv (2000; its first 200 rows = train_200.csv),
val.csv (500), test.csv (2000)}. Every method selects on val.csv and reports test.csv accuracy.

Methods (each (method, size) runs in its own process, so wall time and peak memory are its own):

* ``tfidf``  - TF-IDF (word 1-2 + char_wb 2-5) + logistic regression, C chosen on val
  (the peer recipe; the engine's own ``tfidf`` featurizer caps the vocabulary).
* ``frozen`` - frozen all-MiniLM-L6-v2 through this plugin (KerasHub, mean pooling, L2-normalised)
  + logistic regression, C chosen on val. Embeds train(2000)+val+test once for both sizes.
* ``engine`` - ``AutoTransfer(backbones=["minilm-l6"], trials=N, time_budget=S, seed=--seed)`` on
  train+val, with the validation split fixed to exactly val.csv (``split_column``), then
  ``score`` on test.csv.

Results: a Markdown table on stdout and ``--out`` (JSON, default benchmarks/text/results.json).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DATA = Path(os.environ.get("RT_DIR", "/work/shared/data/rotten_tomatoes"))
HERE = Path(__file__).resolve().parent


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _load():
    import pandas as pd

    train = pd.read_csv(DATA / "train.csv")
    val = pd.read_csv(DATA / "val.csv")
    test = pd.read_csv(DATA / "test.csv")
    t200 = pd.read_csv(DATA / "train_200.csv")
    assert t200.text.tolist() == train.text.tolist()[:200], "train_200 must be train's first rows"
    return {200: train.iloc[:200].reset_index(drop=True), 2000: train}, val, test


def _accuracy(y_true, y_pred) -> float:
    import numpy as np

    return float(np.mean(np.asarray(y_true) == np.asarray(y_pred)))


# ------------------------------------------------------------------------------------ jobs
def job_tfidf(size: int, args) -> list[dict]:
    """The peer recipe: TF-IDF (word 1-2 + char_wb 2-5, sublinear tf, no cap) + LR, C on val."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import FeatureUnion

    trains, val, test = _load()
    tr = trains[size]
    features = FeatureUnion([
        ("word", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)),
        ("char", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2))])
    xtr = features.fit_transform(tr.text.tolist())
    xva, xte = features.transform(val.text.tolist()), features.transform(test.text.tolist())
    best = None
    for C in (0.3, 1.0, 3.0, 10.0):
        clf = LogisticRegression(C=C, max_iter=2000, class_weight="balanced").fit(xtr, tr.label.tolist())
        score = _accuracy(val.label.tolist(), clf.predict(xva))
        if best is None or score > best[0]:
            best = (score, C, clf)
    acc = _accuracy(test.label.tolist(), best[2].predict(xte))
    return [{"method": "TF-IDF (word 1-2 + char_wb 2-5) + LR, C on val", "train": size,
             "val": round(best[0], 4), "test": round(acc, 4), "C": best[1]}]


def job_frozen(size: int, args) -> list[dict]:
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from automl_tl.batching import map_batches
    from automl_tl.plugin_manager import PluginManager

    trains, val, test = _load()
    pm = PluginManager(autoload=False)
    spec = pm.backbones.get("minilm-l6")
    weights = spec.resolve_weights()
    modality = pm.modalities.get("text")
    analysed = modality.analyse(trains[2000].text.tolist(), {}, spec, weights)
    cfg = analysed["input_config"]
    model = spec.build(weights, cfg, pooling="mean")
    adapter = spec.make_adapter(cfg, weights)

    def embed(texts):
        f = map_batches(model.predict_on_batch, texts, adapter, 64)   # compiled: ~2x eager
        return f / np.linalg.norm(f, axis=1, keepdims=True)

    t = time.perf_counter()
    Xtr, Xva, Xte = (embed(d.text.tolist()) for d in (trains[2000], val, test))
    embed_s = time.perf_counter() - t
    rate = (len(Xtr) + len(Xva) + len(Xte)) / embed_s
    rows = []
    for n in (200, 2000):
        ytr = trains[2000].label.to_numpy()[:n]
        best = None
        for C in (0.1, 0.3, 1, 3, 10, 30, 100):
            clf = LogisticRegression(C=C, max_iter=3000).fit(Xtr[:n], ytr)
            s = _accuracy(val.label, clf.predict(Xva))
            if best is None or s > best[0]:
                best = (s, C, clf)
        rows.append({"method": "frozen MiniLM-L6 (this plugin, mean pool, L2) + LR, C on val",
                     "train": n, "val": round(best[0], 4),
                     "test": round(_accuracy(test.label, best[2].predict(Xte)), 4), "C": best[1],
                     "sequence_length": cfg["sequence_length"],
                     "similarity": analysed["similarity"],
                     "embed_texts_per_s": round(rate, 1)})
    return rows


def job_engine(size: int, args) -> list[dict]:
    import pandas as pd

    from automl_tl import AutoTransfer

    trains, val, test = _load()
    tr = trains[size]
    frame = pd.concat([tr, val], ignore_index=True)
    n_train = len(tr)
    frame["split"] = ["train"] * n_train + ["val"] * (len(frame) - n_train)  # val.csv is the validation split
    with tempfile.TemporaryDirectory() as tmp:
        clf = AutoTransfer(backbones=["minilm-l6"], trials=args.trials, time_budget=args.time_budget,
                           seed=args.seed, run_dir=f"{tmp}/run", cache_dir=f"{tmp}/cache",
                           text_column="text", label_column="label", split_column="split",
                           report=False)
        t = time.perf_counter()
        clf.fit(frame)
        fit_s = time.perf_counter() - t
        acc = clf.score(test.text.tolist(), test.label.tolist())
        run = Path(clf.run_dir_)
        summary = json.loads((run / "summary.json").read_text())
        board = pd.read_csv(run / "leaderboard.csv")
    counts = summary.get("counts", {})
    strategies = board.groupby("strategy")["score"].max().round(4).to_dict() if "strategy" in board else {}
    return [{"method": f"automl-tl search (minilm-l6, trials<={args.trials}, budget {args.time_budget}s, seed {args.seed})",
             "train": size, "val": round(clf.best_score_, 4), "test": round(acc, 4),
             "best": clf.best_config_, "fit_s": round(fit_s, 1), "trials": counts,
             "best_val_by_strategy": strategies,
             "recommendation": summary.get("recommendation", {}).get("strategy"),
             "baseline_val": (summary.get("baseline") or {}).get("score")}]


JOBS = {"tfidf": job_tfidf, "frozen": job_frozen, "engine": job_engine}


# ------------------------------------------------------------------------------------ driver
def run_job(method: str, size: int, args) -> list[dict]:
    cmd = [sys.executable, __file__, "--_job", f"{method}:{size}", "--trials", str(args.trials),
           "--time-budget", str(args.time_budget), "--seed", str(args.seed)]
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t
    lines = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        sys.stderr.write(proc.stderr[-4000:])
        return [{"method": method, "train": size, "error": f"exit {proc.returncode}"}]
    payload = json.loads(lines[-1][len("RESULT "):])
    for row in payload["rows"]:
        row["wall_s"] = round(wall, 1)
        row["peak_mb"] = round(payload["peak_mb"])
    return payload["rows"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--methods", default="tfidf,frozen,engine")
    ap.add_argument("--sizes", default="200,2000")
    ap.add_argument("--trials", type=int, default=12)
    ap.add_argument("--time-budget", type=float, default=600.0)
    ap.add_argument("--seed", type=int, default=0, help="seed of the engine search")
    ap.add_argument("--out", default=str(HERE / "results.json"))
    ap.add_argument("--_job", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("AUTOML_TL_OFFLINE", "1")
    if args._job:
        method, size = args._job.split(":")
        rows = JOBS[method](int(size), args)
        print("RESULT " + json.dumps({"rows": rows, "peak_mb": _peak_mb()}, default=str), flush=True)
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    results = []
    for method in args.methods.split(","):
        for size in ([2000] if method == "frozen" else sizes):   # frozen does both sizes at once
            rows = run_job(method, size, args)
            for r in rows:
                print(json.dumps(r, default=str), flush=True)
            results += rows
    import platform

    meta = {"machine": f"{platform.machine()}, {os.cpu_count()} CPUs", "python": platform.python_version(),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "command": " ".join([Path(sys.executable).name] + sys.argv)}
    Path(args.out).write_text(json.dumps({"meta": meta, "results": results}, indent=2, default=str))
    print("\n| method | train | val acc | test acc | wall s | peak MB |\n|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['method']} | {r['train']} | {r.get('val', '')} | {r.get('test', r.get('error'))} | "
              f"{r.get('wall_s', '')} | {r.get('peak_mb', '')} |")


if __name__ == "__main__":
    main()
