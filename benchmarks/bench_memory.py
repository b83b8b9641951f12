"""Time and peak memory as the dataset grows: a one-trial feature-extraction fit over 1 000,
10 000 and 60 000 Fashion-MNIST images (all of its training split), each in a fresh subprocess.
Images stream from disk, embeddings go to a memory-mapped file and the candidates are ranked on
a 2 000-item sample, so memory and fixed costs should grow far less than the data.

    .venv/bin/python benchmarks/bench_memory.py [--sizes 1000,10000,60000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000,10000,60000", help="dataset sizes (10 classes, balanced)")
    ap.add_argument("--out", type=Path, default=_common.OUT / "memory.json")
    args = ap.parse_args()
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
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
