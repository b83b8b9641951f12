"""Batch size and precision on this machine (issue 33, item 3): the figures behind
``automl_tl.accelerator`` (docs/benchmarks.md "Batch size and precision").

    .venv/bin/python benchmarks/bench_batch_size.py                 # all three lines
    .venv/bin/python benchmarks/bench_batch_size.py --only plateau

* ``plateau``: images/s of MobileNetV2's forward pass (``predict_on_batch``, the engine's build,
  Fashion-MNIST images decoded in memory) at batch 16 / 32 / 64 / 128: where a CPU's
  throughput stops growing (why ``batch_size_for`` probes nothing on a CPU).
* ``bf16``: a classifier (MobileNetV2 + a logistic-regression head trained on its float32
  features) run in float32, in ``mixed_bfloat16`` as the engine builds it (the stem in float32:
  ``automl_tl.mixed_precision``) and with every layer in bf16: the share of test images whose
  predicted label agrees with float32's, the forward speeds, and the share of the backbone's
  multiply-adds computed in bf16.
* ``fine_tune``: one fine-tune-all epoch over ``--fine-tune-items`` images through the engine's
  pipeline (``make_dataset`` + ``fit``), compiled with ``steps_per_execution`` 1 and with
  :func:`automl_tl.accelerator.steps_per_execution` of the epoch, items/s of each.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import _common  # noqa: F401 - puts the repository and its plugins on the path
import numpy as np


def _images(n: int, offset: int = 0):
    from automl_tl.demo import fashion_mnist

    images, labels, _ = fashion_mnist()
    return images[offset:offset + n], labels[offset:offset + n]


def _spec():
    from automl_tl.plugin_manager import PluginManager

    spec = PluginManager().backbones.get("mobilenetv2")
    return spec, spec.resolve_weights()


def _png_files(folder, images) -> list[str]:
    """``images`` written as PNG files in ``folder``: what the engine reads."""
    from PIL import Image

    paths = []
    for i, im in enumerate(images):
        p = Path(folder) / f"{i}.png"
        Image.fromarray(im).save(p)
        paths.append(str(p))
    return paths


def _arrays(spec, weights, cfg, images):
    """The adapter's batch of ``images`` (what the engine feeds the model), via PNG files."""
    with tempfile.TemporaryDirectory() as tmp:
        return spec.make_adapter(cfg, weights, None)(_png_files(tmp, images))


def plateau(args) -> None:
    spec, weights = _spec()
    cfg = {"image_size": args.image_size}
    x = _arrays(spec, weights, cfg, _images(256)[0])
    model = spec.build(weights, cfg)
    rates: dict[int, list[float]] = {}
    for _ in range(args.rounds):  # the sizes interleaved, best round of each: a shared machine's noise
        for size in (16, 32, 64, 128):
            batches = [np.take(x, np.arange(s, s + size) % len(x), axis=0) for s in range(0, args.plateau_items, size)]
            model.predict_on_batch(batches[0])
            t0 = time.perf_counter()
            for b in batches:
                model.predict_on_batch(b)
            rates.setdefault(size, []).append(len(batches) * size / (time.perf_counter() - t0))
    print(f"plateau MobileNetV2 {args.image_size} px forward, {args.plateau_items} images per size, best of "
          f"{args.rounds}: " + ", ".join(f"batch {s} {max(r):.0f}/s" for s, r in rates.items()), flush=True)


def bf16(args) -> None:
    import keras
    from sklearn.linear_model import LogisticRegression

    from automl_tl.accelerator import float32_stem, precision_scope
    from automl_tl.heads import build_head

    spec, weights = _spec()
    cfg = {"image_size": args.image_size}
    images, labels = _images(args.bf16_train + args.bf16_test)
    x = _arrays(spec, weights, cfg, images)
    tr, te = slice(0, args.bf16_train), slice(args.bf16_train, None)
    fp32 = spec.build(weights, cfg)
    feats = np.asarray(fp32.predict(x[tr], batch_size=32, verbose=0))
    lr = LogisticRegression(max_iter=2000, C=1.0).fit(feats, labels[tr])
    head = build_head(feats.shape[1], 10, 0, 0.0, seed=0)  # no standardising: the LR saw raw features
    head.layers[-1].set_weights([lr.coef_.T.astype("float32"), lr.intercept_.astype("float32")])
    with precision_scope("mixed_bfloat16"):
        bf = float32_stem(spec, spec.build(weights, cfg))  # the engine's build
        all_bf = spec.build(weights, cfg)
    out = {}
    for name, backbone in (("float32", fp32), ("mixed_bfloat16", bf), ("all bf16", all_bf)):
        model = keras.Sequential([backbone, head])
        model.predict(x[te][:32], batch_size=32, verbose=0)
        t0 = time.perf_counter()
        out[name] = (np.asarray(model.predict(x[te], batch_size=32, verbose=0)).argmax(1),
                     len(x[te]) / (time.perf_counter() - t0))
    agree = {k: float(np.mean(out["float32"][0] == v[0])) for k, v in out.items()}
    acc = {k: float(np.mean(v[0] == labels[te])) for k, v in out.items()}
    print(f"bf16    MobileNetV2 {args.image_size} px + linear head, {args.bf16_test} test images: labels agree "
          f"{agree['mixed_bfloat16']:.2%} with the stem in float32 ({_bf16_share(bf):.1%} of the multiply-adds in "
          f"bf16), {agree['all bf16']:.2%} all in bf16; accuracy fp32 {acc['float32']:.3f} bf16 "
          f"{acc['mixed_bfloat16']:.3f} (all bf16 {acc['all bf16']:.3f}); forward fp32 {out['float32'][1]:.0f}/s "
          f"bf16 {out['mixed_bfloat16'][1]:.0f}/s (all bf16 {out['all bf16'][1]:.0f}/s)", flush=True)


def _bf16_share(model) -> float:
    """The share of ``model``'s multiply-adds (convolutions and dense layers, per image) in
    layers computing in bfloat16."""
    import keras

    total = bf = 0
    for layer in model._flatten_layers(include_self=False):
        if not isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.Dense)):
            continue
        spatial = int(np.prod(layer.output.shape[1:-1])) if len(layer.output.shape) > 2 else 1
        macs = spatial * int(np.prod(layer.kernel.shape))
        total += macs
        bf += macs if layer.dtype_policy.compute_dtype == "bfloat16" else 0
    return bf / max(total, 1)


def fine_tune(args) -> None:
    import keras

    from automl_tl.accelerator import steps_per_execution
    from automl_tl.batching import make_dataset
    from automl_tl.plugin_manager import get_plugin_manager
    from automl_tl.training import assemble, freeze

    spec, weights = _spec()
    cfg = {"image_size": args.image_size}
    n = args.fine_tune_items
    images, y = _images(n)
    with tempfile.TemporaryDirectory() as tmp:
        items = _png_files(tmp, images)
        adapter = spec.make_adapter(cfg, weights, None)
        n_batches = -(-n // args.batch_size)
        res = {}
        for spe in (1, steps_per_execution(n_batches)):
            backbone = spec.build(weights, cfg)
            freeze(backbone, spec, "fine_tune_all", strategies=get_plugin_manager().strategies.as_dict())
            head = keras.Sequential([keras.Input(backbone.output.shape[1:]), keras.layers.Dense(10, activation="softmax")])
            m = assemble(backbone, head)
            m.compile(optimizer=keras.optimizers.Adam(1e-5), loss="sparse_categorical_crossentropy",
                      steps_per_execution=spe)
            m.fit(make_dataset(items, y, adapter, args.batch_size, shuffle=True, seed=0), epochs=1, verbose=0)  # compile
            t0 = time.perf_counter()
            m.fit(make_dataset(items, y, adapter, args.batch_size, shuffle=True, seed=0), epochs=1, verbose=0)
            res[spe] = n / (time.perf_counter() - t0)
    print(f"tune    fine-tune-all epoch over {n} images, batch {args.batch_size}: "
          + ", ".join(f"steps_per_execution {k} {v:.1f}/s" for k, v in res.items()), flush=True)


def main() -> None:
    import keras

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=("plateau", "bf16", "fine_tune"))
    ap.add_argument("--image-size", type=int, default=96)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--plateau-items", type=int, default=512)
    ap.add_argument("--rounds", type=int, default=3, help="plateau: rounds over the sizes (the best counts)")
    ap.add_argument("--bf16-train", type=int, default=1000)
    ap.add_argument("--bf16-test", type=int, default=1000)
    ap.add_argument("--fine-tune-items", type=int, default=512)
    args = ap.parse_args()
    import os

    print(f"backend {keras.backend.backend()}, {os.cpu_count()} CPUs", flush=True)
    for name, fn in (("plateau", plateau), ("bf16", bf16), ("fine_tune", fine_tune)):
        if args.only in (None, name):
            fn(args)


if __name__ == "__main__":
    main()
