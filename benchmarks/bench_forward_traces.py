"""The TensorFlow forward pass over two batch sizes: ``automl_tl.forward.compiled_forward``
(its first trace leaves the batch size open) against the ``tf.function`` it wrapped before, which
traced the first call's shape and, at the next batch size, a second time relaxed
(docs/benchmarks.md "The forward pass over two batch sizes").

    .venv/bin/python benchmarks/bench_forward_traces.py
    .venv/bin/python benchmarks/bench_forward_traces.py --image-size 224 --repeats 3

Each measurement runs in a new process (a trace is kept for the process's life): MobileNetV2 with
its real weights, then batches of 7 and 32 random images (a few items to predict, then a full
batch), each call timed. The variants alternate ``--repeats`` times; printed: each call's seconds,
the traces, and the ratio of the medians of the two calls' sum.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

import _common  # noqa: F401 - puts the repository and its plugins on the path

CHILD = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
import _common  # noqa: F401
import numpy as np
import tensorflow as tf
from automl_tl.forward import TF_JIT_COMPILE, compiled_forward
from automl_tl.plugin_manager import get_plugin_manager

size, variant = int(sys.argv[2]), sys.argv[3]
spec = get_plugin_manager().backbones.get("mobilenetv2")
model = spec.build(spec.resolve_weights(), {"image_size": size})
traces = [0]
if variant == "ours":
    fwd = compiled_forward(model)
    run = lambda x: fwd(x)
else:  # the tf.function the forward was before: the first shape traced, then relaxed
    def call(x):
        traces[0] += 1
        return model(x, training=False)
    fn = tf.function(call, jit_compile=TF_JIT_COMPILE, reduce_retracing=True)
    run = lambda x: np.asarray(fn(x))
x = np.random.default_rng(0).uniform(0, 255, (32, size, size, 3)).astype("float32")
seconds = []
for n in (7, 32):
    t = time.perf_counter()
    run(x[:n])
    seconds.append(time.perf_counter() - t)
print(json.dumps({"seconds": seconds, "traces": fwd.traces if variant == "ours" else traces[0]}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--image-size", type=int, default=96)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    here = os.path.dirname(os.path.abspath(__file__))
    env = dict(os.environ, KERAS_BACKEND="tensorflow")
    seen: dict[str, list[dict]] = {"before": [], "ours": []}
    for _ in range(args.repeats):
        for variant in ("before", "ours"):
            out = subprocess.run([sys.executable, "-c", CHILD, here, str(args.image_size), variant], env=env,
                                 capture_output=True, text=True, timeout=600)
            if out.returncode != 0:
                raise SystemExit(out.stderr[-3000:])
            seen[variant].append(json.loads(out.stdout.strip().splitlines()[-1]))
    print("variant | 7 rows (s) | then 32 rows (s) | traces")
    for variant, runs in seen.items():
        first = ", ".join(f"{r['seconds'][0]:.2f}" for r in runs)
        second = ", ".join(f"{r['seconds'][1]:.2f}" for r in runs)
        print(f"{variant} | {first} | {second} | {', '.join(str(r['traces']) for r in runs)}")
    ratio = statistics.median(sum(r["seconds"]) for r in seen["ours"]) / \
        statistics.median(sum(r["seconds"]) for r in seen["before"])
    print(f"both calls, ours / before (medians): {ratio:.2f}x")


if __name__ == "__main__":
    main()
