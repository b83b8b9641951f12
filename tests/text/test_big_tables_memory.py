"""Issue 35: big tables of short texts without several copies of them in memory (or work for nothing).

* the TF-IDF vocabulary and idf are learned from the n-grams' counts, not from scikit-learn's
  whole count matrix, and come out exactly as scikit-learn's fit gives them;
* a logistic regression on mostly-zero features (TF-IDF) too large for a dense float64 copy is
  fitted on a sparse matrix read piece by piece, and gives the dense fit's model;
* pages of memory-mapped features are dropped from the process without losing their data;
* no near-duplicate clusters are looked for (nor every item embedded for them) above the size
  where they are not.

Data are made here; no timing or memory thresholds."""

from __future__ import annotations

import numpy as np
import pytest


def _texts(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    words = np.array(["".join(rng.choice(list("abcdefgh"), rng.integers(2, 6))) for _ in range(400)])
    return [" ".join(rng.choice(words, rng.integers(3, 12))) for _ in range(n)]


@pytest.mark.parametrize("n", [1, 3, 40, 1500])
def test_the_vocabulary_and_idf_are_scikit_learns(n, monkeypatch):
    from automl_tl_text import _tfidf

    monkeypatch.setattr(_tfidf, "MAX_FEATURES", 300)  # the cap is reached, with ties at its edge
    texts = _texts(n) + (["", "   "] if n == 3 else [])
    for name in ("word", "char"):
        ours, theirs = _tfidf.vectorizers(len(texts))[name], _tfidf.vectorizers(len(texts))[name]
        try:
            theirs.fit(texts)
        except ValueError as exc:
            with pytest.raises(ValueError, match=str(exc)[:20]):
                _tfidf.learn(ours, texts)
            continue
        vocabulary, idf = _tfidf.learn(ours, texts)
        assert list(vocabulary.items()) == [(k, int(v)) for k, v in theirs.vocabulary_.items()]  # order too
        assert idf.dtype == theirs.idf_.dtype and np.array_equal(idf, theirs.idf_)


def _sparse_problem(n=600, d=400, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = (rng.random((n, d)) < 0.03) * rng.random((n, d))
    for k in range(3):  # a few words of each class
        x[y == k, 10 * k:10 * k + 10] += rng.random((int((y == k).sum()), 10)) < 0.4
    return x.astype(np.float32), y


class _Watched(np.ndarray):
    """Features that remember how many rows each read took."""

    reads: list

    def __getitem__(self, key):
        out = super().__getitem__(key)
        if isinstance(key, np.ndarray) and key.ndim == 1:
            type(self).reads.append(len(key))
        return np.asarray(out)


def test_mostly_zero_features_are_fitted_sparse_piece_by_piece_with_the_dense_fits_model(monkeypatch):
    from automl_tl import _pages, probe

    x, y = _sparse_problem()
    rows = np.arange(0, len(x), 2)
    dense = probe.fit_logistic(x[rows], y[rows], 0.5, 3)
    monkeypatch.setattr(probe, "SPARSE_ABOVE", 0)  # as with 100 000 texts
    monkeypatch.setattr(_pages, "CHUNK_BYTES", 40 * x.shape[1] * 4)  # pieces of 40 rows
    _Watched.reads = []
    watched = x.view(_Watched)
    assert probe._mostly_zeros(watched, rows)
    sparse = probe.fit_logistic(watched, y[rows], 0.5, 3, rows=rows)
    assert _Watched.reads and max(_Watched.reads) <= 256  # never all 300 rows at once

    def probs(mean, var, W, b):
        z = ((x - mean) / np.sqrt(var)) @ W + b
        e = np.exp(z - z.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    np.testing.assert_allclose(sparse[0], dense[0], atol=1e-6)  # the same standardisation
    np.testing.assert_allclose(sparse[1], dense[1], rtol=1e-5)
    # the same model up to the solver's tolerance (the intercept takes up the centring)
    assert np.abs(probs(*sparse) - probs(*dense)).max() < 0.05
    assert (probs(*sparse).argmax(1) == probs(*dense).argmax(1)).mean() > 0.97


def test_the_probe_on_mostly_zero_features_reads_no_dense_copy(monkeypatch):
    from automl_tl import probe

    x, y = _sparse_problem(seed=1)
    folds = [(np.flatnonzero(np.arange(600) % 5 != f), np.flatnonzero(np.arange(600) % 5 == f)) for f in range(5)]
    accuracy = lambda a, b: float(np.mean(a == b))  # noqa: E731
    dense = probe.linear_probe(x, y, folds, metric=accuracy, n_classes=3)
    monkeypatch.setattr(probe, "SPARSE_ABOVE", 0)
    monkeypatch.setattr(probe, "_standardise", lambda *a: pytest.fail("a dense copy was standardised"))
    _Watched.reads = []
    sparse = probe.linear_probe(x.view(_Watched), y, folds, metric=accuracy, n_classes=3)
    assert sparse.oof_probs.shape == dense.oof_probs.shape and sparse.dim == x.shape[1]
    assert abs(sparse.score - dense.score) < 0.05
    # the rows are read once for all five folds (each fold's scaled copy is made from that one
    # sparse matrix when the fold is fitted), not once per fold and side
    assert sum(_Watched.reads) - 256 <= len(x)  # 256: the first rows, looked at to call them sparse


def test_released_pages_of_a_memory_map_keep_their_data(tmp_path):
    from automl_tl._pages import mapping_of, release, row_chunks

    path = tmp_path / "f.npy"
    arr = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(100, 8))
    arr[:] = np.arange(800, dtype=np.float32).reshape(100, 8)
    assert release(arr[10:])  # written, not yet flushed
    arr[0, 0] = -1
    arr.flush()
    del arr
    back = np.load(path, mmap_mode="r")
    assert mapping_of(back) is not None and release(back)
    assert back[0, 0] == -1 and back[99, 7] == 799
    assert not release(np.zeros(3))  # nothing mapped: nothing to do
    assert [(s.start, s.stop) for s in row_chunks(10, 4, 12)] == [(0, 3), (3, 6), (6, 9), (9, 10)]


def test_no_features_of_every_item_are_computed_for_clusters_that_are_not_looked_for():
    from types import SimpleNamespace

    from automl_tl import grouping
    from automl_tl.sources import CLUSTER_MAX_ITEMS

    def features(*_):
        raise AssertionError("the features of every item were computed")

    probes = [{"backbone": "minilm-l6", "options": {}, "score": 0.8, "classical": False}]
    big = SimpleNamespace(y=np.zeros(CLUSTER_MAX_ITEMS + 1, dtype=int), features=features)
    assert grouping.clusters(big, probes) is None


def _tfidf_cache_kw(tmp_path, n=300):
    """What the engine hands the cache for the real ``tfidf`` featurizer over ``n`` texts."""
    from types import SimpleNamespace

    from automl_tl.plugin_manager import PluginManager
    from automl_tl_text._tfidf import fit_tfidf

    texts = _texts(n)
    folder = tmp_path / "vocabulary"
    folder.mkdir()
    fit_tfidf(texts, str(folder))
    weights = SimpleNamespace(location=str(folder), fingerprint="vocabulary")
    spec = PluginManager().backbones.get("tfidf")
    dense = spec.featurize(weights, {})(texts)
    return dict(spec=spec, weights=weights, input_config={}, options={}, items=texts, data_fingerprint="texts",
                batch_size=32), dense


def test_tfidf_features_are_cached_sparse_and_read_back_as_their_dense_rows(tmp_path, caplog):
    """A featurizer that declares ``sparse`` (TF-IDF) is cached as CSR files (1.1 KB a short text
    where a dense row is 64 KB: 1 000 000 texts fit a disk), read back as the same rows, checked
    by its checksum like a dense file, and its leftovers removed like a dense file's."""
    import json
    import logging

    from automl_tl.cache import _HOST, EmbeddingCache
    from automl_tl.sparse_features import SparseRows

    kw, dense = _tfidf_cache_kw(tmp_path)
    root = tmp_path / "cache"
    first = EmbeddingCache(root).get_or_compute(**kw)
    assert isinstance(first, SparseRows) and first.shape == dense.shape
    rows = np.array([5, 0, 299, 17])
    np.testing.assert_array_equal(np.asarray(first), dense)
    np.testing.assert_array_equal(first[rows], dense[rows])
    np.testing.assert_array_equal(first[3], dense[3])
    np.testing.assert_array_equal(first[:, 10:20], dense[:, 10:20])
    np.testing.assert_array_equal(first.csr(rows).toarray(), dense[rows])
    [folder] = root.glob("*.csr")
    assert not list(root.glob("*.npy")) and sorted(p.name for p in folder.iterdir()) == [
        "data.npy", "indices.npy", "indptr.npy", "shape.json"]
    meta = json.loads(folder.with_suffix(".json").read_text())
    assert meta["format"] == "csr" and meta["nnz"] == np.count_nonzero(dense) < 0.1 * dense.size

    second = EmbeddingCache(root)
    np.testing.assert_array_equal(np.asarray(second.get_or_compute(**kw)), dense)
    assert second.stats["disk_hits"] == 1 and second.stats["forward_batches"] == 0

    data = folder / "data.npy"  # random bytes in the middle of the values: found, said, computed again
    with open(data, "r+b") as fh:
        fh.seek(data.stat().st_size // 2)
        fh.write(np.random.default_rng(0).bytes(512))
    third = EmbeddingCache(root)
    with caplog.at_level(logging.WARNING, logger="automl_tl"):
        np.testing.assert_array_equal(np.asarray(third.get_or_compute(**kw)), dense)
    assert third.stats["misses"] == 1 and "is damaged" in caplog.text

    gone = root / f"abc.csr.{_HOST}.999999999.tmp"  # a writer killed mid-way (a pid that is no more)
    gone.mkdir()
    EmbeddingCache(root).get_or_compute(**(kw | {"data_fingerprint": "other"}))
    assert not gone.exists()


def test_the_probe_reads_cached_sparse_features_without_a_dense_pass(tmp_path, monkeypatch):
    from automl_tl import probe
    from automl_tl.cache import EmbeddingCache
    from automl_tl.sparse_features import SparseRows

    kw, dense = _tfidf_cache_kw(tmp_path)
    cached = EmbeddingCache(tmp_path / "cache").get_or_compute(**kw)
    y = np.arange(len(dense)) % 3
    folds = [(np.flatnonzero(np.arange(len(y)) % 5 != f), np.flatnonzero(np.arange(len(y)) % 5 == f)) for f in range(5)]
    accuracy = lambda a, b: float(np.mean(a == b))  # noqa: E731
    monkeypatch.setattr(probe, "SPARSE_ABOVE", 0)
    want = probe.linear_probe(dense, y, folds, metric=accuracy, n_classes=3)
    monkeypatch.setattr(SparseRows, "__getitem__", lambda *a: pytest.fail("dense rows were read"))
    got = probe.linear_probe(cached, y, folds, metric=accuracy, n_classes=3)
    assert got.C == want.C and np.array_equal(got.oof_probs, want.oof_probs)
