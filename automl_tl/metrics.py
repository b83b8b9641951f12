"""Scoring metrics by name: scikit-learn's definitions, computed without its input checks."""

from __future__ import annotations

from typing import Callable

__all__ = ["METRICS", "metric_function", "true_class_log_loss"]


def _confusion(y_true, y_pred):
    """The confusion matrix over the labels either array holds (scikit-learn's default labels:
    ``unique_labels``), rows the truth. Written here because scikit-learn's metrics check their
    inputs on every call (2-3 ms): an evaluation's bootstrap calls a metric a thousand times."""
    import numpy as np

    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise ValueError(f"a metric of {y_pred.shape} predictions against {y_true.shape} labels")
    _, index = np.unique(np.concatenate([y_true, y_pred]), return_inverse=True)
    k = int(index.max()) + 1 if len(index) else 0
    return np.bincount(index[:len(y_true)] * k + index[len(y_true):], minlength=k * k).reshape(k, k)


def _macro_f1(y_true, y_pred):
    """scikit-learn's ``f1_score(average="macro")``: the mean over the labels of 2 TP / (2 TP + FP
    + FN); the same value (tests/core/test_training_parts.py compares them)."""
    import numpy as np

    matrix = _confusion(y_true, y_pred)
    if not matrix.size:
        return float("nan")
    tp = np.diag(matrix)
    return float(np.mean(2 * tp / (matrix.sum(0) + matrix.sum(1))))  # a label is in one array at least: > 0


def _accuracy(y_true, y_pred):
    """scikit-learn's ``accuracy_score`` without its input checks (1.4 ms a call: the search
    scores every epoch of every head, a thousand calls in a small search); the same value."""
    import numpy as np

    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise ValueError(f"accuracy of {y_pred.shape} predictions against {y_true.shape} labels")
    return float(np.mean(y_true == y_pred)) if len(y_true) else float("nan")


def _balanced(y_true, y_pred):
    """scikit-learn's ``balanced_accuracy_score``: the mean recall over the classes the truth
    holds (a predicted class the truth lacks has no recall: left out, as scikit-learn does)."""
    import numpy as np

    matrix = _confusion(y_true, y_pred)
    support = matrix.sum(1)
    seen = support > 0
    return float(np.mean(np.diag(matrix)[seen] / support[seen])) if seen.any() else float("nan")


METRICS: dict[str, Callable] = {"accuracy": _accuracy, "balanced_accuracy": _balanced, "macro_f1": _macro_f1}


def metric_function(name: str) -> Callable:
    from automl_tl.errors import ConfigError

    if name not in METRICS:
        raise ConfigError(f"unknown metric {name!r}; choose one of {', '.join(METRICS)}")
    return METRICS[name]


def true_class_log_loss(p_true) -> float:
    """Mean negative log of the probabilities given to the true classes (clipped at 1e-12): the
    finer measure beside accuracy, for choices accuracy cannot tell apart on few items."""
    import numpy as np

    return float(-np.mean(np.log(np.clip(np.asarray(p_true, dtype=float), 1e-12, 1.0))))
