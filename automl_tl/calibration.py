"""Calibrated class probabilities: temperature scaling fitted on out-of-fold predictions.

A leaf module (numpy and scipy only).

Why temperature scaling (Guo et al., 2017, "On Calibration of Modern Neural Networks") rather
than isotonic regression or Platt scaling: it has one parameter, so the few hundred out-of-fold
items a small search keeps are enough to fit it without overfitting, and dividing every log
probability by the same positive ``T`` keeps each item's ranking of the classes, so the predicted
class (and so accuracy, macro-F1, the search's score) is exactly what it was. Isotonic regression
and per-class Platt scaling need more data and may change which class comes out on top.

:func:`calibrate` guards against making things worse: the model stays uncalibrated (``T = 1``)
unless a temperature fits the out-of-fold items better than none beyond chance, and, judged on
items it was not fitted on (cross-fitting), lowers the expected calibration error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

__all__ = ["Calibration", "calibrate", "fit_temperature", "apply_temperature",
           "expected_calibration_error", "reliability", "FLOOR", "MIN_ITEMS", "T_BOUNDS", "CHI2_95"]

#: the smallest probability a log is taken of. The search records out-of-fold probabilities to 5
#: decimals, so anything below about 1e-5 reads 0 there; fitting and applying with the same floor
#: keeps the fitted temperature and the saved model's use of it the same function.
FLOOR = 1e-5
#: fewer items than this: no temperature is fitted (one ECE bin would hold two items)
MIN_ITEMS = 20
#: the temperatures searched; beyond them the probabilities are all but one-hot or uniform
T_BOUNDS = (0.05, 20.0)
#: the 95 % point of the chi-squared distribution with one degree of freedom: the likelihood-ratio
#: statistic a temperature must exceed to count as different from 1
CHI2_95 = 3.841


def _logs(proba) -> np.ndarray:
    return np.log(np.clip(np.asarray(proba, dtype=float), FLOOR, 1.0))


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _nll(proba, y) -> float:
    """Mean negative log-likelihood of the true classes (with the same floor as the fit)."""
    p = np.asarray(proba, dtype=float)
    return float(-np.mean(np.log(np.clip(p[np.arange(len(y)), y], FLOOR, 1.0))))


def apply_temperature(proba, temperature: float) -> np.ndarray:
    """``softmax(log(proba) / T)`` row by row; ``T = 1`` returns the probabilities unchanged (the
    floor is not applied then, so an uncalibrated model's output is exactly the model's)."""
    proba = np.asarray(proba, dtype=float)
    if float(temperature) == 1.0:
        return proba
    return _softmax(_logs(proba) / float(temperature))


def _loss(proba, y, temperature: float) -> float:
    """Mean negative log-likelihood of the true classes ``y`` under ``softmax(log(proba) / T)``."""
    s = _logs(proba) / temperature
    s = s - s.max(axis=1, keepdims=True)
    return float(np.mean(np.log(np.exp(s).sum(axis=1)) - s[np.arange(len(y)), np.asarray(y, dtype=int)]))


def fit_temperature(proba, y) -> float:
    """The temperature ``T`` in :data:`T_BOUNDS` minimising the negative log-likelihood of
    ``softmax(log(proba) / T)`` on the true classes ``y`` (searched on ``log T``, where the loss
    is smooth and both directions from 1 weigh alike)."""
    from scipy.optimize import minimize_scalar

    proba = np.asarray(proba, dtype=float)
    lo, hi = np.log(T_BOUNDS[0]), np.log(T_BOUNDS[1])
    res = minimize_scalar(lambda log_t: _loss(proba, y, np.exp(log_t)), bounds=(lo, hi), method="bounded",
                          options={"xatol": 1e-4})
    return float(np.exp(res.x))


def _sharpest(proba, y) -> float:
    """The lowest temperature allowed: the one at which the mean confidence reaches Laplace's
    estimate of the accuracy, ``(correct + 1) / (n + 2)`` (1 when it is there already). On items
    the model gets all right the log-likelihood keeps rising as ``T -> 0``: unchecked, the fit
    would make the model certain of everything, a certainty nothing measured."""
    from scipy.optimize import brentq

    p, y = np.asarray(proba, dtype=float), np.asarray(y)
    target = ((p.argmax(axis=1) == y).sum() + 1) / (len(y) + 2)

    def excess(log_t: float) -> float:
        return float(apply_temperature(p, np.exp(log_t)).max(axis=1).mean() - target)

    lo = np.log(T_BOUNDS[0])
    if excess(0.0) >= 0:
        return 1.0
    if excess(lo) <= 0:
        return T_BOUNDS[0]
    return float(np.exp(brentq(excess, lo, 0.0, xtol=1e-4)))


def _fit(proba, y) -> float:
    """:func:`fit_temperature` held at or above :func:`_sharpest` (the log-likelihood is convex in
    ``1 / T``, so the bound is the constrained minimiser when the free one lies beyond it)."""
    return max(fit_temperature(proba, y), _sharpest(proba, y))


def _bins(proba, y, n_bins: int):
    p = np.asarray(proba, dtype=float)
    conf, correct = p.max(axis=1), (p.argmax(axis=1) == np.asarray(y)).astype(float)
    # equal-width bins over [0, 1]; a confidence of exactly 1 belongs to the last
    which = np.minimum((conf * n_bins).astype(int), n_bins - 1)
    return conf, correct, which


def expected_calibration_error(proba, y, n_bins: int = 10) -> float:
    """Top-label expected calibration error: over ``n_bins`` equal-width bins of the predicted
    class's probability, the item-weighted mean gap between that probability and accuracy."""
    conf, correct, which = _bins(proba, y, n_bins)
    if len(conf) == 0:
        return 0.0
    gap = 0.0
    for b in range(n_bins):
        m = which == b
        if m.any():
            gap += m.sum() * abs(conf[m].mean() - correct[m].mean())
    return float(gap / len(conf))


def reliability(proba, y, n_bins: int = 10) -> dict[str, list]:
    """A reliability diagram's data, one entry per equal-width bin of the predicted class's
    probability (bin ``b`` spans ``[b / n_bins, (b + 1) / n_bins)``): the mean ``confidence``, the
    ``accuracy`` and the ``count`` of the items in it (confidence and accuracy None when empty)."""
    conf, correct, which = _bins(proba, y, n_bins)
    out: dict[str, list] = {"confidence": [], "accuracy": [], "count": []}
    for b in range(n_bins):
        m = which == b
        n = int(m.sum())
        out["confidence"].append(round(float(conf[m].mean()), 6) if n else None)
        out["accuracy"].append(round(float(correct[m].mean()), 6) if n else None)
        out["count"].append(n)
    return out


@dataclass(frozen=True, kw_only=True)
class Calibration:
    """A temperature and the evidence for it. The "after" figures are cross-fitted (each item
    calibrated by a temperature fitted without it), so they estimate what new items will see;
    when the temperature is not applied they equal the "before" ones."""

    temperature: float
    applied: bool
    ece_before: float
    ece_after: float
    log_loss_before: float
    log_loss_after: float
    n_items: int
    bins_before: Mapping[str, list]
    bins_after: Mapping[str, list]
    reason: str

    def apply(self, proba) -> np.ndarray:
        return apply_temperature(proba, self.temperature)

    def to_dict(self) -> dict[str, Any]:
        return {"temperature": round(self.temperature, 6), "applied": self.applied,
                "ece_before": round(self.ece_before, 6), "ece_after": round(self.ece_after, 6),
                "log_loss_before": round(self.log_loss_before, 6), "log_loss_after": round(self.log_loss_after, 6),
                "n_items": self.n_items, "bins_before": dict(self.bins_before),
                "bins_after": dict(self.bins_after), "reason": self.reason}


def _folds(n: int, seed: int) -> list[np.ndarray]:
    """Held-out parts for cross-fitting: 5 when there are enough items for each to fill a few ECE
    bins, else 2 (each fit on half)."""
    k = 5 if n >= 50 else 2
    return np.array_split(np.random.default_rng(seed).permutation(n), k)


def calibrate(proba, y, *, n_bins: int = 10, seed: int = 0) -> Calibration:
    """The temperature for out-of-fold probabilities ``proba`` (one row per item, classes in
    columns) of items whose true classes are ``y``.

    The rule: the model stays uncalibrated (``T = 1``, with the reason) unless

    1. there are at least :data:`MIN_ITEMS` items;
    2. the fitted temperature explains the items better than ``T = 1`` beyond chance: twice the
       gain in total log-likelihood exceeds :data:`CHI2_95` (a likelihood-ratio test, one
       parameter), so a temperature is not fitted to the noise of a calibrated model;
    3. cross-fitted, it lowers the expected calibration error: the items are split into parts
       (5, or 2 under 50 items), each calibrated with a temperature fitted on the others.

    Every temperature here is the log-likelihood's minimiser held at or above :func:`_sharpest`
    (no sharper than Laplace's estimate of the accuracy). The held-out log-loss is reported, not
    required to fall: the goal is the ECE, and a temperature that lowers it in 3 after passing 2
    has little log-loss to lose."""
    proba, y = np.asarray(proba, dtype=float), np.asarray(y, dtype=int)
    n = len(y)
    ece0, ll0 = expected_calibration_error(proba, y, n_bins), _nll(proba, y)
    bins0 = reliability(proba, y, n_bins)
    kept = dict(temperature=1.0, applied=False, ece_before=ece0, ece_after=ece0, log_loss_before=ll0,
                log_loss_after=ll0, n_items=n, bins_before=bins0, bins_after=bins0)
    if n < MIN_ITEMS:
        return Calibration(**kept, reason=f"not calibrated: {n} out-of-fold items are too few to fit a "
                                          f"temperature (at least {MIN_ITEMS} are needed)")
    t = _fit(proba, y)
    ratio = 2 * n * (_loss(proba, y, 1.0) - _loss(proba, y, t))
    if ratio <= CHI2_95:
        return Calibration(**kept, reason=(
            f"not calibrated: the best temperature ({t:.3f}) fits the {n} out-of-fold items no better than "
            f"none beyond chance (likelihood ratio {ratio:.2f} <= {CHI2_95})"))
    held = np.empty_like(proba)
    for part in _folds(n, seed):
        rest = np.setdiff1d(np.arange(n), part)
        held[part] = apply_temperature(proba[part], _fit(proba[rest], y[rest]))
    ece1, ll1 = expected_calibration_error(held, y, n_bins), _nll(held, y)
    if not ece1 < ece0:
        return Calibration(**kept, reason=(
            f"not calibrated: on held-out items a temperature would not lower the expected calibration "
            f"error ({ece0:.4f} -> {ece1:.4f})"))
    return Calibration(**kept | dict(temperature=t, applied=True, ece_after=ece1, log_loss_after=ll1,
                                     bins_after=reliability(held, y, n_bins)),
                       reason=(f"temperature {t:.3f} fitted on {n} out-of-fold items: on held-out items the "
                               f"expected calibration error {ece0:.4f} -> {ece1:.4f}, log-loss "
                               f"{ll0:.4f} -> {ll1:.4f}"))
