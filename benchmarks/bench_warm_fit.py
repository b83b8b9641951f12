"""The fixed cost of a fit: several small feature-extraction fits in one process (a notebook, a
script over several datasets, the test suite), each timed, against the time of their trials
(docs/benchmarks.md "A fit's fixed costs").

    .venv/bin/python benchmarks/bench_warm_fit.py
    .venv/bin/python benchmarks/bench_warm_fit.py --fits 4 --per-class 12 --trials 1

The data are Fashion-MNIST images of classes 0, 1 and 7 (the tests' three) written as a class
folder; each fit is ``AutoTransfer(backbones=["mobilenetv2"], strategies=["feature_extraction"])``
with its own run folder and one shared embedding cache in a temporary folder. The first fit pays
the imports and the first traces; the later ones are what a fit costs on its own. Printed: each
fit's seconds, the seconds its search's trials took (``trial_seconds`` of its study) and the
ratio of the two (what is not training: profiling, probing, saving, the views).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import _common  # noqa: F401 - puts the repository and its plugins on the path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fits", type=int, default=3)
    ap.add_argument("--per-class", type=int, default=12)
    ap.add_argument("--trials", type=int, default=1)
    args = ap.parse_args()
    home = tempfile.mkdtemp(prefix="bench-warm-fit-")
    os.environ.setdefault("AUTOML_TL_CACHE_DIR", os.path.join(home, "cache"))
    os.environ.setdefault("AUTOML_TL_KNOWLEDGE", os.path.join(home, "knowledge.jsonl"))
    os.environ.setdefault("AUTOML_TL_WARM_START", "0")  # each fit the same search

    t0 = time.perf_counter()
    from automl_tl import AutoTransfer
    from automl_tl.demo import fashion_mnist, write_image_folder
    from automl_tl.schema import ATTR

    images, labels, names = fashion_mnist()
    folder = write_image_folder(os.path.join(home, "data"), images, labels, names, per_class=args.per_class,
                                classes=(0, 1, 7))
    print(f"imports and data: {time.perf_counter() - t0:.1f} s")
    print("fit | seconds | its trials' seconds | fit / trials")
    for k in range(1, args.fits + 1):
        t = time.perf_counter()
        est = AutoTransfer(backbones=["mobilenetv2"], strategies=["feature_extraction"], trials=args.trials,
                           run_dir=os.path.join(home, f"run{k}"), report=False, patience=0, progress=False)
        est.fit(str(folder))
        seconds = time.perf_counter() - t
        trials = sum(float(tr.user_attrs.get(ATTR.SECONDS, 0.0)) for tr in est.study_.trials)
        print(f"{k} | {seconds:.2f} | {trials:.2f} | {seconds / max(trials, 1e-9):.1f}x")


if __name__ == "__main__":
    main()
