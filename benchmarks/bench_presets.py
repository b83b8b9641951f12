"""What each preset (``automl-tl fit --preset fast|balanced|best``) costs and gives, per task.

    .venv/bin/python benchmarks/bench_presets.py                                  # fast and balanced, three tasks
    .venv/bin/python benchmarks/bench_presets.py --presets best --tasks fashion30
    .venv/bin/python benchmarks/bench_presets.py --rt-dir /path/to/rotten_tomatoes

Each fit runs the way a new user runs it, ``automl-tl fit DATA --preset P --seed S`` in its own
process with no other budget flag, on the training data only; the delivered run then predicts the
task's test set. The tasks are those of ``bench_vs_linear_probe.py`` (same data, same splits):
``fashion30`` (images), ``rt200`` (the fixed Rotten Tomatoes split), ``speech4`` (spoken digits,
test voices never heard). Printed: wall seconds of the fit (the process's start to its end), test
accuracy, what was delivered, trials run and why the search stopped; JSON in ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import _common  # noqa: F401 - sys.path and quiet TensorFlow
from bench_vs_linear_probe import ROOT, TASKS, run_cli


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presets", default="fast,balanced")
    ap.add_argument("--tasks", default="fashion30,rt200,speech4")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rt-dir", default=str(ROOT.parent / "shared" / "data" / "rotten_tomatoes"))
    ap.add_argument("--out", default=str(_common.OUT / "results_presets.json"))
    args = ap.parse_args()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    results = []
    for name in args.tasks.split(","):
        for preset in args.presets.split(","):
            with tempfile.TemporaryDirectory() as tmp_name:
                tmp = Path(tmp_name)
                task = dict(TASKS[name](tmp, args.seed, args), budget=None)  # the preset's budget
                ours = run_cli(task, tmp, args.seed, extra=["--preset", preset])
                row = {"task": name, "preset": preset, "seed": args.seed, "n_test": len(task["test_items"]),
                       **{k: ours.get(k) for k in ("test", "fit_s", "val", "delivered", "stop", "trials",
                                                    "candidates", "error")}}
                results.append(row)
                print(json.dumps(row, default=str), flush=True)
                Path(args.out).write_text(json.dumps(results, indent=2, default=str))
    print(f"\nmachine: {platform.machine()}, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print("\n| task | preset | fit s | test accuracy | trials | stop | delivered |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        trials = r.get("trials") or {}
        print(f"| {r['task']} | {r['preset']} | {r.get('fit_s')} | {r.get('test', r.get('error'))} | "
              f"{trials.get('complete')} + {trials.get('pruned')} pruned | {r.get('stop')} | "
              f"{r.get('delivered', '')} |")


if __name__ == "__main__":
    main()
