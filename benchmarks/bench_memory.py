"""Peak memory as the dataset grows: 1 000 vs 10 000 images (one feature-extraction pass +
head training), each in a fresh subprocess. Images stream from disk and embeddings go to a
memory-mapped file, so memory should grow far less than tenfold.

    .venv/bin/python benchmarks/bench_memory.py
"""

from __future__ import annotations

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
print(json.dumps({{"peak_mb": _common.peak_rss_mb(), "seconds": time.perf_counter() - t0,
                  "score": est.best_score_}}))
"""


def main() -> None:
    tmp = Path(tempfile.mkdtemp())
    results = {}
    for per_class in (100, 1000):
        folder = _common.fashion_folder(tmp / f"fm{per_class}", per_class)
        code = CHILD.format(bench=str(Path(__file__).parent), run=str(tmp / f"run{per_class}"),
                            cache=str(tmp / f"cache{per_class}"), folder=str(folder))
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        results[per_class * 10] = json.loads(out.stdout.strip().splitlines()[-1])
        r = results[per_class * 10]
        print(f"{per_class * 10:>6} images: peak RSS {r['peak_mb']:7.0f} MB, {r['seconds']:6.1f} s, "
              f"val acc {r['score']:.4f}", flush=True)
    a, b = results[1000]["peak_mb"], results[10000]["peak_mb"]
    print(f"peak memory ratio 10 000 / 1 000 images: {b / a:.2f}x (data grew 10x)")


if __name__ == "__main__":
    main()
