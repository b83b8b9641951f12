"""Throughput: the engine next to a bare forward (and train) pass of the same backbone, on the
same device, in the same run (issue 12). Every line prints both sides and their ratio.

    .venv/bin/python benchmarks/bench_throughput.py [--images 2000] [--image-size 96]
        [--large 10000] [--rt-dir ../shared/data/rotten_tomatoes] [--out F.json]
    KERAS_BACKEND=jax python benchmarks/bench_throughput.py ...   # the GPU path (no TensorFlow needed)

Sections (each skipped with its flag set to 0 / left out):

* ``embed``: images/s of the engine's embedding pass (files decoded by worker threads, fixed batch
  shape, written to the cache) vs a bare compiled forward pass over the same images already
  decoded in memory (``jax.jit`` of the stateless call on JAX, ``predict_on_batch`` elsewhere).
* ``fit``: a one-trial feature-extraction fit over the same image files (``AutoTransfer``, fresh
  cache, all fixed costs included) vs the bare forward pass over the files *with* decoding
  (what a notebook does: PIL, resize, predict).
* ``fine_tune``: items/s of the engine's input pipeline feeding ``fit`` (decode workers, the
  ``ItemBatches`` / tf.data source) vs a bare compiled gradient step on in-memory arrays (a
  ``jax.jit`` stateless step on JAX, a ``tf.function`` elsewhere), one epoch each. (Before issue
  33 the bare side was ``train_on_batch``, which copies the variables back every call.)
* ``large``: a one-trial fit over ``--large`` images: the share of the fit spent in the trial
  (summary.json ``timings``), fixed costs listed.
* ``text``: a one-trial MiniLM fit over the Rotten Tomatoes training texts, texts/s end to end,
  vs the bare forward pass of the same encoder over the same texts (engine tokeniser, dynamic
  padding).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import _common
import numpy as np


def _bare_forward(model, batches):
    """Seconds for one pass over ``batches`` (a list of arrays / dicts), after one warm-up call."""
    import keras

    if keras.backend.backend() == "jax":
        import jax

        tv = [v.value for v in model.trainable_variables]
        ntv = [v.value for v in model.non_trainable_variables]
        fn = jax.jit(lambda tv, ntv, x: model.stateless_call(tv, ntv, x, training=False)[0])
        jax.block_until_ready(fn(tv, ntv, batches[0]))
        t0 = time.perf_counter()
        outs = [fn(tv, ntv, b) for b in batches]
        jax.block_until_ready(outs)
        return time.perf_counter() - t0
    model.predict_on_batch(batches[0])
    t0 = time.perf_counter()
    for b in batches:
        np.asarray(model.predict_on_batch(b))
    return time.perf_counter() - t0


def _bare_train(model, batches) -> float:
    """Items/s of a bare compiled gradient step (forward, backward, Adam) over ``batches`` decoded
    in memory: on JAX a ``jax.jit`` of a stateless step (benchmarks/gpu/bench_gpu.py), on
    TensorFlow a ``tf.function`` of a GradientTape step. Not ``train_on_batch``: it copies the
    variables back every call, a cost the engine's ``fit`` does not pay."""
    import keras

    if keras.backend.backend() == "jax":
        from gpu.bench_gpu import bare_train

        xb, yb = batches[0]
        return bare_train(model, xb, yb, len(batches))
    import tensorflow as tf

    opt, loss_fn = keras.optimizers.Adam(1e-5), keras.losses.SparseCategoricalCrossentropy()

    @tf.function
    def step(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        opt.apply(tape.gradient(loss, model.trainable_variables), model.trainable_variables)
        return loss

    step(*batches[0])
    t0 = time.perf_counter()
    for xb, yb in batches:
        step(xb, yb)
    return len(batches) * len(batches[0][1]) / (time.perf_counter() - t0)


def _image_setup(args, tmp):
    from automl_tl.data import load_data
    from automl_tl.plugin_manager import PluginManager

    per_class = max(1, args.images // 10)
    folder = _common.fashion_folder(tmp / f"fm{per_class}", per_class)
    pm = PluginManager()
    data = load_data(str(folder), modalities=pm.modalities)
    spec = pm.backbones.get("mobilenetv2")
    weights = spec.resolve_weights()
    return folder, data, spec, weights


def bench_embed(args, tmp, res):
    from automl_tl.batching import batch_order
    from automl_tl.cache import EmbeddingCache

    folder, data, spec, weights = _image_setup(args, tmp)
    cfg = {"image_size": args.image_size, "source_size": min(args.image_size, 28)}  # Fashion-MNIST: 28 px, sent as uint8
    items = list(data.items)
    adapter = spec.make_adapter(cfg, weights, None)
    EmbeddingCache(tmp / "warm", disk=False).get_or_compute(  # warm the backend up, not timed
        spec=spec, weights=weights, input_config=cfg, options={}, items=items[:64], data_fingerprint="warm",
        batch_size=args.batch_size)
    t0 = time.perf_counter()
    EmbeddingCache(tmp / "embed-cache").get_or_compute(
        spec=spec, weights=weights, input_config=cfg, options={}, items=items, data_fingerprint=data.fingerprint(),
        batch_size=args.batch_size)
    engine = time.perf_counter() - t0
    model = spec.build(weights, cfg)
    batches = [adapter([items[i] for i in idx]) for idx in batch_order(items, adapter, args.batch_size)
               if len(idx) == args.batch_size]
    n_bare = len(batches) * args.batch_size
    bare = _bare_forward(model, batches)
    t0 = time.perf_counter()
    for idx in batch_order(items, adapter, args.batch_size):
        np.asarray(model.predict_on_batch(adapter([items[i] for i in idx])))
    notebook = time.perf_counter() - t0
    r = {"n": len(items), "image_size": args.image_size, "engine_per_s": len(items) / engine,
         "bare_forward_per_s": n_bare / bare, "notebook_per_s": len(items) / notebook,
         "notebook_seconds": notebook}
    r["ratio_engine_vs_bare"] = r["engine_per_s"] / r["bare_forward_per_s"]
    res["embed"] = r
    print(f"embed   {len(items)} images at {args.image_size} px: engine {r['engine_per_s']:.0f}/s, bare compiled "
          f"forward (decoded in memory) {r['bare_forward_per_s']:.0f}/s -> {r['ratio_engine_vs_bare']:.2f}x; "
          f"decode + forward in a loop {r['notebook_per_s']:.0f}/s", flush=True)
    return folder


def bench_fit(args, tmp, res, folder):
    from automl_tl import AutoTransfer

    t0 = time.perf_counter()
    AutoTransfer(backbones=["mobilenetv2"], trials=1, strategies=["feature_extraction"], run_dir=tmp / "fit-run",
                 cache_dir=tmp / "fit-cache", report=False, batch_size=args.batch_size).fit(str(folder))
    fit = time.perf_counter() - t0
    timings = json.loads((tmp / "fit-run" / "summary.json").read_text()).get("timings", {})
    notebook = res["embed"]["notebook_seconds"]
    r = {"fit_seconds": fit, "notebook_seconds": notebook, "ratio": fit / notebook, "timings": timings}
    res["fit"] = r
    print(f"fit     one-trial feature-extraction fit over the same {res['embed']['n']} files: {fit:.1f} s vs "
          f"decode + forward {notebook:.1f} s -> {r['ratio']:.2f}x  (timings {timings})", flush=True)


def bench_fine_tune(args, tmp, res):
    import keras

    from automl_tl.batching import batch_order, make_dataset
    from automl_tl.plugin_manager import get_plugin_manager
    from automl_tl.training import assemble, freeze

    folder, data, spec, weights = _image_setup(args, tmp)
    n = min(len(data.items), args.fine_tune_items)
    items = list(data.items)[:n]
    labels = sorted(set(data.labels))
    y = np.array([labels.index(c) for c in data.labels[:n]])
    cfg = {"image_size": args.image_size, "source_size": min(args.image_size, 28)}  # Fashion-MNIST: 28 px, sent as uint8
    adapter = spec.make_adapter(cfg, weights, None)

    def model():
        backbone = spec.build(weights, cfg)
        freeze(backbone, spec, "fine_tune_all", strategies=get_plugin_manager().strategies.as_dict())
        head = keras.Sequential([keras.Input(backbone.output.shape[1:]), keras.layers.Dense(len(labels),
                                                                                           activation="softmax")])
        m = assemble(backbone, head)
        m.compile(optimizer=keras.optimizers.Adam(1e-5), loss="sparse_categorical_crossentropy")
        return m

    m = model()
    ds = make_dataset(items, y, adapter, args.batch_size, shuffle=True, seed=0)
    m.fit(ds, epochs=1, verbose=0, steps_per_epoch=2)  # compile, not timed
    ds = make_dataset(items, y, adapter, args.batch_size, shuffle=True, seed=0)
    t0 = time.perf_counter()
    m.fit(ds, epochs=1, verbose=0)
    engine = time.perf_counter() - t0
    order = [idx for idx in batch_order(items, adapter, args.batch_size) if len(idx) == args.batch_size]
    bare_per_s = _bare_train(model(), [(adapter([items[i] for i in idx]), y[idx]) for idx in order])
    r = {"n": n, "engine_per_s": n / engine, "bare_train_step_per_s": bare_per_s}
    r["ratio"] = r["engine_per_s"] / r["bare_train_step_per_s"]
    res["fine_tune"] = r
    print(f"tune    fine-tune-all epoch over {n} images: engine pipeline + fit {r['engine_per_s']:.0f}/s, bare "
          f"compiled gradient step (decoded in memory) {r['bare_train_step_per_s']:.0f}/s -> {r['ratio']:.2f}x",
          flush=True)


def bench_large(args, tmp, res):
    from automl_tl import AutoTransfer

    folder = _common.fashion_folder(tmp / f"fm-large{args.large}", max(1, args.large // 10))
    t0 = time.perf_counter()
    AutoTransfer(backbones=["mobilenetv2"], trials=1, strategies=["feature_extraction"], run_dir=tmp / "large-run",
                 cache_dir=tmp / "large-cache", report=False, batch_size=args.batch_size).fit(str(folder))
    fit = time.perf_counter() - t0
    summary = json.loads((tmp / "large-run" / "summary.json").read_text())
    timings, forward = summary["timings"], summary.get("forward_seconds", {})
    share = timings.get("trials", 0.0) / fit
    # the probe embeds its 2 000-item sample and the trial reads those features from the cache:
    # forward passes scale with the data wherever they run; what is left does not
    scaling = (timings.get("trials", 0.0) + forward.get("probe", 0.0)) / fit
    res["large"] = {"n": args.large, "fit_seconds": fit, "timings": timings, "trial_share": share,
                    "forward_seconds": forward, "trial_and_forward_share": scaling,
                    "peak_rss_mb": _common.peak_rss_mb()}
    fixed = ", ".join(f"{k} {v:.1f} s" for k, v in timings.items() if k != "trials")
    print(f"large   one-trial fit over {args.large} images: {fit:.1f} s, trial {timings.get('trials', 0):.1f} s "
          f"= {share:.0%} of the fit (fixed: {fixed}); the trial plus the probe's forward passes whose "
          f"features it reuses ({forward.get('probe', 0.0):.1f} s) = {scaling:.0%}", flush=True)


def bench_text(args, tmp, res):
    import pandas as pd

    from automl_tl import AutoTransfer
    from automl_tl.batching import batch_order
    from automl_tl.plugin_manager import PluginManager

    train = Path(args.rt_dir) / "train.csv"
    texts = pd.read_csv(train).text.tolist()
    t0 = time.perf_counter()
    AutoTransfer(backbones=["minilm-l6"], trials=1, strategies=["feature_extraction"], run_dir=tmp / "text-run",
                 cache_dir=tmp / "text-cache", report=False).fit(str(train))
    fit = time.perf_counter() - t0
    timings = json.loads((tmp / "text-run" / "summary.json").read_text())["timings"]
    spec = PluginManager().backbones.get("minilm-l6")
    weights = spec.resolve_weights()
    cfg = dict(spec.default_input_config)
    adapter = spec.make_adapter(cfg, weights, None)
    model = spec.build(weights, cfg)
    batches = [adapter([texts[i] for i in idx]) for idx in batch_order(texts, adapter, args.batch_size)]
    bare = _bare_forward(model, batches)
    r = {"n": len(texts), "fit_per_s": len(texts) / fit, "bare_forward_per_s": len(texts) / bare, "timings": timings}
    r["ratio"] = r["fit_per_s"] / r["bare_forward_per_s"]
    res["text"] = r
    print(f"text    one-trial MiniLM fit over {len(texts)} texts: {r['fit_per_s']:.0f} texts/s end to end vs bare "
          f"forward {r['bare_forward_per_s']:.0f}/s -> {r['ratio']:.2f}x (timings {timings})", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=2000, help="images for embed / fit (0: skip)")
    ap.add_argument("--image-size", type=int, default=96, help="96: what the engine picks for 28 px images")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--fine-tune-items", type=int, default=512, help="0: skip the fine-tuning line")
    ap.add_argument("--large", type=int, default=10000, help="images of the large one-trial fit (0: skip)")
    ap.add_argument("--rt-dir", help="the Rotten Tomatoes split (text line; left out without it)")
    ap.add_argument("--out", type=Path, default=_common.OUT / "throughput.json")
    args = ap.parse_args()

    import keras

    tmp = Path(tempfile.mkdtemp())
    res = {"backend": keras.backend.backend(), "cpus": os.cpu_count(), "args": {k: str(v) for k, v in vars(args).items()}}
    print(f"backend {res['backend']}, {res['cpus']} CPUs", flush=True)
    if args.images:
        folder = bench_embed(args, tmp, res)
        bench_fit(args, tmp, res, folder)
    if args.fine_tune_items:
        bench_fine_tune(args, tmp, res)
    if args.large:
        bench_large(args, tmp, res)
    if args.rt_dir:
        bench_text(args, tmp, res)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2, default=float))
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
