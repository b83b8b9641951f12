"""Transferability proxies: LogME's evidence equals the Gaussian marginal likelihood it stands
for; LogME and kNN rank informative features above noise; Kendall's tau against the search."""

import numpy as np
import pytest

from automl_tl.transferability import candidate_key, knn_score, logme, rank_agreement, transferability_summary


def _evidence_direct(x, t, alpha, beta):
    """log N(t; 0, X X^T / alpha + I / beta), computed the slow way."""
    from scipy.stats import multivariate_normal

    n = len(t)
    cov = x @ x.T / alpha + np.eye(n) / beta
    return multivariate_normal(mean=np.zeros(n), cov=cov).logpdf(t)


@pytest.mark.parametrize("n,d", [(40, 5), (12, 30)])  # more items than dimensions, and fewer
def test_logme_is_the_log_evidence_at_its_fixed_point(n, d):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, d))
    y = (x[:, 0] + 0.5 * rng.normal(size=n) > 0).astype(int)
    got = logme(x, y, 2)
    xs = (x - x.mean(0)) / x.std(0)
    # the evidence is maximised over alpha and beta: a grid search of the direct formula never beats it
    best = []
    for k in (0, 1):
        t = (y == k).astype(float)
        best.append(max(_evidence_direct(xs, t, a, b) for a in np.logspace(-3, 3, 25) for b in np.logspace(-3, 3, 25)) / n)
    assert got >= np.mean(best) - 1e-6
    assert got - np.mean(best) < 0.05  # and the grid's best comes close (it is the same function)


def test_proxies_rank_informative_features_above_noise():
    rng = np.random.default_rng(1)
    n, classes = 300, 3
    y = np.repeat(np.arange(classes), n // classes)
    centres = rng.normal(size=(classes, 16)) * 2.0
    good = centres[y] + rng.normal(size=(n, 16))
    noise = rng.normal(size=(n, 16))
    folds = [(np.flatnonzero(np.arange(n) % 5 != f), np.flatnonzero(np.arange(n) % 5 == f)) for f in range(5)]

    def accuracy(a, b):
        return float(np.mean(a == b))

    assert logme(good, y, classes) > logme(noise, y, classes) + 0.1
    assert knn_score(good, y, folds, metric=accuracy) > 0.9
    assert knn_score(noise, y, folds, metric=accuracy) < 0.5


def test_rank_agreement_needs_three_backbones_and_reports_tau():
    assert rank_agreement({"a": 1, "b": 2}, {"a": 0.5, "b": 0.6})["tau"] is None
    agree = rank_agreement({"a": 1, "b": 2, "c": 3}, {"a": 0.5, "b": 0.6, "c": 0.7})
    assert agree["tau"] == 1.0 and agree["n"] == 3
    assert rank_agreement({"a": 3, "b": 2, "c": 1}, {"a": 0.5, "b": 0.6, "c": 0.7})["tau"] == -1.0


def test_summary_ranks_backbone_and_readout_pairs():
    rows = [{"backbone": "m", "options": {"f": "final"}, "score": 0.7, "proxies": {"logme": -1.0, "knn": 0.6}},
            {"backbone": "m", "options": {"f": "mid"}, "score": 0.8, "proxies": {"logme": -0.5, "knn": 0.5}},
            {"backbone": "p", "options": {}, "score": 0.6, "proxies": {"logme": -2.0, "knn": 0.4}},
            {"backbone": "v", "options": {}, "score": 0.75, "proxies": {"error": "boom"}},
            {"backbone": "w", "options": {}, "skipped": "time"}]
    found = {candidate_key("m", {"f": "final"}): 0.72, candidate_key("m", {"f": "mid"}): 0.85, "p": 0.55, "v": 0.74}
    out = transferability_summary(rows, found)
    assert out["by_candidate"]["m[f=mid]"] == {"linear_probe": 0.8, "logme": -0.5, "knn": 0.5, "search": 0.85}
    assert out["tau"]["linear_probe"]["tau"] == 1.0 and out["tau"]["linear_probe"]["n"] == 4
    assert out["tau"]["logme"]["n"] == 3  # v has no LogME
    assert "w" not in out["by_candidate"]


def test_logme_with_more_dimensions_than_items_equals_the_svd_form(monkeypatch, tmp_path):
    """Above n dimensions LogME's spectrum comes from the n x n Gram matrix (issue 35: TF-IDF's
    16 384 dimensions on a 2 000-item sample): the same spectrum and evidence as the SVD of the
    standardised copy, on memory-mapped features that are mostly zeros as TF-IDF's are."""
    from automl_tl import transferability

    rng = np.random.default_rng(3)
    n, d = 60, 500
    x = ((rng.random((n, d)) < 0.05) * rng.random((n, d))).astype(np.float32)
    x[:, 7] = 0.0  # a constant column: its scale is taken as 1, as before
    y = rng.integers(0, 3, n)
    mapped = np.lib.format.open_memmap(tmp_path / "f.npy", mode="w+", dtype=np.float32, shape=(n, d))
    mapped[:] = x
    got = logme(mapped, y, 3)
    _, gs = transferability._standardised_spectrum(mapped)

    x64 = x.astype(np.float64)
    scale = x64.std(0)
    u, s, _ = np.linalg.svd((x64 - x64.mean(0)) / np.where(scale > 0, scale, 1.0), full_matrices=False)
    np.testing.assert_allclose(gs[: n - 1], s[: n - 1], rtol=1e-6)  # the last: the centring's zero
    monkeypatch.setattr(transferability, "_standardised_spectrum", lambda _x: (u, s))
    want = logme(x, y, 3)
    assert abs(got - want) < 1e-6 * max(1.0, abs(want))


def test_knn_on_memory_mapped_features_matches_the_float64_vote():
    rng = np.random.default_rng(4)
    n, classes = 200, 4
    y = np.repeat(np.arange(classes), n // classes)
    x = (rng.normal(size=(classes, 32)) * 2.0)[y] + rng.normal(size=(n, 32))
    folds = [(np.flatnonzero(np.arange(n) % 5 != f), np.flatnonzero(np.arange(n) % 5 == f)) for f in range(5)]

    def accuracy(a, b):
        return float(np.mean(a == b))

    from sklearn.neighbors import KNeighborsClassifier

    truth, pred = [], []
    for tr, va in folds:  # the float64 reference: standardised with the training rows' statistics
        mean, std = x[tr].mean(0), np.sqrt(x[tr].var(0) + 1e-6)
        clf = KNeighborsClassifier(n_neighbors=14, metric="cosine", weights="distance").fit((x[tr] - mean) / std, y[tr])
        pred.append(clf.predict((x[va] - mean) / std))
        truth.append(y[va])
    want = accuracy(np.concatenate(truth), np.concatenate(pred))
    assert knn_score(x.astype(np.float32), y, folds, metric=accuracy, k=14) == pytest.approx(want, abs=1.5 / n)
