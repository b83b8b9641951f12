"""Features that are mostly zeros (TF-IDF), held as a sparse matrix and read as dense rows.

The embedding cache keeps features dense (``.npy``, memory-mapped). For a featurizer whose
features are mostly zeros (``BackboneSpec.sparse``: TF-IDF of short texts has about 136
non-zeros in 16 384 dimensions) that is 100 times the size of what they hold: 6.5 GB for 100 000
texts, 65 GB for 1 000 000, more than a disk may have. Such features are cached as CSR instead
(three ``.npy`` files, memory-mapped) and handed to the engine as :class:`SparseRows`: an object
that answers what the engine asks of cached features (``shape``, ``len``, ``x[rows]`` as dense
float32 rows, ``x[rows, cols]``), and whose :meth:`SparseRows.csr` gives the logistic regression
its sparse matrix without a dense pass (:func:`automl_tl.probe._sparse_rows`).
"""

from __future__ import annotations

import numpy as np

__all__ = ["SparseRows", "csr_parts"]


def csr_parts(block: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A dense block of rows as its CSR pieces: ``(values float32, column indices int32, non-zeros
    per row int64)``, each row's columns in order (``np.nonzero`` is row-major)."""
    block = np.asarray(block, dtype=np.float32)
    r, c = np.nonzero(block)
    return block[r, c], c.astype(np.int32), np.bincount(r, minlength=len(block)).astype(np.int64)


class SparseRows:
    """``shape`` ``(n, d)`` float32 features held as CSR arrays (often memory-mapped):
    ``x[rows]`` gives those rows dense, ``x[rows, cols]`` those rows' columns ``cols`` (an outer
    selection, not numpy's pointwise one), :meth:`csr` the sparse matrix itself; ``np.asarray(x)``
    makes the whole dense array (what a dense cache held)."""

    ndim = 2
    dtype = np.dtype(np.float32)

    def __init__(self, data: np.ndarray, indices: np.ndarray, indptr: np.ndarray, shape) -> None:
        self.data, self.indices, self.indptr = data, indices, indptr
        self.shape = (int(shape[0]), int(shape[1]))

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def nnz(self) -> int:
        return int(self.indptr[-1])

    def csr(self, rows=None):
        """The rows ``rows`` (all: None, over the arrays themselves) as a scipy CSR matrix of
        float32; a copy of them, whose mapped pages are then dropped (:meth:`release`)."""
        from scipy import sparse

        whole = sparse.csr_matrix((self.data, self.indices, self.indptr), shape=self.shape, copy=False)
        if rows is None:
            return whole
        out = whole[np.asarray(rows)]
        self.release()
        return out

    def release(self) -> None:
        """Drop the pages of the memory-mapped arrays from this process's resident memory (they
        stay in the files; the next read maps them again): :func:`automl_tl._pages.release`."""
        from automl_tl._pages import release

        for part in (self.data, self.indices, self.indptr):
            release(part)

    def __getitem__(self, key) -> np.ndarray:
        if isinstance(key, tuple):  # x[rows, cols]: only those columns made dense
            rows, cols = key
            whole = rows == slice(None) if isinstance(rows, slice) else False
            m = self.csr() if whole else self.csr(np.atleast_1d(np.arange(self.shape[0])[rows]))
            out = m[:, cols].toarray().astype(np.float32, copy=False)
            return out[0] if isinstance(rows, (int, np.integer)) else out
        if isinstance(key, (int, np.integer)):
            return self.csr([int(key)]).toarray()[0].astype(np.float32, copy=False)
        rows = np.arange(self.shape[0])[key]
        return self.csr(rows).toarray().astype(np.float32, copy=False)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = self.csr().toarray()
        return out if dtype is None else out.astype(dtype, copy=False)

    def __repr__(self) -> str:
        return f"SparseRows(shape={self.shape}, nnz={self.nnz})"
