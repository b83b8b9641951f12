"""Reading and writing memory-mapped features without keeping them resident.

The embedding cache keeps features in memory-mapped ``.npy`` files so that they need disk, not
memory. But every page of a mapping that is read or written stays in the process's resident set
until the mapping is closed: writing the 6.5 GB of TF-IDF features of 100 000 texts, or reading
them once for a checksum, made the process's peak resident memory 6.5 GB larger although nothing
needed them in memory. :func:`release` drops the pages of a mapping from the process (its data
stay in the file and in the page cache, which the kernel frees as it needs), and
:func:`row_chunks` cuts a pass over rows into pieces of a bounded size; :func:`standardise` reads
rows standardised that way, into one array."""

from __future__ import annotations

import mmap

import numpy as np

__all__ = ["CHUNK_BYTES", "as_rows", "mapping_of", "release", "row_chunks", "standardise"]

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


def as_rows(x):
    """``x`` as features to read rows from: itself when it has a shape and can be indexed (an
    array, a memory map, the cache's sparse rows: no copy), else ``np.asarray(x)``."""
    return x if hasattr(x, "shape") and hasattr(x, "__getitem__") else np.asarray(x)


def row_chunks(n_rows: int, row_bytes: int, chunk_bytes: int | None = None):
    """``slice`` objects over ``range(n_rows)``, each of at most ``chunk_bytes`` (default
    ``CHUNK_BYTES``; one row at least)."""
    step = max(1, int((CHUNK_BYTES if chunk_bytes is None else chunk_bytes) // max(1, row_bytes)))
    for start in range(0, n_rows, step):
        yield slice(start, min(n_rows, start + step))


def standardise(x, fit_rows, *other_rows, dtype=np.float64):
    """``(mean, variance, [x[rows] standardised, as dtype, for fit_rows and each of other_rows])``
    with the mean and variance of ``x[fit_rows]``; ``fit_rows`` None: all rows.

    Read piece by piece (``x`` is often memory-mapped; its pages are dropped after each piece)
    and written straight into the one array per part that is returned (issue 35: a float64 copy,
    the temporary of ``var`` and the standardised copy were three copies of the data, the
    float32 rows read first a fourth). The values are those of ``x[rows].mean(0)``,
    ``.var(0)`` and ``(x[rows] - mean) / std`` to the bit: numpy sums along the first axis row
    after row, and so do these pieces, each continuing from the sum so far."""
    fit_rows = np.arange(len(x)) if fit_rows is None else np.asarray(fit_rows)
    d = int(np.shape(x)[1])
    n = len(fit_rows)

    def rows_sum(transform):
        total = None
        for part in row_chunks(n, d * 8):
            block = transform(np.asarray(x[fit_rows[part]], dtype=np.float64))
            total = np.add.reduce(block if total is None else np.concatenate([total[None], block]), axis=0)
            release(x)
        return np.zeros(d) if total is None else total

    mean = rows_sum(lambda b: b) / n

    def squared_deviation(b):
        b -= mean
        b *= b
        return b

    std = np.sqrt(rows_sum(squared_deviation) / n + 1e-6)
    out = []
    for rows in (fit_rows, *(np.asarray(r) for r in other_rows)):
        a = np.empty((len(rows), d), dtype=dtype)
        for part in row_chunks(len(rows), d * 8):
            block = np.asarray(x[rows[part]], dtype=np.float64)
            block -= mean
            block /= std
            a[part] = block
            release(x)
        out.append(a)
    return mean, std ** 2, out
