"""A real search on Fashion-MNIST vs two baselines trained in the same script.

    .venv/bin/python benchmarks/bench_image_search.py [--per-class 100] [--trials 8]

Train: ``per-class`` images of each of the 10 classes from Fashion-MNIST's train split (our
search splits them 80/20 into train/validation); test: 100 per class from the official test split.
Baselines get all training images: logistic regression on raw pixels, and a small CNN trained
from scratch (early-stopped on the same validation split). Everyone is scored on the test split.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import _common
import numpy as np


def _arrays(folder: Path, classes):
    from PIL import Image

    xs, ys = [], []
    for k, c in enumerate(classes):
        for p in sorted((folder / c).glob("*.png")):
            xs.append(np.asarray(Image.open(p), dtype=np.float32) / 255.0)
            ys.append(k)
    return np.stack(xs), np.array(ys)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--per-class", type=int, default=100)
    ap.add_argument("--trials", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    train_dir = _common.fashion_folder(tmp / "train", args.per_class, seed=args.seed)
    test_dir = _common.fashion_folder(tmp / "test", 100, split="test", seed=1)
    classes = sorted(d.name for d in train_dir.iterdir())
    results = {}

    # ---- ours
    from automl_tl import AutoTransfer

    t0 = time.perf_counter()
    est = AutoTransfer(trials=args.trials, run_dir=str(tmp / "run"), cache_dir=str(tmp / "cache"),
                       seed=args.seed, report=False).fit(str(train_dir))
    wall = time.perf_counter() - t0
    test_paths = [str(p) for c in classes for p in sorted((test_dir / c).glob("*.png"))]
    test_y = [c for c in classes for _ in sorted((test_dir / c).glob("*.png"))]
    results["automl-tl"] = {"val": est.best_score_, "test": est.score(test_paths, test_y), "seconds": wall,
                            "best": f"{est.best_config_['backbone']} / {est.best_config_['strategy']}"}
    split = json.loads((tmp / "run" / "split.json").read_text())

    # ---- baselines on the same data
    x, y = _arrays(train_dir, classes)
    xt, yt = _arrays(test_dir, classes)
    from sklearn.linear_model import LogisticRegression

    t0 = time.perf_counter()
    lr = LogisticRegression(max_iter=2000, C=0.05).fit(x.reshape(len(x), -1), y)
    results["logistic regression (pixels)"] = {"test": float((lr.predict(xt.reshape(len(xt), -1)) == yt).mean()),
                                               "seconds": time.perf_counter() - t0}
    import keras

    keras.utils.set_random_seed(args.seed)
    val_set = set(split["val"]["items"])
    paths = [str(p.resolve()) for c in classes for p in sorted((train_dir / c).glob("*.png"))]
    is_val = np.array([p in val_set for p in paths])
    t0 = time.perf_counter()
    cnn = keras.Sequential([
        keras.Input((28, 28, 1)),
        keras.layers.Conv2D(32, 3, activation="relu"), keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(64, 3, activation="relu"), keras.layers.MaxPooling2D(),
        keras.layers.Flatten(), keras.layers.Dropout(0.3), keras.layers.Dense(128, activation="relu"),
        keras.layers.Dense(len(classes), activation="softmax")])
    cnn.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    cnn.fit(x[~is_val, ..., None], y[~is_val], validation_data=(x[is_val, ..., None], y[is_val]), epochs=60,
            batch_size=32, verbose=0, callbacks=[keras.callbacks.EarlyStopping(
                monitor="val_accuracy", patience=8, restore_best_weights=True)])
    results["small CNN from scratch"] = {
        "val": float(cnn.evaluate(x[is_val, ..., None], y[is_val], verbose=0)[1]),
        "test": float(cnn.evaluate(xt[..., None], yt, verbose=0)[1]), "seconds": time.perf_counter() - t0}

    print(f"Fashion-MNIST, {args.per_class} train images per class x 10 classes, test 1 000 "
          f"(official test split), {args.trials} trials, seed {args.seed}")
    print(f"{'method':<34}{'val acc':>9}{'test acc':>10}{'wall s':>9}")
    for name, r in results.items():
        print(f"{name:<34}{r.get('val', float('nan')):>9.4f}{r['test']:>10.4f}{r['seconds']:>9.1f}")
    print(f"best configuration: {results['automl-tl']['best']}")
    ours = results["automl-tl"]["test"]
    for name in ("logistic regression (pixels)", "small CNN from scratch"):
        print(f"automl-tl vs {name}: {100 * (ours - results[name]['test']):+.1f} points test accuracy")
    print(f"peak RSS {_common.peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
