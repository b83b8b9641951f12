"""The GPU path measured in one run (issue 33): every line prints the engine's side and the bare
side of the same work on the same device, and their ratio.

Made for a bare GPU machine (no TensorFlow, no Keras, no network): ``benchmarks/gpu/run.sh``
installs the carried wheels and calls this with ``KERAS_BACKEND=jax``. It makes its own data
(no system paths): JPEG images of ten synthetic classes and texts of at least 128 tokens. The
same script runs on a CPU (``run.sh --cpu``, smaller sizes) for the CPU side in the docs.

Lines:

* ``embed fp32`` / ``embed bf16``: images/s of the engine's embedding pass over the JPEG files
  (decode workers, the engine's batch size and compiled forward, features written to the cache)
  vs a bare ``jax.jit`` of the same model's stateless call on one batch already on the device
  (the hardware's bound: no decoding, no transfer). bf16 is ``mixed_bfloat16``.
* ``fit``: the wall time of a one-trial feature-extraction fit over all the images
  (``AutoTransfer``: profile, probe, trial, refit, saving), after start-up (imports, device
  initialisation) and before any other line, so it pays its own builds and compiles.
* ``tune``: items/s of one fine-tune-all epoch through the engine (its input pipeline, its
  compile settings) vs a bare ``jax.jit`` of a stateless gradient step (``stateless_call`` +
  ``optimizer.stateless_apply``) on batches already on the device.
* ``text``: MiniLM-L6 at 128 tokens: texts/s of the engine's embedding pass vs the bare jitted
  forward on one token batch on the device. On the GPU machine the MiniLM folder carries its
  tokenizer and config but random weights of the real shapes (the real weights' package is 84 MB,
  over what a call carries); speed does not depend on the values.

    KERAS_BACKEND=jax python benchmarks/gpu/bench_gpu.py [--images 10000] [--image-size 224]
        [--texts 4000] [--tune-items 2048] [--minilm FOLDER] [--out gpu.json]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("AUTOML_TL_OFFLINE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from a checkout: the core
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "plugins"))  # and the built-in plugins

import numpy as np  # noqa: E402

CLASSES = 10
WORDS = ("the a film story actor scene plot music camera light night city house river dog cat road "
         "slow fast bright dark warm cold funny sad long short quiet loud old new small large good bad "
         "never always often again later soon really quite very rather almost nearly").split()


# ------------------------------------------------------------------------------------ data
def _image(args):
    """One JPEG of class ``k``: a grating at the class's angle and frequency, a tint, noise."""
    path, k, seed, size = args
    from PIL import Image

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    angle = np.pi * k / CLASSES + rng.normal(0, 0.05)
    freq = 4 + 2 * (k % 3) + rng.normal(0, 0.3)
    wave = np.sin(2 * np.pi * freq * (xx * np.cos(angle) + yy * np.sin(angle)) + rng.uniform(0, 6.3))
    tint = np.array([(k * 37) % 255, (k * 91) % 255, (k * 53) % 255], np.float32) / 255
    img = 127 + 80 * wave[..., None] * (0.5 + tint) + rng.normal(0, 20, (size, size, 3))
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(path, quality=90)


def make_images(root: Path, n: int, size: int) -> Path:
    """``n`` JPEGs of ``size`` px in ``root/<class>/`` (one process per core)."""
    jobs = []
    for i in range(n):
        k = i % CLASSES
        (root / f"c{k}").mkdir(parents=True, exist_ok=True)
        jobs.append((str(root / f"c{k}" / f"{i:06d}.jpg"), k, i, size))
    with multiprocessing.get_context("fork").Pool(os.cpu_count()) as pool:
        pool.map(_image, jobs, chunksize=64)
    return root


def make_texts(n: int, tokens: int = 160, seed: int = 0) -> tuple[list[str], list[int]]:
    """``n`` texts of ``tokens`` words (over 128 word pieces each), two classes by a marker word."""
    rng = np.random.default_rng(seed)
    labels = [int(i % 2) for i in range(n)]
    texts = [" ".join(rng.choice(WORDS, tokens)) + (" good" if y else " bad") for y in labels]
    return texts, labels


# ------------------------------------------------------------------------------------ bare sides
def bare_forward(model, batch, calls: int) -> float:
    """Items/s of ``calls`` calls of a jitted stateless forward on ``batch`` placed on the device."""
    import jax

    tv = [v.value for v in model.trainable_variables]
    ntv = [v.value for v in model.non_trainable_variables]
    fn = jax.jit(lambda tv, ntv, x: model.stateless_call(tv, ntv, x, training=False)[0])
    x = jax.device_put(batch)
    jax.block_until_ready(fn(tv, ntv, x))
    t0 = time.perf_counter()
    outs = [fn(tv, ntv, x) for _ in range(calls)]
    jax.block_until_ready(outs)
    n = len(next(iter(batch.values())) if isinstance(batch, dict) else batch)
    return calls * n / (time.perf_counter() - t0)


def bare_train(model, batch, labels, calls: int, lr: float = 1e-5) -> float:
    """Items/s of a jitted stateless gradient step (forward, backward, Adam) on one batch on the device."""
    import jax
    import keras

    opt = keras.optimizers.Adam(lr)
    opt.build(model.trainable_variables)
    loss_fn = keras.losses.SparseCategoricalCrossentropy()

    def loss(tv, ntv, x, y):
        out, ntv = model.stateless_call(tv, ntv, x, training=True)
        return loss_fn(y, out), ntv

    grad = jax.value_and_grad(loss, has_aux=True)

    @jax.jit
    def step(tv, ntv, ov, x, y):
        (value, ntv), g = grad(tv, ntv, x, y)
        tv, ov = opt.stateless_apply(ov, g, tv)
        return tv, ntv, ov, value

    tv = [v.value for v in model.trainable_variables]
    ntv = [v.value for v in model.non_trainable_variables]
    ov = [v.value for v in opt.variables]
    x, y = jax.device_put(batch), jax.device_put(labels)
    tv, ntv, ov, value = step(tv, ntv, ov, x, y)
    jax.block_until_ready(value)
    t0 = time.perf_counter()
    for _ in range(calls):
        tv, ntv, ov, value = step(tv, ntv, ov, x, y)
    jax.block_until_ready(value)
    return calls * len(labels) / (time.perf_counter() - t0)


# ------------------------------------------------------------------------------------ engine sides
def engine_batch_size(spec, weights, cfg, items, requested, precision="float32"):
    """The batch size the engine chooses for ``spec`` on this device (its probe on an
    accelerator, 32 on a CPU); ``--batch-size N`` overrides."""
    if requested != "auto":
        return int(requested)
    from automl_tl import accelerator

    runner = accelerator.forward_runner(spec, weights, cfg, items[:64], precision)
    return int(accelerator.batch_size_for(spec.name, cfg, runner, precision=precision, n_items=len(items)))


def engine_embed(spec, weights, cfg, items, batch_size, cache_dir, fingerprint) -> float:
    """Items/s of the engine's embedding pass (warmed up on one batch first: the build and the
    compile are a process's once-only costs, measured by the ``fit`` line)."""
    from automl_tl.cache import EmbeddingCache

    warm = items[:batch_size]
    EmbeddingCache(cache_dir / "warm", disk=False).get_or_compute(
        spec=spec, weights=weights, input_config=cfg, options={}, items=warm, data_fingerprint=f"warm-{fingerprint}",
        batch_size=batch_size)
    t0 = time.perf_counter()
    feats = EmbeddingCache(cache_dir).get_or_compute(
        spec=spec, weights=weights, input_config=cfg, options={}, items=items, data_fingerprint=fingerprint,
        batch_size=batch_size)
    seconds = time.perf_counter() - t0
    assert feats.shape[0] == len(items) and np.isfinite(np.asarray(feats[:64])).all()
    return len(items) / seconds


def image_config(spec, args) -> dict:
    """The input config the engine makes for these JPEGs: the model's size, and images sent as
    uint8 at their own size where that is smaller (``source_size``)."""
    return dict(spec.default_input_config, image_size=args.image_size,
                source_size=min(args.image_size, args.source_size))


def _line(res, key, text, engine, bare):
    res[key] = {"engine_per_s": engine, "bare_per_s": bare, "ratio": engine / bare}
    print(f"{text}: engine {engine:,.0f}/s, bare {bare:,.0f}/s -> {engine / bare:.2f}x", flush=True)


def section_fit(args, folder, tmp, res):
    from automl_tl import AutoTransfer

    t0 = time.perf_counter()
    AutoTransfer(backbones=["mobilenetv2"], trials=1, strategies=["feature_extraction"], run_dir=str(tmp / "fit-run"),
                 cache_dir=str(tmp / "fit-cache"), report=False).fit(str(folder))
    seconds = time.perf_counter() - t0
    summary = json.loads((tmp / "fit-run" / "summary.json").read_text())
    res["fit"] = {"n": args.images, "seconds": seconds, "timings": summary.get("timings", {}),
                  "forward_seconds": summary.get("forward_seconds", {}), "test_or_val": summary.get("score")}
    parts = ", ".join(f"{k} {v:.1f} s" for k, v in summary.get("timings", {}).items())
    print(f"fit     one-trial feature-extraction fit over {args.images} images: {seconds:.1f} s after start-up "
          f"({parts})", flush=True)


def section_embed(args, folder, tmp, res, precision):
    from automl_tl.data import load_data
    from automl_tl.plugin_manager import get_plugin_manager

    from automl_tl.accelerator import precision_scope

    with precision_scope(precision):
        pm = get_plugin_manager()
        data = load_data(str(folder), modalities=pm.modalities)
        spec = pm.backbones.get("mobilenetv2")
        weights = spec.resolve_weights()
        cfg = image_config(spec, args)
        items = list(data.items)
        bs = engine_batch_size(spec, weights, cfg, items, args.batch_size, precision)
        engine = engine_embed(spec, weights, cfg, items, bs, tmp / f"embed-{precision}", data.fingerprint())
        adapter = spec.make_adapter(cfg, weights, None)
        from automl_tl.mixed_precision import float32_stem

        model = float32_stem(spec, spec.build(weights, cfg))  # as the engine builds it under bf16
        bare = bare_forward(model, adapter(items[:bs]), max(4, len(items) // bs))
    tag = "fp32" if precision == "float32" else "bf16"
    _line(res, f"embed_{tag}", f"embed {tag} {len(items)} images at {args.image_size} px, batch {bs}", engine, bare)
    res[f"embed_{tag}"]["batch_size"] = bs


def section_tune(args, folder, tmp, res):
    import keras

    from automl_tl.batching import make_dataset
    from automl_tl.data import load_data
    from automl_tl.plugin_manager import get_plugin_manager
    from automl_tl.training import assemble, freeze

    pm = get_plugin_manager()
    data = load_data(str(folder), modalities=pm.modalities)
    spec = pm.backbones.get("mobilenetv2")
    weights = spec.resolve_weights()
    cfg = image_config(spec, args)
    bs = engine_batch_size(spec, weights, cfg, list(data.items), args.batch_size)
    n = min(args.tune_items, len(data.items)) // bs * bs
    items, labels = list(data.items)[:n], sorted(set(data.labels))
    y = np.array([labels.index(c) for c in data.labels[:n]], dtype="int32")
    adapter = spec.make_adapter(cfg, weights, None)

    def model():
        backbone = spec.build(weights, cfg)
        freeze(backbone, spec, "fine_tune_all", strategies=pm.strategies.as_dict())
        head = keras.Sequential([keras.Input(backbone.output.shape[1:]), keras.layers.Dense(len(labels),
                                                                                           activation="softmax")])
        return assemble(backbone, head)

    m = model()
    m.compile(optimizer=keras.optimizers.Adam(1e-5), loss="sparse_categorical_crossentropy",
              **_engine_compile_options(n // bs))
    m.fit(make_dataset(items[:2 * bs], y[:2 * bs], adapter, bs, shuffle=True, seed=0), epochs=1, verbose=0)
    ds = make_dataset(items, y, adapter, bs, shuffle=True, seed=0)
    t0 = time.perf_counter()
    m.fit(ds, epochs=1, verbose=0)
    engine = n / (time.perf_counter() - t0)
    bare = bare_train(model(), adapter(items[:bs]), y[:bs], max(4, n // bs))
    _line(res, "tune", f"tune   fine-tune-all epoch over {n} images at {args.image_size} px, batch {bs}", engine, bare)


def _engine_compile_options(steps: int) -> dict:
    """What the engine's fine-tuning compile adds (automl_tl/strategies/_base.py)."""
    from automl_tl.accelerator import steps_per_execution

    return {"steps_per_execution": steps_per_execution(steps)}


def section_text(args, tmp, res):
    from automl_tl.plugin_manager import get_plugin_manager

    texts, _ = make_texts(args.texts)
    spec = get_plugin_manager().backbones.get("minilm-l6")
    weights = spec.resolve_weights({"minilm-l6": args.minilm} if args.minilm else None)
    cfg = dict(spec.default_input_config, sequence_length=128)
    bs = engine_batch_size(spec, weights, cfg, texts, args.batch_size)
    engine = engine_embed(spec, weights, cfg, texts, bs, tmp / "text", f"texts-{len(texts)}")
    adapter = spec.make_adapter(cfg, weights, None)
    bare = bare_forward(spec.build(weights, cfg), adapter(texts[:bs]), max(4, len(texts) // bs))
    _line(res, "text", f"text   MiniLM-L6 over {len(texts)} texts at 128 tokens, batch {bs}", engine, bare)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=10_000)
    ap.add_argument("--image-size", type=int, default=224, help="the model's input size")
    ap.add_argument("--source-size", type=int, default=256, help="the JPEGs' size")
    ap.add_argument("--batch-size", default="auto", help="auto: the engine's choice on this device")
    ap.add_argument("--tune-items", type=int, default=2048, help="0: skip the fine-tuning line")
    ap.add_argument("--texts", type=int, default=4000, help="0: skip the MiniLM line")
    ap.add_argument("--minilm", help="a MiniLM-L6 folder in Hugging Face format (default: the installed package)")
    ap.add_argument("--skip", default="", help="comma-separated lines to leave out: fit,fp32,bf16,tune,text")
    ap.add_argument("--out", type=Path, default=Path("gpu.json"))
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))

    t_start = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="bench-gpu-"))
    folder = make_images(tmp / "images", args.images, args.source_size)  # forked before JAX starts threads
    data_seconds = time.perf_counter() - t_start
    import jax
    import keras

    res = {"backend": keras.backend.backend(), "devices": [str(d) for d in jax.devices()], "cpus": os.cpu_count(),
           "args": {k: str(v) for k, v in vars(args).items()}}
    print(f"backend {res['backend']}, devices {res['devices']}, {res['cpus']} CPUs", flush=True)
    print(f"data    {args.images} JPEGs of {args.source_size} px in {data_seconds:.1f} s", flush=True)
    sections = [("fit", lambda: section_fit(args, folder, tmp, res)),
                ("fp32", lambda: section_embed(args, folder, tmp, res, "float32")),
                ("bf16", lambda: section_embed(args, folder, tmp, res, "mixed_bfloat16")),
                ("tune", lambda: section_tune(args, folder, tmp, res) if args.tune_items else None),
                ("text", lambda: section_text(args, tmp, res) if args.texts else None)]
    for name, run in sections:
        if name in skip:
            continue
        try:
            run()
        except Exception as exc:  # noqa: BLE001 - one broken line must not cost the others' figures
            import traceback

            traceback.print_exc()
            res[name] = {"error": f"{type(exc).__name__}: {exc}"}
            print(f"{name}    FAILED: {type(exc).__name__}: {exc}", flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(res, indent=2, default=float))  # what is done survives a timeout
    res["seconds"] = time.perf_counter() - t_start
    args.out.write_text(json.dumps(res, indent=2, default=float))
    print(f"done in {res['seconds']:.0f} s; written to {args.out}", flush=True)


if __name__ == "__main__":
    main()
