"""The first fine-tuning epoch of a trial on the TensorFlow backend: the optimizer built before
``fit`` (as the strategies' ``model()`` does) against Keras' default, which builds it inside the
first trace of its train function (docs/benchmarks.md "The first fine-tuning epoch").

    .venv/bin/python benchmarks/bench_first_epoch.py
    .venv/bin/python benchmarks/bench_first_epoch.py --strategies fine_tune_all --repeats 2

Each measurement runs in a new process (a trace is kept for the process's life): the run's
preparation (profile, probe) on 12 Fashion-MNIST images a class (classes 0, 1, 7), then the
strategy's model for MobileNetV2 with its real weights, then two epochs of ``fit`` over the
training split, each timed. ``keras`` compiles that model again with a new optimizer of the same
settings, unbuilt: what ``fit`` does without the build. The variants alternate, ``--repeats``
times each; printed: the seconds of each first and second epoch and the ratio of the medians.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common  # noqa: F401 - puts the repository and its plugins on the path

CHILD = r"""
import json, os, sys, time
sys.path.insert(0, sys.argv[1])
import _common  # noqa: F401
from automl_tl import AutoTransfer
from automl_tl.batching import make_dataset, train_batch_size
from automl_tl.training import TrialConfig

folder, strategy_name, variant = sys.argv[2], sys.argv[3], sys.argv[4]
est = AutoTransfer(backbones=["mobilenetv2"], cache_dir=os.environ["AUTOML_TL_CACHE_DIR"], progress=False)
ctx = est._prepare(folder).ctx
cfg = TrialConfig(backbone="mobilenetv2", strategy=strategy_name, backbone_lr=1e-4, ft_epochs=1, unfreeze_blocks=2,
                  options={"features": "final"})
strategy = ctx.strategy(strategy_name)
head, _ = strategy.first_head(cfg, ctx, ctx.features("mobilenetv2", cfg.options), ctx.plan.train)
backbone, model, adapter = strategy.model(cfg, ctx, head)
if variant == "keras":  # the same settings, the optimizer left for fit to build
    model.compile(optimizer=strategy.optimizer(backbone, ctx.specs["mobilenetv2"], cfg),
                  loss="sparse_categorical_crossentropy", steps_per_execution=model.steps_per_execution)
    assert not model.optimizer.built
items = ctx.data.items
ds = make_dataset([items[i] for i in ctx.plan.train], ctx.y[ctx.plan.train], adapter,
                  train_batch_size(ctx.train_batch_for("mobilenetv2"), ctx.input_configs["mobilenetv2"]),
                  shuffle=True, seed=0)
epochs = []
for _ in range(2):
    t = time.perf_counter()
    model.fit(ds, epochs=1, verbose=0, shuffle=False)
    epochs.append(time.perf_counter() - t)
print(json.dumps(epochs))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--strategies", nargs="+", default=["fine_tune_all", "fine_tune_top"])
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    home = tempfile.mkdtemp(prefix="bench-first-epoch-")
    env = dict(os.environ, AUTOML_TL_CACHE_DIR=os.path.join(home, "cache"), KERAS_BACKEND="tensorflow",
               AUTOML_TL_KNOWLEDGE=os.path.join(home, "knowledge.jsonl"), AUTOML_TL_WARM_START="0")
    folder = str(_common.fashion_folder(Path(home) / "data", 12, classes=(0, 1, 7)))
    here = os.path.dirname(os.path.abspath(__file__))
    print("strategy | variant | first epochs (s) | second epochs (s)")
    for strategy in args.strategies:
        seen: dict[str, list[list[float]]] = {"built": [], "keras": []}
        for _ in range(args.repeats):
            for variant in ("keras", "built"):
                t = time.perf_counter()
                out = subprocess.run([sys.executable, "-c", CHILD, here, folder, strategy, variant], env=env,
                                     capture_output=True, text=True, timeout=1200)
                if out.returncode != 0:
                    raise SystemExit(out.stderr[-3000:])
                seen[variant].append(json.loads(out.stdout.strip().splitlines()[-1]))
                print(f"  ({strategy}, {variant}: process {time.perf_counter() - t:.0f} s)", file=sys.stderr)
        for variant, runs in seen.items():
            print(f"{strategy} | {variant} | {', '.join(f'{r[0]:.2f}' for r in runs)} | "
                  f"{', '.join(f'{r[1]:.2f}' for r in runs)}")
        ratio = statistics.median(r[0] for r in seen["built"]) / statistics.median(r[0] for r in seen["keras"])
        print(f"{strategy} | first epoch, built / keras (medians) | {ratio:.2f}x")


if __name__ == "__main__":
    main()
