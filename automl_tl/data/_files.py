"""The files a table's column names: paths from the table's or the current folder, or names and ids found below."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Sequence

from automl_tl.data._cells import _first_values, _missing, _native

_log = logging.getLogger("automl_tl")


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):  # a long text is not a path
        return False


def _looks_like_paths(values, base: Path | None) -> bool:
    """Most of the first 20 non-empty values name existing files (relative ones from ``base``)."""
    sample = [str(v) for v in values if isinstance(v, str) and v.strip()][:20]

    def exists(v: str) -> bool:
        p = Path(_native(v))
        if not p.is_absolute() and base is not None:
            p = base / p
        try:
            return p.is_file()
        except (OSError, ValueError):
            return False

    return bool(sample) and sum(map(exists, sample)) > len(sample) / 2


#: a table's folder is searched this many levels down, and over at most this many files, for the
#: files its rows name by file name or id only
FIND_DEPTH, FIND_MAX_FILES = 3, 200_000


def _file_index(base: Path, exts: Sequence[str]) -> dict[str, list[str]]:
    """Files with ``exts`` under ``base`` (hidden folders skipped), by name and by name without
    suffix."""
    index: dict[str, list[str]] = {}
    n, top = 0, len(base.parts)
    for folder, subfolders, files in os.walk(base):
        deep = len(Path(folder).parts) - top >= FIND_DEPTH
        subfolders[:] = [] if deep else sorted(d for d in subfolders if not d.startswith((".", "__MACOSX")))
        for name in files:
            stem, ext = os.path.splitext(name)
            if ext.lower() in exts:
                path = os.path.join(folder, name)
                index.setdefault(name, []).append(path)
                index.setdefault(stem, []).append(path)
                n += 1
                if n >= FIND_MAX_FILES:
                    return index
    return index


def _files_named(values, base: Path | None, exts: Sequence[str], table: str = "") -> dict[str, str] | None:
    """``value -> file`` for a table that names its files by file name or id only
    (``image_id: 1000015157.jpg`` or ``1000015157``, the files in ``train_images/``): each value
    that names exactly one file under the table's folder (:data:`FIND_DEPTH` levels down), or
    exactly one in a folder named like the ``table`` file (``train.csv``: ``train_images/``, when
    ``test_images/`` holds a file of the same name); None unless most of the first 20 values do.
    Values with spaces are texts, not looked for."""
    sample = _first_values(values)
    if base is None or not sample or any(len(v.split()) != 1 or len(v) > 200 for v in sample):
        return None
    stem = Path(table).stem.lower()
    # the table's folder, else the one above it: datasets keep their table in meta/ and the
    # files in a sibling (ESC-50: meta/esc50.csv and audio/; UrbanSound8K: metadata/, audio/fold1/)
    for root in dict.fromkeys((base, base.parent)):
        index = _file_index(root, exts)

        def one(v: str) -> str | None:
            hits = index.get(v) or index.get(os.path.basename(v)) or []
            if len(hits) > 1 and stem:
                hits = [h for h in hits if any(part.lower().startswith(stem)
                                               for part in Path(h).relative_to(root).parts[:-1])]
            return hits[0] if len(hits) == 1 else None

        if sum(one(v) is not None for v in sample) > len(sample) / 2:
            return {str(v).strip(): f for v in values if not _missing(v) and (f := one(str(v).strip()))}
    return None


def _path_base(values, base: Path | None, where: str) -> Path | None:
    """The folder a table's relative paths are read from: the table's own (``base``), unless
    they name files only from the current folder (``data/labels.csv`` listing
    ``data/imgs/a.png``, run from the project's root): then the current folder (None)."""
    if base is None or _looks_like_paths(values, base) or not _looks_like_paths(values, None):
        return base
    _log.info("%s: relative paths read from the current folder %s, where they exist (not from the "
              "table's folder %s)", where, Path.cwd(), base)
    return None


def _table_files(values, folder: Path | None, exts: Sequence[str], table: str,
                 named: dict[str, str] | None = None) -> tuple[Path | None, dict[str, str]]:
    """Where a table's column of files points, for fit and predict alike: the folder its
    relative paths are read from (:func:`_path_base`), and, when they are not paths from there,
    ``value -> file`` for the files they name by name or id (:func:`_files_named`; ``named``
    when the caller already looked)."""
    base = _path_base(values, folder, table)
    if named is None and not _looks_like_paths(values, base):
        named = _files_named(values, folder, exts, table)
    return base, named or {}
