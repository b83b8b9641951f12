"""A hidden-layer head's training on cached features: ``automl_tl.heads.fit_head`` (one compiled
call per epoch, traced once per head shape) against a bare per-batch loop (a ``tf.function``
step per batch, traced per fit: what ``fit_head`` did before), on the same features, folds and
seeds, in one run (docs/benchmarks.md "Heads on cached features").

    .venv/bin/python benchmarks/bench_heads.py                       # real features (below)
    .venv/bin/python benchmarks/bench_heads.py --items 2000 --units 512

The features are MobileNetV2's (the engine's frozen pass, 96 px) of Fashion-MNIST images, one
head shape trained on the five folds of a cross-validated trial, as the search trains a
feature-extraction trial's head. Printed: seconds of each, their ratio, and whether the two give
the same weights (they should: the same steps in the same order).
"""

from __future__ import annotations

import argparse
import math
import time

import _common  # noqa: F401 - puts the repository and its plugins on the path
import numpy as np


def _features(n: int) -> tuple[np.ndarray, np.ndarray]:
    """MobileNetV2's pooled features (96 px, its own build) of ``n`` Fashion-MNIST images of
    classes 0, 1 and 7 (the tests' three), labels 0-2."""
    import tempfile
    from pathlib import Path

    from PIL import Image

    from automl_tl.demo import fashion_mnist
    from automl_tl.plugin_manager import PluginManager

    images, labels, _ = fashion_mnist()
    keep = np.isin(labels, (0, 1, 7))
    images, labels = images[keep][:n], labels[keep][:n]
    spec = PluginManager().backbones.get("mobilenetv2")
    weights, cfg = spec.resolve_weights(), {"image_size": 96}
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i, im in enumerate(images):
            Image.fromarray(im).save(Path(tmp) / f"{i}.png")
            paths.append(str(Path(tmp) / f"{i}.png"))
        x = spec.make_adapter(cfg, weights, None)(paths)
    feats = np.asarray(spec.build(weights, cfg).predict(x, batch_size=32, verbose=0))
    return feats.reshape(len(feats), -1).astype(np.float32), np.searchsorted([0, 1, 7], labels)


def _per_batch_loop(head, x, y, *, epochs, lr, val, patience, seed, batch_size=64):
    """The bare reference: a ``tf.function`` step per batch over the head's own variables."""
    import keras
    import tensorflow as tf

    opt = keras.optimizers.Adam(lr)
    variables = head.trainable_variables
    opt.build(variables)
    losses = keras.losses.SparseCategoricalCrossentropy(reduction=None)

    @tf.function(reduce_retracing=True)
    def step(xb, yb):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(losses(yb, head(xb, training=True)))
        opt.apply(tape.gradient(loss, variables), variables)
        return loss

    xs, ys = tf.constant(x), tf.constant(np.asarray(y, dtype=np.int32))
    rng = np.random.default_rng(seed)
    best, best_epoch, best_weights, wait = -math.inf, 0, None, 0
    for epoch in range(epochs):
        order = rng.permutation(len(x))
        for s in range(0, len(x), batch_size):
            idx = tf.constant(order[s:s + batch_size])
            step(tf.gather(xs, idx), tf.gather(ys, idx))
        score = val[1](np.asarray(head(val[0], training=False)))
        if score > best:
            best, best_epoch, best_weights, wait = score, epoch + 1, head.get_weights(), 0
        else:
            wait += 1
            if wait >= patience:
                break
    head.set_weights(best_weights)
    return best, best_epoch


def _folds(fit, x, y, *, units: int, epochs: int) -> tuple[float, list]:
    import keras

    from automl_tl.evaluation import make_plan
    from automl_tl.heads import build_head

    t0, out = time.perf_counter(), []
    for tr, va in make_plan(y, seed=0).folds:
        keras.utils.set_random_seed(0)
        head = build_head(x.shape[1], 3, units, 0.2, seed=0, x_train=x[tr])
        score = (x[va], lambda p, va=va: float(np.mean(p.argmax(1) == y[va])))
        out.append((fit(head, x[tr], y[tr], epochs=epochs, lr=1e-3, val=score, patience=epochs, seed=0),
                    head.get_weights()))
    return time.perf_counter() - t0, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--items", type=int, default=300, help="images (a third of each class)")
    ap.add_argument("--units", type=int, default=256, help="the hidden layer's units")
    ap.add_argument("--epochs", type=int, default=30)
    args = ap.parse_args()

    from automl_tl.heads import fit_head

    x, y = _features(args.items)
    ours = lambda head, x, y, **kw: fit_head(head, x, y, class_weight=None, **kw)  # noqa: E731
    for _ in range(2):  # the second round: TensorFlow's own start-up paid by the first
        t_ref, ref = _folds(_per_batch_loop, x, y, units=args.units, epochs=args.epochs)
        t_ours, got = _folds(ours, x, y, units=args.units, epochs=args.epochs)
    same = all(a[0] == b[0] and all(np.array_equal(p, q) for p, q in zip(a[1], b[1])) for a, b in zip(ref, got))
    print(f"{len(x)} items x {x.shape[1]} features, {args.units} units, {args.epochs} epochs, 5 folds")
    print(f"per-batch loop (bare reference): {t_ref:.2f} s")
    print(f"fit_head (compiled epochs):      {t_ours:.2f} s  -> {t_ref / t_ours:.2f}x faster")
    print(f"same scores and weights: {same}")


if __name__ == "__main__":
    main()
