"""Which sub-folders of a data folder are classes, and which name splits (train, val, test)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

_log = logging.getLogger("automl_tl")


_SPLIT_NAMES = {"train": "train", "training": "train", "val": "val", "valid": "val",
                "validation": "val", "dev": "val"}


#: what a split folder or a split column's value may say: the test part is left out of the search
_SPLIT_FOLDERS = _SPLIT_NAMES | {"test": "test", "testing": "test"}


#: sub-folder names that say their files have no label (aclImdb's ``train/unsup``, 50 000 reviews;
#: STL-10's ``unlabeled``): never a class
_UNLABELLED_FOLDERS = {"unsup", "unsupervised", "unlabeled", "unlabelled"}


def _class_dirs(root: Path, *, say: bool = False, within: Path | None = None) -> list[Path]:
    """The sub-folders of ``root`` that may be classes; ``say``: warn about each one left out
    because its name says it is unlabelled, or because it is a link to a folder outside the data
    folder ``within`` (default ``root``)."""
    from automl_tl.schema import RUN_MARKERS

    # a run directory written inside the data folder is not a class (its files are ours, not data)
    dirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")
                  and not any((d / m).exists() for m in RUN_MARKERS))
    # a link to a folder elsewhere (data/etc -> /etc) would be walked as a class, every file below
    # it listed as skipped; a link to a folder inside the data folder is read like any class
    top = (within or root).resolve()
    outside = []
    for d in dirs:
        try:
            inside = d.resolve().is_relative_to(top)
        except (OSError, RuntimeError):  # a loop of links
            inside = False
        if not inside:
            outside.append(d)
            if say:
                _log.warning("class %r is a link to %s (outside the data folder): left out (to train on it, "
                             "make %s a folder of its files, or of links to them)", d.name, os.path.realpath(d), d)
    unlabelled = [d for d in dirs if d.name.lower() in _UNLABELLED_FOLDERS and d not in outside]
    for d in unlabelled if say else ():
        _log.warning("%s/ is left out: its name says its files have no label (rename it to train on it as "
                     "a class)", d)
    return [d for d in dirs if d not in unlabelled and d not in outside]


def _split_layout(root: Path, subdirs: list[Path]) -> dict[str, Path] | None:
    """``{"train": folder, "val": folder?, "test": folder?}`` when ``root`` holds split folders
    (``train/``, ``val/``, ``test/`` ... each with class sub-folders) rather than classes."""
    names = {d.name.lower(): d for d in subdirs}
    if not names or not set(names) <= set(_SPLIT_FOLDERS) or "train" not in {_SPLIT_FOLDERS[n] for n in names}:
        return None
    parts = {_SPLIT_FOLDERS[n]: d for n, d in sorted(names.items())}
    return parts if _class_dirs(parts["train"]) else None
