"""The recommender on the task suite, judged on test data: is the recommended configuration within
1 point of the best configuration the search found, without the prior and with it
(leave-one-task-out)?

    .venv/bin/python benchmarks/recommender/suite.py                      # 8 tasks, 2 minutes each (~35 min)
    .venv/bin/python benchmarks/recommender/suite.py --tasks digits,speech4 --budget 1m
    .venv/bin/python benchmarks/recommender/suite.py --rt-dir /path/to/rotten_tomatoes --json out.json

For each task of the suite (the tasks of ``bench_vs_linear_probe.py``, each with a test set the
search never sees), one search runs the way a user runs it, ``automl-tl fit DATA --time-budget B
--seed S``, with the shipped prior *minus this task's own record* as its prior
(``AUTOML_TL_PRIOR``) and an empty local knowledge base. Then three configurations of that study
are each trained on every training item, as a refit does (``train_final``, with the epochs the
trial needed; a trial the search did not get to run is first run as the search would have, on its
hold-out split, for those epochs), and scored on the test set:

* **recommended**: trial 0, the strategy table's recommendation on the probe's best backbone
  (no prior involved);
* **prior**: the first warm-start trial, the winner of the nearest *other* task of the prior;
* **best found**: the trial with the search's top validation score.

regret = test(best found) - test(recommended or prior). Measured on test, not on validation:
the search's top validation score is a maximum over many noisy scores (and hold-out and
cross-validated scores are different evaluations), so validation regret overstates what the
search's choice is worth. The delivered model's test score is printed beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import _common  # noqa: E402,F401  (sys.path, quiet TensorFlow)
import numpy as np  # noqa: E402
from bench_vs_linear_probe import TASKS, _flag, run_cli  # noqa: E402
from build_prior import task_arguments, without_data  # noqa: E402  (the suite is the prior's tasks)

from automl_tl.knowledge import prior_path, read_records  # noqa: E402

POINT = 0.01


def loto_prior(label: str, folder: Path) -> Path:
    """The shipped prior without the record of task ``label``."""
    keep = [r for r in read_records([prior_path()]) if r.get("label") != label]
    path = folder / "prior-loto.jsonl"
    path.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in keep))
    return path


def _params(trial) -> dict:
    """A trial's parameters; a queued trial that never ran has them as ``fixed_params``."""
    return trial.params or trial.system_attrs.get("fixed_params", {})


def score_on_test(task: dict, study, cache: Path, seed: int, warm: list) -> dict:
    """The recommended, the prior's and the top trial's configurations, each trained on every
    training item and scored on the test set (``warm``: the warm-start configurations the run's
    summary lists, nearest task first)."""
    from automl_tl.batching import predict_proba_items
    from automl_tl.estimator import AutoTransfer, search_space
    from automl_tl.plugin_manager import get_plugin_manager
    from automl_tl.training import classifier, run_trial, train_final

    est = AutoTransfer(text_column=_flag(task, "--text-column"), label_column=_flag(task, "--label-column"),
                       path_column=_flag(task, "--path-column"), group_column=_flag(task, "--group-column"),
                       seed=seed, trials=1, cache_dir=str(cache))
    prep = est._prepare(task["data"])
    ctx = prep.ctx
    # the space the search had: a trial's params read back as its configuration, and a warm-start
    # configuration matched to the trial that stands for it (fine-tuning only for the two
    # best-ranked backbones, as in the fit)
    space = search_space(prep, get_plugin_manager().strategies.as_dict())
    labels = list(ctx.data.classes)
    y_test = np.array([labels.index(str(v)) for v in task["test_labels"]])
    everything = np.arange(len(ctx.y))
    trials = study.get_trials(deepcopy=False)
    done = [t for t in trials if t.state.name == "COMPLETE" and t.value is not None]
    chosen = {"recommended": next((t for t in trials if t.user_attrs.get("recommended")), None), "prior": None,
              "best found": max(done, key=lambda t: t.value) if done else None}
    if warm:
        # the nearest task's winner: its own queued trial, or (when it equals the recommendation
        # or a probe, and so was not queued again) the trial that stands for it
        target = space.point(warm[0]["params"])
        chosen["prior"] = next((t for t in trials if _params(t) == target), None)
    out: dict[int, dict] = {}
    for t in {t.number: t for t in chosen.values() if t is not None}.values():
        cfg = space.config(_params(t))
        t0 = time.perf_counter()
        epochs = t.user_attrs.get("epochs")
        if epochs is None:  # the search did not get to run it: run it as its trial would have run
            epochs = run_trial(cfg, replace(ctx, seed=seed)).epochs
        head, backbone = train_final(cfg, replace(ctx, seed=seed), everything, epochs=epochs)
        spec, ic, w = ctx.specs[cfg.backbone], ctx.input_configs[cfg.backbone], ctx.weights.get(cfg.backbone)
        # a featurizer outside Keras (classical, ONNX) feeds the head; else backbone and head in one model
        featurize = spec.featurize(w, ic, **cfg.options) if spec.featurize is not None else None
        model = classifier(spec, w, ic, cfg.options, head, backbone)
        probs = predict_proba_items(model, spec.make_adapter(ic, w, None), list(task["test_items"]),
                                    featurize=featurize, n_classes=len(labels))
        out[t.number] = {"trial": t.number, "strategy": cfg.strategy, "backbone": cfg.backbone,
                         "ran": t.state.name, "val": None if t.value is None else round(float(t.value), 4),
                         "test": round(float(np.mean(probs.argmax(1) == y_test)), 4),
                         "seconds": round(time.perf_counter() - t0, 1)}
    return {k: (None if t is None else out[t.number]) for k, t in chosen.items()}


def run_task(name: str, args) -> dict:
    import optuna

    from automl_tl.schema import STUDY_NAME

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        task = TASKS[name](tmp, args.seed, args) | {"budget": args.budget}
        env = {"AUTOML_TL_PRIOR": str(loto_prior(name, tmp)), "AUTOML_TL_WARM_START": "1"}
        ours = run_cli(task, tmp, args.seed, env=env)
        if "error" in ours:
            return {"task": name, "error": ours["error"]}
        optuna.logging.set_verbosity(optuna.logging.ERROR)
        study = optuna.load_study(study_name=STUDY_NAME, storage=f"sqlite:///{tmp / 'run' / 'study.db'}")
        warm = json.loads((tmp / "run" / "summary.json").read_text()).get("warm_start", {}).get("configs", [])
        scores = score_on_test(task, study, tmp / "cache", args.seed, warm)
    best = scores["best found"]
    row = {"task": name, "budget": args.budget, "seed": args.seed, "n_test": len(task["test_items"]),
           "delivered_test": ours["test"], "delivered": ours["delivered"], **scores}
    for key in ("recommended", "prior"):
        if scores[key] is not None and best is not None:
            scores[key]["regret"] = round(best["test"] - scores[key]["test"], 4)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    task_arguments(ap, seed=0, seed_help="data sample and search seed (the prior was built with 7)")
    ap.add_argument("--json", default=str(_common.OUT / "recommender_suite.json"))
    args = ap.parse_args()
    rows = []
    for name in args.tasks.split(","):
        if without_data(name, args):
            continue
        t0 = time.perf_counter()
        rows.append(run_task(name, args) | {"seconds": round(time.perf_counter() - t0)})
        print(json.dumps(rows[-1]), flush=True)
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(rows, indent=2))

    def cell(c):
        if c is None:
            return "-"
        return f"{c['strategy']} / {c['backbone']} {c['test']:.4f}" + (f" ({c['regret']:+.4f})" if "regret" in c else "")

    print(f"\n{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} CPUs, budget {args.budget}, "
          f"seed {args.seed}; test accuracy after training on every training item (regret vs best found)\n")
    print("| task | best found (top validation) | recommended (no prior) | prior, leave-one-task-out | delivered |")
    print("|---|---|---|---|---|")
    for r in rows:
        if "error" in r:
            print(f"| {r['task']} | {r['error']} | | | |")
            continue
        print(f"| {r['task']} | {cell(r['best found'])} | {cell(r['recommended'])} | {cell(r['prior'])} | "
              f"{r['delivered_test']:.4f} |")
    for key in ("recommended", "prior"):
        vals = [r[key]["regret"] for r in rows if r.get(key) and "regret" in r[key]]
        print(f"{key}: within 1 point of the best found on {sum(v <= POINT + 1e-9 for v in vals)} of {len(vals)} tasks")
    sys.exit(0 if rows and not any("error" in r for r in rows) else 1)


if __name__ == "__main__":
    main()
