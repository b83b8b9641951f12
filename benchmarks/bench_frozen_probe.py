"""Logistic regression on frozen features only, for chosen backbones: is a new backbone worth a
place among the default candidates (does it win or tie the best probe on some task)?

    .venv/bin/python benchmarks/bench_frozen_probe.py --tasks fashion30,digits --seeds 0 \
        --backbones mobilenetv2,efficientnet-lite0,efficientnet-lite1,efficientnet-lite2,vgg16

The tasks and the probe are bench_vs_linear_probe.py's (``frozen_lr``: standardised features, C by
5-fold CV on the training data, scored on the task's test set) without its `automl-tl fit` run.
Each backbone reads the images at the size the search would give it (the image modality's
``image_size_for`` on the training images), with its default readout (the last block, pooled).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from bench_vs_linear_probe import TASKS, _image_lists, frozen_lr


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", default="fashion30,digits")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--backbones", default="mobilenetv2,efficientnet-lite0,efficientnet-lite1,efficientnet-lite2")
    args = ap.parse_args()
    from automl_tl.plugin_manager import get_plugin_manager
    from automl_tl_vision import ImageModality

    pm, modality = get_plugin_manager(), ImageModality()
    names = args.backbones.split(",")
    for task_name in args.tasks.split(","):
        for seed in [int(s) for s in args.seeds.split(",")]:
            with tempfile.TemporaryDirectory() as tmp_name:
                task = TASKS[task_name](Path(tmp_name), seed, args)
                stats = modality.describe(_image_lists(Path(task["data"]))[0])
                configs = {n: {"image_size": modality.image_size_for(stats, pm.backbones.get(n))} for n in names}
                for name in names:  # one at a time, to time each
                    start = time.perf_counter()
                    row = frozen_lr(task, {"candidates": [name], "input_configs": configs}, Path(tmp_name))[0]
                    row.update(task=task_name, seed=seed, input_config=configs[name],
                               seconds=round(time.perf_counter() - start, 1))
                    print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
