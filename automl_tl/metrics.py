"""Scoring metrics by name (scikit-learn's implementations)."""

from __future__ import annotations

from typing import Callable

__all__ = ["METRICS", "metric_function", "true_class_log_loss"]


def _macro_f1(y_true, y_pred):
    from sklearn.metrics import f1_score

    return f1_score(y_true, y_pred, average="macro")


def _accuracy(y_true, y_pred):
    """scikit-learn's ``accuracy_score`` without its input checks (1.4 ms a call: the search
    scores every epoch of every head, a thousand calls in a small search); the same value."""
    import numpy as np

    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise ValueError(f"accuracy of {y_pred.shape} predictions against {y_true.shape} labels")
    return float(np.mean(y_true == y_pred)) if len(y_true) else float("nan")


def _balanced(y_true, y_pred):
    from sklearn.metrics import balanced_accuracy_score

    return balanced_accuracy_score(y_true, y_pred)


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
