"""Peak memory as the dataset grows, two benchmarks in one script, each command in a fresh subprocess.

Text tables (issue 35), ``--out DIR``: writes CSV tables ``text,label`` of 10 000 / 100 000 /
1 000 000 short texts (5-15 words from a 3 000-word vocabulary, 3 classes, about one word in five
drawn from a class's own 40 words, so the label is learnable) under DIR, then runs
``automl-tl profile TABLE`` and ``automl-tl fit TABLE --backbones tfidf --time-budget 1m`` on each
under ``/usr/bin/time -v`` while polling the resident memory of the command and all of its children
(psutil), and prints the peak per command and size. Each fit gets a fresh run folder, cache folder
and knowledge file in a temporary folder, so nothing in the user's home is touched.

    .venv/bin/python benchmarks/bench_memory.py --out /tmp/mem [--rows 10000,100000,1000000]
        [--commands profile,fit] [--time-budget 1m]

Images (issue 12), without ``--out``: a one-trial feature-extraction fit over 1 000, 10 000 and
60 000 Fashion-MNIST images (all of its training split), each in a fresh subprocess. Images stream
from disk, embeddings go to a memory-mapped file and the candidates are ranked on a 2 000-item
sample, so memory and fixed costs should grow far less than the data.

    .venv/bin/python benchmarks/bench_memory.py [--sizes 1000,10000,60000] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import _common

CHILD = r"""
import json, sys, time
sys.path.insert(0, {bench!r})
import _common
from automl_tl import AutoTransfer
t0 = time.perf_counter()
est = AutoTransfer(backbones=["mobilenetv2"], trials=1, strategies=["feature_extraction"],
                   run_dir={run!r}, cache_dir={cache!r}, report=False).fit({folder!r})
timings = json.loads(open({run!r} + "/summary.json").read()).get("timings", {{}})
print(json.dumps({{"peak_mb": _common.peak_rss_mb(), "seconds": time.perf_counter() - t0,
                  "score": est.best_score_, "timings": timings}}))
"""

ROOT = Path(__file__).resolve().parents[1]
CLI = Path(sys.executable).parent / "automl-tl"


def text_table(path: Path, rows: int, *, classes: int = 3, vocabulary: int = 3000, seed: int = 0) -> Path:
    """A CSV ``text,label`` of ``rows`` short texts (5-15 words each); a word is one of its class's
    own 40 words with probability 0.2, else any word of the vocabulary."""
    import numpy as np

    if path.exists():
        return path
    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    words = set()
    while len(words) < vocabulary:
        words.add("".join(rng.choice(letters, rng.integers(3, 9))))
    words = np.array(sorted(words), dtype=object)
    own = rng.permutation(vocabulary)[:classes * 40].reshape(classes, 40)
    labels = rng.integers(0, classes, rows)
    lengths = rng.integers(5, 16, rows)
    tmp = path.with_suffix(".part")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write("text,label\n")
        for start in range(0, rows, 100_000):
            stop = min(rows, start + 100_000)
            width = 15
            pick = rng.integers(0, vocabulary, (stop - start, width))
            mine = own[labels[start:stop, None], rng.integers(0, 40, (stop - start, width))]
            pick = np.where(rng.random((stop - start, width)) < 0.2, mine, pick)
            lines = [" ".join(words[pick[i, :lengths[start + i]]]) + f",class_{labels[start + i]}\n"
                     for i in range(stop - start)]
            fh.writelines(lines)
    tmp.replace(path)
    return path


def measure(argv: list[str], env: dict) -> dict:
    """Run ``argv`` under ``/usr/bin/time -v``; the peak of the summed RSS of it and its children
    (sampled every 50 ms) and ``time``'s maximum resident set size, in MB."""
    import psutil

    timer = ["/usr/bin/time", "-v"] if Path("/usr/bin/time").exists() else []
    t0 = time.perf_counter()
    proc = subprocess.Popen(timer + argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = [0]

    def poll():
        root = psutil.Process(proc.pid)
        while proc.poll() is None:
            try:
                tree = [root] + root.children(recursive=True)
                rss = 0
                for p in tree:
                    if timer and p.pid == root.pid:
                        continue  # /usr/bin/time itself
                    try:
                        rss += p.memory_info().rss
                    except psutil.Error:
                        pass
                peak[0] = max(peak[0], rss)
            except psutil.Error:
                pass
            time.sleep(0.05)

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    out, err = proc.communicate()
    thread.join()
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", err)
    return {"rc": proc.returncode, "seconds": time.perf_counter() - t0, "peak_tree_mb": peak[0] / 2**20,
            "maxrss_mb": int(m.group(1)) / 1024 if m else None, "stdout": out, "stderr": err}


def tables_main(args) -> None:
    args.out.mkdir(parents=True, exist_ok=True)
    results = []
    for rows in [int(v) for v in args.rows.split(",")]:
        table = text_table(args.out / f"texts_{rows}.csv", rows)
        size = table.stat().st_size / 1e6
        for command in args.commands.split(","):
            tmp = Path(tempfile.mkdtemp(prefix=f"mem_{command}_{rows}_"))
            env = dict(os.environ, AUTOML_TL_CACHE_DIR=str(tmp / "cache"),
                       AUTOML_TL_KNOWLEDGE=str(tmp / "knowledge.jsonl"), AUTOML_TL_OFFLINE="1",
                       TF_CPP_MIN_LOG_LEVEL="2", XDG_DATA_HOME=str(tmp / "xdg"), XDG_CACHE_HOME=str(tmp / "xdgc"))
            if command == "profile":
                argv = [str(CLI), "profile", str(table), "--json"]
            else:
                argv = [str(CLI), "fit", str(table), "--backbones", "tfidf", "--time-budget", args.time_budget,
                        "--run-dir", str(tmp / "run"), "--cache-dir", str(tmp / "cache"), "--no-report", "--quiet"]
            r = measure(argv, env)
            score = None
            summary = tmp / "run" / "summary.json"
            if summary.exists():
                s = json.loads(summary.read_text())
                score = (s.get("selection") or {}).get("score")
            row = {"rows": rows, "table_mb": size, "command": command, "rc": r["rc"], "seconds": r["seconds"],
                   "peak_tree_mb": r["peak_tree_mb"], "maxrss_mb": r["maxrss_mb"], "score": score}
            results.append(row)
            print(f"{rows:>8} rows ({size:5.1f} MB) {command:>7}: peak RSS {r['peak_tree_mb']:7.0f} MB "
                  f"(time -v max {r['maxrss_mb'] or 0:7.0f} MB), {r['seconds']:6.1f} s, rc {r['rc']}"
                  + (f", score {score}" if score is not None else ""), flush=True)
            if r["rc"]:
                print(r["stderr"][-3000:], file=sys.stderr)
            if not args.keep:
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                print(f"    kept {tmp}")
    (args.out / "memory.json").write_text(json.dumps(results, indent=2))


def images_main(args) -> None:
    tmp = Path(tempfile.mkdtemp())
    results = {}
    for n in [int(v) for v in args.sizes.split(",")]:
        per_class = n // 10
        folder = _common.fashion_folder(tmp / f"fm{per_class}", per_class)
        code = CHILD.format(bench=str(Path(__file__).parent), run=str(tmp / f"run{per_class}"),
                            cache=str(tmp / f"cache{per_class}"), folder=str(folder))
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        results[n] = r = json.loads(out.stdout.strip().splitlines()[-1])
        trial = r["timings"].get("trials", 0.0)
        print(f"{n:>6} images: peak RSS {r['peak_mb']:7.0f} MB, {r['seconds']:6.1f} s ({n / r['seconds']:.0f} images/s, "
              f"trial {trial / r['seconds']:.0%} of it), val acc {r['score']:.4f}; timings {r['timings']}", flush=True)
    sizes = sorted(results)
    for a, b in zip(sizes, sizes[1:]):
        print(f"{b} vs {a} images ({b / a:.0f}x data): peak memory {results[b]['peak_mb'] / results[a]['peak_mb']:.2f}x, "
              f"time {results[b]['seconds'] / results[a]['seconds']:.2f}x")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, help="text tables: the folder for the tables and memory.json")
    ap.add_argument("--rows", default="10000,100000,1000000", help="text tables: table sizes")
    ap.add_argument("--commands", default="profile,fit", help="text tables: profile, fit or both")
    ap.add_argument("--time-budget", default="1m", help="text tables: the fit's --time-budget")
    ap.add_argument("--keep", action="store_true", help="text tables: keep each command's run folder")
    ap.add_argument("--sizes", default="1000,10000,60000", help="images: dataset sizes (10 classes, balanced)")
    ap.add_argument("--json", type=Path, default=_common.OUT / "memory.json", help="images: where results go")
    args = ap.parse_args()
    if args.out is not None:
        tables_main(args)
    else:
        images_main(args)


if __name__ == "__main__":
    main()
