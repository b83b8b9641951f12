"""Helpers shared by the benchmarks (not by tests): data folders and peak-memory reading."""

from __future__ import annotations

import os
import resource
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("AUTOML_TL_OFFLINE", "1")

OUT = Path(__file__).resolve().parent / "_out"


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def fashion_folder(root: Path, per_class: int, *, classes=None, seed: int = 0, split: str = "train",
                   offset: int = 0) -> Path:
    from automl_tl.demo import fashion_mnist, write_image_folder

    images, labels, names = fashion_mnist(split)
    if not root.exists():
        write_image_folder(root, images, labels, names, per_class=per_class, classes=classes, seed=seed,
                           offset=offset)
    return root
