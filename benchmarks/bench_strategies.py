"""LP-FT and layer-wise learning-rate decay against fine-tune-all and against the search.

    .venv/bin/python benchmarks/bench_strategies.py                          # both tasks, seeds 0,1
    .venv/bin/python benchmarks/bench_strategies.py --tasks fashion100 --seeds 0 --no-search --debug
    .venv/bin/python benchmarks/bench_strategies.py --search-seeds 0 --rt-dir /path/to/rotten_tomatoes
    .venv/bin/python benchmarks/bench_strategies.py --seeds 1 --no-strategies --out more.json

Two tasks, the same data and test sets as ``bench_vs_linear_probe.py`` (whose task builders and
``automl-tl fit`` driver this script imports):

* ``fashion100``: Fashion-MNIST, 100 training images per class (a different sample per seed),
  1 000 official test images; MobileNetV2 at the profile's image size; search budget 5 minutes;
* ``rt2000``: the fixed Rotten Tomatoes split (``--rt-dir``): ``train.csv`` (2 000 texts),
  scored on ``test.csv`` (2 000 texts); MiniLM-L6; search budget 10 minutes.

For each task and seed, in this process: the three fine-tuning strategies ``fine_tune_all``,
``lp_ft`` and ``layerwise_decay`` with the *same* hyperparameters (linear head; images
``backbone_lr=1e-4``, 4 epochs, no augmentation; text ``backbone_lr=3e-5``, 3 epochs; layer-wise
decay ``lr_decay=0.8``), each through ``run_trial`` exactly as a search trial runs: trained on the
hold-out split's training part (80 %), the best epoch (the start included) kept by its validation
part. The model (fine-tuned backbone + head) then predicts the test set. Recorded: test accuracy,
its standard error ``sqrt(p(1-p)/n)``, training seconds (frozen features and the linear probe
are computed once beforehand and timed apart, so the three strategies start from the same warm
cache), the best
fine-tuning epoch (0: the start, not beaten) and the validation curve.

Beside them, "the search": ``automl-tl fit`` in its own process with ``--time-budget`` and
``--seed`` as a user runs it (every strategy searched; its own cache, nothing shared with the
runs above), then the delivered run directory scored on the same test set. Note the delivered
model is usually refitted on all training items, while the strategy rows train on 80 % of them.

Results: a Markdown table per task on stdout (rows: strategies and the search; columns: seeds and
the mean) and JSON in ``--out``. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import tempfile
import time
from pathlib import Path

import _common
import bench_vs_linear_probe as vs
import numpy as np

STRATEGIES = ("fine_tune_all", "lp_ft", "layerwise_decay")
LR_DECAY = 0.8
#: task -> backbone, the hyperparameters every strategy shares, the --debug stand-in task
TASKS = {
    "fashion100": ("mobilenetv2", {"backbone_lr": 1e-4, "ft_epochs": 4, "augment": False}, "fashion30"),
    "rt2000": ("minilm-l6", {"backbone_lr": 3e-5, "ft_epochs": 3}, "rt200"),
}


# ------------------------------------------------------------------------------ the strategies
def configs(backbone: str, shared: dict, debug: bool) -> dict:
    from automl_tl.training import TrialConfig

    shared = shared | ({"ft_epochs": 1} if debug else {})
    return {s: TrialConfig(backbone=backbone, strategy=s, head_units=0, **shared,
                           extra={"lr_decay": LR_DECAY} if s == "layerwise_decay" else {})
            for s in STRATEGIES}


def context(pm, task: dict, backbone: str, seed: int, cache_dir: Path):
    """The TrialContext a search of ``task`` builds, for ``backbone`` alone: the profile's input
    configuration, the folds of ``seed``."""
    from automl_tl.cache import EmbeddingCache
    from automl_tl.data import evaluation_plan, load_data
    from automl_tl.profile import profile_data
    from automl_tl.training import TrialContext

    data = load_data(task["data"], modalities=pm.modalities, text_column=vs._flag(task, "--text-column"),
                     label_column=vs._flag(task, "--label-column"))
    spec = pm.backbones.get(backbone)
    weights = spec.resolve_weights()
    modality = pm.modalities.get(data.modality)
    prof = profile_data(data, modality=modality, table=pm.strategy_table, candidates=[spec],
                        weights={backbone: weights})
    if prof.imbalanced:  # the search would weight classes; neither task is imbalanced
        raise SystemExit(f"{task['data']}: imbalanced, this benchmark does not weight classes")
    y = np.array([data.classes.index(c) for c in data.labels])
    return TrialContext(data=data, plan=evaluation_plan(data, y, seed=seed), y=y, n_classes=len(data.classes),
                        input_configs={backbone: dict(prof.backbones[backbone]["input_config"])},
                        weights={backbone: weights}, specs={backbone: spec}, modality=modality,
                        cache=EmbeddingCache(cache_dir), seed=seed, strategies=pm.strategies.as_dict())


def test_accuracy(ctx, cfg, result, task: dict) -> float:
    """Accuracy on the task's test set of the fine-tuned backbone (or the frozen one, as the
    search saves a trial whose fine-tuning never beat its start) with the trial's head."""
    from automl_tl.batching import predict_proba_items
    from automl_tl.training import assemble

    spec, weights = ctx.specs[cfg.backbone], ctx.weights.get(cfg.backbone)
    input_config = ctx.input_configs[cfg.backbone]
    backbone = result.backbone
    if backbone is None:
        backbone = spec.build(weights, input_config, **cfg.options)
    model = assemble(backbone, result.head)
    probs = predict_proba_items(model, spec.make_adapter(input_config, weights, None), task["test_items"],
                                ctx.batch_for(cfg.backbone))
    pred = np.asarray(ctx.data.classes)[probs.argmax(1)]
    return float(np.mean(pred == np.asarray(task["test_labels"])))


def run_strategy(cfg, ctx, task: dict) -> dict:
    import keras

    from automl_tl.training import run_trial

    t0 = time.perf_counter()
    result = run_trial(cfg, ctx)
    train_s = time.perf_counter() - t0
    acc = test_accuracy(ctx, cfg, result, task)
    curve = [round(h["val_score"], 4) for h in result.history if h.get("phase") == "fine_tune"]
    keras.backend.clear_session()
    return {"method": cfg.strategy, **scored(acc, len(task["test_items"])), "seconds": round(train_s, 1),
            "test_s": round(time.perf_counter() - t0 - train_s, 1), "best_epoch": result.epochs.get("fine_tune"),
            "val": round(result.score, 4), "val_curve": curve, "n_train": len(ctx.plan.train),
            "n_val": len(ctx.plan.val), "config": cfg.to_dict()}


def scored(acc: float, n: int) -> dict:
    return {"test": round(acc, 4), "se": round(math.sqrt(acc * (1 - acc) / n), 4)}


# ------------------------------------------------------------------------------ the search
def run_search(task: dict, tmp: Path, seed: int) -> dict:
    out = vs.run_cli(task, tmp, seed)
    row = {"method": f"search ({task['budget']})", "seconds": out.get("fit_s")}
    if "error" in out:
        return row | {"error": out["error"]}
    delivered = out["delivered"]
    return row | scored(out["test"], len(task["test_items"])) | {
        "delivered": delivered, "strategy": delivered.split(" / ")[1], "refit": out.get("refit"),
        "val": out.get("val"), "stop": out.get("stop"), "trials": out.get("trials")}


# ------------------------------------------------------------------------------ driver
def run_task(pm, name: str, seed: int, args, search: bool) -> list[dict]:
    backbone, shared, debug_task = TASKS[name]
    rows = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        task = vs.TASKS[debug_task if args.debug else name](tmp, seed, args)
        if not args.no_strategies:
            rows += run_strategies(pm, name, seed, task, tmp, args.debug)
        if search:
            rows.append(run_search(task, tmp, seed))
            report(name, seed, rows[-1])
    return [{"task": name, "seed": seed} | r for r in rows]


def run_strategies(pm, name: str, seed: int, task: dict, tmp: Path, debug: bool) -> list[dict]:
    backbone, shared, _ = TASKS[name]
    ctx = context(pm, task, backbone, seed, tmp / "bench_cache")
    t0 = time.perf_counter()
    ctx.features(backbone, {})
    ctx.probe(backbone, {})  # the linear probe LP-FT starts from (its C over the folds)
    print(f"[{name} seed {seed}] features and probe in {time.perf_counter() - t0:.0f} s; "
          f"train {len(ctx.plan.train)}, val {len(ctx.plan.val)}, test {len(task['test_items'])}", flush=True)
    rows = []
    for cfg in configs(backbone, shared, debug).values():
        rows.append(run_strategy(cfg, ctx, task))
        report(name, seed, rows[-1])
    return rows


def report(name: str, seed: int, row: dict) -> None:
    what = (f"best epoch {row['best_epoch']}, val curve {row['val_curve']}" if "val_curve" in row
            else f"delivered {row.get('delivered')}")
    print(f"[{name} seed {seed}] {row['method']}: test {row.get('test', row.get('error'))} "
          f"(se {row.get('se')}), {row.get('seconds')} s, {what}", flush=True)


def cell(row: dict | None) -> str:
    if row is None:
        return "not run"
    if "error" in row:
        return f"failed ({row['error']})"
    what = f"epoch {row['best_epoch']}" if "best_epoch" in row else row["strategy"]
    return f"{row['test']:.4f} ± {row['se']:.4f} ({row['seconds']:.0f} s, {what})"


def table(results: list[dict], name: str, seeds: list[int]) -> str:
    rows = [r for r in results if r["task"] == name]
    methods = list(dict.fromkeys(r["method"] for r in rows))
    lines = [f"| {name} | " + " | ".join(f"seed {s}" for s in seeds) + " | mean |",
             "|---|" + "---|" * (len(seeds) + 1)]
    for m in methods:
        by_seed = {r["seed"]: r for r in rows if r["method"] == m}
        accs = [r["test"] for r in by_seed.values() if "test" in r]
        mean = f"{np.mean(accs):.4f}" + (f" (n={len(accs)})" if len(accs) < len(seeds) else "") if accs else ""
        lines.append(f"| {m} | " + " | ".join(cell(by_seed.get(s)) for s in seeds) + f" | {mean} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", default=",".join(TASKS))
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--search-seeds", default=None, help="seeds that also run the search (default: --seeds)")
    ap.add_argument("--no-search", action="store_true", help="skip `automl-tl fit`")
    ap.add_argument("--no-strategies", action="store_true",
                    help="only the search (e.g. more search seeds later, into another --out)")
    ap.add_argument("--debug", action="store_true",
                    help="tiny training sets (fashion30, rt200) and 1 fine-tuning epoch: checks the script runs")
    ap.add_argument("--rt-dir", default=str(vs.ROOT.parent / "shared" / "data" / "rotten_tomatoes"))
    ap.add_argument("--out", default=str(_common.OUT / "strategies.json"))
    args = ap.parse_args()
    from automl_tl.plugin_manager import PluginManager

    pm = PluginManager()
    seeds = [int(s) for s in args.seeds.split(",")]
    search_seeds = seeds if args.search_seeds is None else [int(s) for s in args.search_seeds.split(",")]
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    t0 = time.perf_counter()
    results: list[dict] = []
    for name in args.tasks.split(","):
        for seed in seeds:
            results += run_task(pm, name, seed, args, search=not args.no_search and seed in search_seeds)
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.out).write_text(json.dumps({"started": started, "args": vars(args), "rows": results},
                                                 indent=2, default=str))
    print(f"\nmachine: {platform.machine()}, {os.cpu_count()} CPUs; started {started}; "
          f"total {time.perf_counter() - t0:.0f} s")
    for name in args.tasks.split(","):
        print("\n" + table(results, name, seeds))


if __name__ == "__main__":
    main()
