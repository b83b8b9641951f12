"""The scoring metrics' cost per call, ours (automl_tl.metrics) against scikit-learn's, in one run
(docs/benchmarks.md "The metrics' cost per call"). ``automl-tl evaluate`` computes each metric
on 999 bootstrap resamples, and a search scores every epoch of every head: the per-call cost is
what they pay.

    .venv/bin/python benchmarks/bench_metrics.py
    .venv/bin/python benchmarks/bench_metrics.py --items 1000 --classes 10

Random labellings (seeded); both give the same values (checked here and in
tests/core/test_training_parts.py). Printed: milliseconds a call for each, and the ratio.
"""

from __future__ import annotations

import argparse
import time
import warnings

import _common  # noqa: F401 - puts the repository on the path


def _per_call(fn, a, b, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn(a, b)
    return (time.perf_counter() - start) / calls * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--items", type=int, default=72)
    ap.add_argument("--classes", type=int, default=3)
    ap.add_argument("--calls", type=int, default=1000)
    args = ap.parse_args()
    import numpy as np
    from sklearn.metrics import balanced_accuracy_score, f1_score

    from automl_tl.metrics import METRICS

    rng = np.random.default_rng(0)
    truth, pred = rng.integers(0, args.classes, args.items), rng.integers(0, args.classes, args.items)
    reference = {"macro_f1": lambda a, b: f1_score(a, b, average="macro"),
                 "balanced_accuracy": balanced_accuracy_score}
    print(f"{args.items} items, {args.classes} classes, {args.calls} calls each")
    print("metric | scikit-learn ms/call | ours ms/call | ratio")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, ref in reference.items():
            assert abs(ref(truth, pred) - METRICS[name](truth, pred)) < 1e-12, name
            theirs, ours = _per_call(ref, truth, pred, args.calls), _per_call(METRICS[name], truth, pred, args.calls)
            print(f"{name} | {theirs:.3f} | {ours:.3f} | {theirs / ours:.0f}x")


if __name__ == "__main__":
    main()
