"""Text batches (issue 33, item 4): tokenising, padding waste and MiniLM throughput of the
engine's text path, every figure from one run.

    .venv/bin/python benchmarks/bench_text_batches.py --rt-dir ../shared/data/rotten_tomatoes \
        [--fine-tune-texts 512] [--out F.json]

Lines printed:

* ``tokens``: seconds to tokenise every text through the adapter (all batches of one pass), a
  first and a second pass in the same process (a token-id cache makes the second one a lookup);
* ``waste``: padded tokens per real token - 1 over the batches of an evaluation pass, for batches
  padded to their own longest text, to the adapter's lengths (the buckets) and to the fixed
  sequence length, with the number of distinct padded lengths (a compiled function's traces);
* ``embed``: texts/s of the engine's embedding pass (``EmbeddingCache``: tokenising, batching,
  MiniLM forward, mean pooling, written to the cache), a first pass (the model built) and a second
  pass into a fresh cache in the same process;
* ``tune``: texts/s of one fine-tuning epoch of MiniLM (every layer trainable) through the
  engine's ``make_dataset``, after a two-step warm-up (compiling not timed).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import _common
import numpy as np


def _setup(seq: int):
    from automl_tl.plugin_manager import PluginManager

    spec = PluginManager().backbones.get("minilm-l6")
    weights = spec.resolve_weights()
    cfg = {"sequence_length": seq}
    return spec, weights, cfg


def bench_tokens(texts, spec, weights, cfg, bs, res):
    from automl_tl.batching import batch_order

    adapter = spec.make_adapter(cfg, weights, None)
    secs = []
    for _ in range(2):
        t0 = time.perf_counter()
        for idx in batch_order(texts, adapter, bs):
            adapter([texts[i] for i in idx])
        secs.append(time.perf_counter() - t0)
    res["tokens"] = {"first_pass_s": secs[0], "second_pass_s": secs[1]}
    print(f"tokens  {len(texts)} texts through the adapter: first pass {secs[0]:.3f} s, second {secs[1]:.3f} s",
          flush=True)


def bench_waste(texts, spec, weights, cfg, bs, res):
    from automl_tl.batching import batch_order

    adapter = spec.make_adapter(cfg, weights, None)
    real = exact = bucketed = fixed = pow2 = by16 = 0
    shapes_exact, shapes_bucketed = set(), set()
    for idx in batch_order(texts, adapter, bs):
        mask = adapter([texts[i] for i in idx])["padding_mask"]
        longest = int(mask.sum(1).max())
        real += int(mask.sum())
        exact += longest * len(idx)
        bucketed += mask.shape[1] * len(idx)
        fixed += adapter.sequence_length * len(idx)
        # the other bucket sets considered: powers of two (from 8), multiples of 16
        pow2 += min(max(8, 1 << (longest - 1).bit_length()), adapter.sequence_length) * len(idx)
        by16 += min(-(-longest // 16) * 16, adapter.sequence_length) * len(idx)
        shapes_exact.add(longest)
        shapes_bucketed.add(mask.shape[1])
    r = {"real_tokens": real, "waste_longest": exact / real - 1, "waste_buckets": bucketed / real - 1,
         "waste_fixed": fixed / real - 1, "waste_pow2": pow2 / real - 1, "waste_by16": by16 / real - 1, "lengths_longest": len(shapes_exact), "lengths_buckets": len(shapes_bucketed)}
    res["waste"] = r
    print(f"waste   padding per real token, batches of {bs} at most {adapter.sequence_length} tokens: own longest "
          f"{r['waste_longest']:.1%} ({r['lengths_longest']} lengths), buckets {r['waste_buckets']:.1%} "
          f"({r['lengths_buckets']} lengths), fixed {r['waste_fixed']:.1%} (1 length); other bucket sets: powers "
          f"of two {r['waste_pow2']:.1%}, multiples of 16 {r['waste_by16']:.1%}", flush=True)


def bench_embed(texts, spec, weights, cfg, bs, tmp, res):
    from automl_tl.cache import EmbeddingCache

    rates, cpu = [], []
    for k in range(2):
        cache = EmbeddingCache(tmp / f"embed-cache-{k}")
        t0, c0 = time.perf_counter(), time.process_time()
        cache.get_or_compute(spec=spec, weights=weights, input_config=cfg, options={"pooling": "mean"},
                             items=texts, data_fingerprint="rt", batch_size=bs)
        rates.append(len(texts) / (time.perf_counter() - t0))
        cpu.append(1000 * (time.process_time() - c0) / len(texts))
    # CPU seconds (every thread of the process) change less than wall time when other processes
    # share the cores
    res["embed"] = {"first_per_s": rates[0], "second_per_s": rates[1], "first_cpu_s_per_1000": cpu[0],
                    "second_cpu_s_per_1000": cpu[1]}
    print(f"embed   MiniLM embedding pass over {len(texts)} texts: first {rates[0]:.0f} texts/s (model built), "
          f"second {rates[1]:.0f} texts/s; CPU seconds per 1000 texts {cpu[0]:.1f} and {cpu[1]:.1f}", flush=True)


def bench_tune(texts, labels, spec, weights, cfg, bs, res):
    import keras

    from automl_tl.batching import make_dataset
    from automl_tl.plugin_manager import get_plugin_manager
    from automl_tl.training import assemble, freeze

    classes = sorted(set(labels))
    y = np.array([classes.index(c) for c in labels])
    adapter = spec.make_adapter(cfg, weights, None)
    backbone = spec.build(weights, cfg, pooling="mean")
    freeze(backbone, spec, "fine_tune_all", strategies=get_plugin_manager().strategies.as_dict())
    head = keras.Sequential([keras.Input(backbone.output.shape[1:]), keras.layers.Dense(len(classes),
                                                                                       activation="softmax")])
    m = assemble(backbone, head)
    m.compile(optimizer=keras.optimizers.Adam(1e-5), loss="sparse_categorical_crossentropy")
    m.fit(make_dataset(texts, y, adapter, bs, shuffle=True, seed=0), epochs=1, verbose=0, steps_per_epoch=2)
    ds = make_dataset(texts, y, adapter, bs, shuffle=True, seed=1)
    t0 = time.perf_counter()
    m.fit(ds, epochs=1, verbose=0)
    rate = len(texts) / (time.perf_counter() - t0)
    res["tune"] = {"n": len(texts), "per_s": rate}
    print(f"tune    MiniLM fine-tune-all epoch over {len(texts)} texts (engine make_dataset + fit): {rate:.1f} texts/s",
          flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rt-dir", required=True, help="the Rotten Tomatoes split (train.csv)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--sequence-length", type=int, default=128)
    ap.add_argument("--fine-tune-texts", type=int, default=512, help="0: skip the fine-tuning line")
    ap.add_argument("--only", choices=("tokens", "waste", "embed", "tune"), help="one line only")
    ap.add_argument("--out", type=Path, default=_common.OUT / "text_batches.json")
    args = ap.parse_args()

    import keras
    import pandas as pd

    df = pd.read_csv(Path(args.rt_dir) / "train.csv")
    texts, labels = df.text.astype(str).tolist(), df.label.astype(str).tolist()
    tmp = Path(tempfile.mkdtemp())
    spec, weights, cfg = _setup(args.sequence_length)
    res = {"backend": keras.backend.backend(), "n": len(texts), "args": {k: str(v) for k, v in vars(args).items()}}
    print(f"backend {res['backend']}, {len(texts)} texts", flush=True)
    run = {args.only} if args.only else {"tokens", "waste", "embed", "tune"}
    if "tokens" in run:
        bench_tokens(texts, spec, weights, cfg, args.batch_size, res)  # first: nothing tokenised yet
    if "waste" in run:
        bench_waste(texts, spec, weights, cfg, args.batch_size, res)
    if "embed" in run:
        bench_embed(texts, spec, weights, cfg, args.batch_size, tmp, res)
    if args.fine_tune_texts and "tune" in run:
        n = args.fine_tune_texts
        bench_tune(texts[:n], labels[:n], spec, weights, cfg, args.batch_size, res)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2, default=float))
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
