"""Reading and writing memory-mapped features without keeping them resident.

The embedding cache keeps features in memory-mapped ``.npy`` files so that they need disk, not
memory. But every page of a mapping that is read or written stays in the process's resident set
until the mapping is closed: writing the 6.5 GB of TF-IDF features of 100 000 texts, or reading
them once for a checksum, made the process's peak resident memory 6.5 GB larger although nothing
needed them in memory. :func:`release` drops the pages of a mapping from the process (its data
stay in the file and in the page cache, which the kernel frees as it needs), and
:func:`row_chunks` cuts a pass over rows into pieces of a bounded size."""

from __future__ import annotations

import mmap

import numpy as np

__all__ = ["CHUNK_BYTES", "mapping_of", "release", "row_chunks"]

#: the bytes of one piece of a pass over memory-mapped rows
CHUNK_BYTES = 64 * 2**20


def mapping_of(arr) -> mmap.mmap | None:
    """The ``mmap`` under ``arr`` (a ``np.memmap``, a view of one, or an array over an mmap), or None."""
    seen = 0
    while arr is not None and seen < 16:
        m = getattr(arr, "_mmap", None)
        if isinstance(m, mmap.mmap):
            return m
        if isinstance(arr, mmap.mmap):
            return arr
        arr = getattr(arr, "base", None)
        seen += 1
    return None


def release(arr) -> bool:
    """Drop the resident pages of the mapping under ``arr`` from this process (its data are kept:
    the file's, and written pages go to the file as they would have); True when there was one.
    Safe at any time: the next access reads the pages back."""
    m = mapping_of(arr)
    if m is None or not hasattr(m, "madvise") or not hasattr(mmap, "MADV_DONTNEED"):
        return False
    try:
        m.madvise(mmap.MADV_DONTNEED)
    except (OSError, ValueError):  # a closed mapping, a platform without it
        return False
    return True


def row_chunks(n_rows: int, row_bytes: int, chunk_bytes: int | None = None):
    """``slice`` objects over ``range(n_rows)``, each of at most ``chunk_bytes`` (default
    ``CHUNK_BYTES``; one row at least)."""
    step = max(1, int((CHUNK_BYTES if chunk_bytes is None else chunk_bytes) // max(1, row_bytes)))
    for start in range(0, n_rows, step):
        yield slice(start, min(n_rows, start + step))
