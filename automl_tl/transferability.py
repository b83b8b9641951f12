"""Transferability proxies: how well a backbone's frozen features will do, measured in seconds.

The linear probe (:mod:`automl_tl.probe`) is the engine's ranking; beside it, on the same cached
features and the same folds, two cheaper proxies from the literature are computed so that each
run can show how well each one ranked the backbones against the scores the search then found
(Kendall's tau, in ``summary.json`` ``transferability`` and in the report):

* **LogME** (You et al., "LogME: Practical Assessment of Pre-trained Models for Transfer
  Learning", ICML 2021): the log marginal evidence of a Bayesian linear regression from the
  features to each class's one-hot column, its prior and noise precisions set by evidence
  maximisation (a fixed-point iteration on one SVD), averaged over classes and divided by the
  number of items. No folds, no fitting of a classifier. Written here from the paper's equations
  because no maintained library ships it; scipy's SVD does the work.
* **kNN**: the run's metric of a k-nearest-neighbour vote (cosine distance on standardised
  features) over the run's folds: scikit-learn's ``KNeighborsClassifier``.

Kendall's tau comes from ``scipy.stats.kendalltau`` (tau-b, ties allowed).
"""

from __future__ import annotations

import time
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from automl_tl._pages import as_rows, release, standardise

__all__ = ["logme", "knn_score", "proxy_scores", "rank_agreement", "candidate_key", "transferability_summary",
           "PROXIES"]

#: the proxies computed beside the linear probe, in the order reports show them
PROXIES = ("logme", "knn")


def _column_stats(x) -> tuple[np.ndarray, np.ndarray]:
    """Per-column mean and standard deviation of ``x`` (numpy's ``mean(0)``, ``std(0)``), in
    float64, read a block of columns at a time so that no float64 copy of ``x`` is made."""
    n, d = x.shape
    mean, std = np.empty(d), np.empty(d)
    for cols in _column_blocks(n, d):
        block = np.asarray(x[:, cols], dtype=np.float64)
        mean[cols] = block.mean(0)
        std[cols] = block.std(0)
    release(x)
    return mean, std


def _column_blocks(n: int, d: int, block_bytes: int = 16 * 2**20):
    step = max(1, block_bytes // (8 * max(1, n)))
    for start in range(0, d, step):
        yield slice(start, min(d, start + step))


def _standardised_spectrum(x) -> tuple[np.ndarray, np.ndarray]:
    """``(u, s)`` of the thin SVD of ``x`` standardised per column (``u`` ``(n, r)``, ``s``
    ``(r,)``, ``r = min(n, d)``). With more dimensions than items (TF-IDF: 16 384 on a 2 000-item
    sample) from the eigenvectors of the ``n x n`` Gram matrix, summed over blocks of columns:
    the same ``u`` and ``s`` (``s**2`` are the Gram matrix's eigenvalues), where the SVD of the
    standardised float64 copy took its 262 MB and LAPACK's workspace several times that (issue 35)."""
    n, d = x.shape
    mean, scale = _column_stats(x)
    scale = np.where(scale > 0, scale, 1.0)
    if d <= n:
        u, s, _ = np.linalg.svd((np.asarray(x, dtype=np.float64) - mean) / scale, full_matrices=False)
        return u, s
    gram = np.zeros((n, n))
    for cols in _column_blocks(n, d):
        block = (np.asarray(x[:, cols], dtype=np.float64) - mean[cols]) / scale[cols]
        gram += block @ block.T
    release(x)  # a memory-mapped x: its pages leave the resident set (issue 35)
    eig, u = np.linalg.eigh(gram)
    order = np.argsort(eig)[::-1]
    return u[:, order], np.sqrt(np.clip(eig[order], 0.0, None))


def logme(x: np.ndarray, y: np.ndarray, n_classes: int | None = None, *, max_iter: int = 50,
          tol: float = 1e-4) -> float:
    """LogME of features ``x`` ``(n, d)`` for integer labels ``y``: higher is better.

    For each class k, t = 1[y == k]; the model t = x w + noise with w ~ N(0, 1/alpha) and noise
    ~ N(0, 1/beta). With x = U diag(s) V^T, the evidence and its maximising alpha, beta need only
    ``z = U^T t`` and ``s``: alpha = gamma / |m|^2, beta = (n - gamma) / |x m - t|^2 with
    gamma = sum(beta s^2 / (alpha + beta s^2)), iterated to a fixed point.
    """
    x = as_rows(x)
    y = np.asarray(y, dtype=int)
    n, d = x.shape
    u, s = _standardised_spectrum(x)  # standardised, like the probe's features
    sigma = s ** 2
    n_classes = int(n_classes if n_classes is not None else y.max() + 1)
    evidences = []
    for k in range(n_classes):
        t = (y == k).astype(np.float64)
        if not t.any():
            continue
        z = u.T @ t
        outside = max(float(t @ t - z @ z), 0.0)  # the part of t outside x's column space
        alpha, beta = 1.0, 1.0
        for _ in range(max_iter):
            shrink = alpha + beta * sigma
            gamma = float(np.sum(beta * sigma / shrink))
            m2 = float(np.sum((beta * s * z / shrink) ** 2))
            res2 = float(np.sum((alpha * z / shrink) ** 2)) + outside
            new_alpha = gamma / max(m2, 1e-12)
            new_beta = (n - gamma) / max(res2, 1e-12)
            done = abs(new_alpha - alpha) / alpha < tol and abs(new_beta - beta) / beta < tol
            alpha, beta = new_alpha, new_beta
            if done:
                break
        shrink = alpha + beta * sigma
        m2 = float(np.sum((beta * s * z / shrink) ** 2))
        res2 = float(np.sum((alpha * z / shrink) ** 2)) + outside
        # log|alpha I + beta x^T x| over all d dimensions: d - len(s) of them have eigenvalue alpha
        logdet = float(np.sum(np.log(shrink))) + (d - len(s)) * np.log(alpha)
        evidence = (0.5 * n * np.log(beta) + 0.5 * d * np.log(alpha) - 0.5 * n * np.log(2 * np.pi)
                    - 0.5 * beta * res2 - 0.5 * alpha * m2 - 0.5 * logdet)
        evidences.append(evidence / n)
    return float(np.mean(evidences))


def knn_score(x: np.ndarray, y: np.ndarray, folds: Sequence[tuple[np.ndarray, np.ndarray]], *,
              metric: Callable, k: int | None = None) -> float:
    """The run's metric of a kNN vote over ``folds`` (pooled out-of-fold predictions).

    ``k`` defaults to about the square root of the smallest fold's training size, between 3 and 20.
    Each fold's rows are standardised with its training rows' statistics by the probe's own
    :func:`~automl_tl._pages.standardise`, into one float32 array per side (issue 35: a float64
    copy of all rows, then three temporaries per fold, were 1 GB on 2 000 TF-IDF rows).
    """
    from sklearn.neighbors import KNeighborsClassifier

    x = as_rows(x)
    y = np.asarray(y)
    if k is None:
        k = int(np.clip(round(np.sqrt(min(len(tr) for tr, _ in folds))), 3, 20))
    truth, pred = [], []
    for tr, va in folds:
        _, _, (xtr, xva) = standardise(x, tr, va, dtype=np.float32)
        clf = KNeighborsClassifier(n_neighbors=min(k, len(tr)), metric="cosine", weights="distance")
        clf.fit(xtr, y[tr])
        del xtr
        pred.append(clf.predict(xva))
        truth.append(y[va])
    release(x)
    return float(metric(np.concatenate(truth), np.concatenate(pred)))


def proxy_scores(x: np.ndarray, y: np.ndarray, folds, *, metric: Callable, n_classes: int) -> dict:
    """Every proxy of :data:`PROXIES` on these features, with the seconds they took."""
    t0 = time.perf_counter()
    out = {"logme": round(logme(x, y, n_classes), 6)}
    out["knn"] = round(knn_score(x, y, folds, metric=metric), 6)
    out["seconds"] = round(time.perf_counter() - t0, 3)
    return out


def rank_agreement(predicted: Mapping[str, float], found: Mapping[str, float]) -> dict:
    """Kendall's tau-b between a proxy's scores and the search's best score, per backbone.

    Only candidates present in both count; fewer than three give no tau (``"tau": None`` and why).
    """
    from scipy.stats import kendalltau

    names = sorted(set(predicted) & set(found))
    if len(names) < 3:
        return {"tau": None, "n": len(names),
                "why": f"{len(names)} candidate(s) both probed and searched; a rank correlation needs 3"}
    a = [predicted[n] for n in names]
    b = [found[n] for n in names]
    if len(set(a)) == 1 or len(set(b)) == 1:
        return {"tau": None, "n": len(names), "why": "all scores tie on one side"}
    res = kendalltau(a, b)
    return {"tau": round(float(res.statistic), 4), "p": round(float(res.pvalue), 4), "n": len(names)}


def candidate_key(backbone: str, options: Mapping[str, Any] | None = None) -> str:
    """One name per (backbone, readout options) pair: ``mobilenetv2`` or ``mobilenetv2[features=mid]``."""
    opts = ",".join(f"{k}={v}" for k, v in sorted((options or {}).items()))
    return f"{backbone}[{opts}]" if opts else backbone


def transferability_summary(probe_rows: Sequence[Mapping], found: Mapping[str, float]) -> dict:
    """Per candidate (backbone and readout options, :func:`candidate_key`), the linear probe's and
    each proxy's score, the search's best score for it (``found``, same keys), and each measure's
    Kendall tau against the search. Ranking readouts as well as backbones gives the tau more than
    two or three points on most data (a backbone's readouts are distinct feature sets)."""
    by_candidate: dict[str, dict] = {}
    for row in probe_rows:
        if "score" not in row:
            continue
        entry = by_candidate.setdefault(candidate_key(row["backbone"], row.get("options")), {})
        entry["linear_probe"] = float(row["score"])
        for name in PROXIES:
            value = (row.get("proxies") or {}).get(name)
            if value is not None:
                entry[name] = float(value)
    for name, score in found.items():
        by_candidate.setdefault(name, {})["search"] = float(score)
    tau = {}
    for proxy in ("linear_probe", *PROXIES):
        predicted = {b: e[proxy] for b, e in by_candidate.items() if proxy in e}
        tau[proxy] = rank_agreement(predicted, found)
    return {"by_candidate": by_candidate, "tau": tau}
