#!/usr/bin/env python
"""Frozen features of the audio backbones on non-speech sounds (and spoken digits), by logistic
regression, as ``frozen_lr`` in benchmarks/bench_vs_linear_probe.py does.

    .venv/bin/python benchmarks/audio/bench_sound_events.py                  # sfx8 and speech4
    .venv/bin/python benchmarks/audio/bench_sound_events.py --tasks sfx8 --per-class 40

Tasks:

* ``sfx8``: 8 classes of synthesised 1 s sounds (numpy, 44.1 kHz WAV): sine tone, square tone,
  white noise, low-passed ("brown") noise, click train, upward sweep, downward sweep, bird-like
  chirps, each with a random gain, onset, length and a background noise at 0-20 dB SNR. Training
  and test clips come from different random seeds and from interleaved, disjoint parameter
  ranges (e.g. the tones' frequencies of the test clips lie between those of the training ones);
* ``speech4``: espeak-ng spoken digits 0-3 split by voice (test voices never heard), the split of
  bench_vs_linear_probe.py's ``speech4``.

For each backbone: features through the plugin (its adapter at its default sample rate, 1.0 s),
standardised, ``LogisticRegressionCV`` (C from 1e-4 to 1e2, 5-fold CV on train), test accuracy.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import _common  # noqa: E402,F401 - sys.path and quiet TensorFlow
import numpy as np  # noqa: E402

RATE = 44100
CLASSES = ("sine", "square", "white-noise", "brown-noise", "clicks", "sweep-up", "sweep-down", "chirps")


def _param(rng, lo: float, hi: float, split: str, n_bins: int = 8, log: bool = False) -> float:
    """A value in [lo, hi] from the even (train) or odd (test) of ``n_bins`` interleaved bins."""
    k = 2 * int(rng.integers(n_bins // 2)) + (split == "test")
    u = (k + rng.random()) / n_bins
    return float(np.exp(np.log(lo) + u * np.log(hi / lo)) if log else lo + u * (hi - lo))


def _sound(kind: str, rng, split: str) -> np.ndarray:
    n = int(_param(rng, 0.4, 0.9, split) * RATE)
    t = np.arange(n) / RATE
    f = _param(rng, 150.0, 2500.0, split, log=True)
    if kind == "sine":
        x = np.sin(2 * np.pi * f * t)
    elif kind == "square":
        x = np.sign(np.sin(2 * np.pi * f * t)) * 0.6
    elif kind == "white-noise":
        x = rng.uniform(-1, 1, n)
    elif kind == "brown-noise":
        x = np.cumsum(rng.standard_normal(n))
        x = x - np.convolve(x, np.ones(401) / 401, mode="same")  # no drift
        x /= np.abs(x).max() + 1e-9
    elif kind == "clicks":
        x = np.zeros(n)
        period = int(RATE / _param(rng, 4.0, 40.0, split, log=True))
        x[::period] = 1.0
        x = np.convolve(x, np.exp(-np.arange(60) / 8.0), mode="same")
    elif kind in ("sweep-up", "sweep-down"):
        f0, f1 = f, f * _param(rng, 2.0, 6.0, split)
        if kind == "sweep-down":
            f0, f1 = f1, f0
        x = np.sin(2 * np.pi * (f0 * t + (f1 - f0) * t ** 2 / (2 * t[-1])))
    else:  # chirps: short up-glides repeated, like a bird
        x = np.zeros(n)
        length = int(_param(rng, 0.03, 0.09, split) * RATE)
        tc = np.arange(length) / RATE
        f0 = f * 1.5
        chirp = np.sin(2 * np.pi * (f0 * tc + f0 * tc ** 2 / tc[-1])) * np.hanning(length)
        for start in range(0, n - length, int(length * _param(rng, 1.5, 4.0, split))):
            x[start:start + length] += chirp
    fade = np.minimum(1.0, np.minimum(np.arange(n), np.arange(n)[::-1]) / (0.005 * RATE))
    out = np.zeros(RATE)
    onset = int(rng.integers(0, RATE - n + 1))
    out[onset:onset + n] = x * fade * 10 ** (_param(rng, -20.0, 0.0, split) / 20)
    snr = _param(rng, 0.0, 20.0, split)
    noise = rng.standard_normal(RATE)
    noise *= np.sqrt(np.mean(out[onset:onset + n] ** 2) / 10 ** (snr / 10)) / noise.std()
    return (0.9 * (out + noise) / (np.abs(out + noise).max() + 1e-9)).astype(np.float32)


def make_sfx(root: Path, per_class: int, seed: int = 0) -> dict:
    import soundfile as sf

    task = {"train_items": [], "train_labels": [], "test_items": [], "test_labels": []}
    for split, count, base in (("train", per_class, seed), ("test", max(per_class // 2, 10), seed + 1000)):
        rng = np.random.default_rng(base)
        for kind in CLASSES:
            (root / split / kind).mkdir(parents=True, exist_ok=True)
            for i in range(count):
                path = root / split / kind / f"{i:03d}.wav"
                sf.write(path, _sound(kind, rng, split), RATE)
                task[f"{split}_items"].append(str(path))
                task[f"{split}_labels"].append(kind)
    return task


def make_speech4(root: Path) -> dict:
    from automl_tl.spoken_digits import DEFAULT_VOICES, make_dataset

    voices = list(DEFAULT_VOICES)[:8]
    rows = make_dataset(root, voices=voices, speeds=[140, 175], pitches=[40, 60], digits=range(4))
    test = set(voices[-3:])
    task = {"train_items": [], "train_labels": [], "test_items": [], "test_labels": []}
    for r in rows:
        split = "test" if r["voice"] in test else "train"
        task[f"{split}_items"].append(str(root / r["path"]))
        task[f"{split}_labels"].append(str(r["label"]))
    return task


def frozen_lr(task: dict, backbones) -> list[dict]:
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from automl_tl.batching import map_batches
    from automl_tl.cache import feature_function
    from automl_tl.plugin_manager import get_plugin_manager

    pm = get_plugin_manager()
    rows = []
    for name in backbones:
        spec = pm.backbones.get(name)
        weights = spec.resolve_weights()
        input_config = {**dict(spec.default_input_config), "duration": 1.0}
        options = {k: v[0] for k, v in spec.options.items()}
        fn = feature_function(spec, weights, input_config, options)
        adapter = spec.make_adapter(input_config, weights, None)
        t0 = time.perf_counter()
        xtr = map_batches(fn, task["train_items"], adapter, 32)
        xte = map_batches(fn, task["test_items"], adapter, 32)
        seconds = time.perf_counter() - t0
        clf = make_pipeline(StandardScaler(), LogisticRegressionCV(Cs=np.logspace(-4, 2, 13), cv=5, max_iter=2000))
        clf.fit(xtr, task["train_labels"])
        acc = float(np.mean(clf.predict(xte) == np.asarray(task["test_labels"])))
        rows.append({"backbone": name, "dim": int(xtr.shape[1]), "test": round(acc, 4),
                     "features_s": round(seconds, 1)})
        print(f"  {name:18s} {acc:.3f}  ({xtr.shape[1]}-d, {seconds:.0f} s features)", flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", default="sfx8,speech4")
    ap.add_argument("--backbones", default="aisfx-cnn,mfcc,speech-embedding")
    ap.add_argument("--per-class", type=int, default=40, help="training clips per class (sfx8); test: half")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="write the results as JSON here")
    args = ap.parse_args()
    warnings.filterwarnings("ignore", category=FutureWarning)  # scikit-learn's coming defaults
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.tasks.split(","):
            task = make_sfx(Path(tmp) / name, args.per_class, args.seed) if name == "sfx8" else make_speech4(Path(tmp) / name)
            print(f"{name}: {len(task['train_items'])} train, {len(task['test_items'])} test clips", flush=True)
            results[name] = frozen_lr(task, args.backbones.split(","))
    print("\n| task | " + " | ".join(args.backbones.split(",")) + " |")
    print("|---|" + "---|" * len(args.backbones.split(",")))
    for name, rows in results.items():
        print(f"| {name} | " + " | ".join(f"{r['test']:.3f}" for r in rows) + " |")
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
