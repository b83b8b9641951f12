"""The per-class section of a report: precision, recall and F1 per class and the confusions of the
delivered model on the validation split, from ``val_predictions.csv``."""

from __future__ import annotations

from typing import Any

from automl_tl.report._io import to_float
from automl_tl.report._load import RunData

__all__ = ["per_class_part"]


def per_class_part(data: RunData) -> dict[str, Any]:
    """The per-class section: precision, recall and F1 per class, the confusions, from val_predictions.csv."""
    rows = data.predictions
    if rows is None:
        return {"available": False, "reason": "val_predictions.csv is missing (no model saved yet, or an older run)."}
    if not rows:
        return {"available": False, "reason": "val_predictions.csv is empty."}
    cols = set(rows[0].keys())
    tcol = next((c for c in ("label", "true", "y_true", "target") if c in cols), None)
    pcol = next((c for c in ("predicted", "prediction", "y_pred", "pred") if c in cols), None)
    if tcol is None or pcol is None:
        return {"available": False, "reason": f"val_predictions.csv lacks label/predicted columns (has {sorted(cols)})."}
    y_true, y_pred, labels = _true_and_predicted(rows, tcol, pcol, list(data.labels))
    pos = {c: i for i, c in enumerate(labels)}
    k = len(labels)
    cm = [[0] * k for _ in range(k)]
    for a, b in zip(y_true, y_pred):
        cm[pos[a]][pos[b]] += 1
    classes = _class_metrics(cm, labels)
    n = len(y_true)
    correct = sum(cm[i][i] for i in range(k))
    with_support = [c for c in classes if c["support"]]
    macro = {
        "precision": _mean([c["precision"] or 0.0 for c in classes if c["support"] or c["predicted"]]),
        "recall": _mean([c["recall"] for c in with_support]),
        "f1": _mean([c["f1"] or 0.0 for c in classes if c["support"] or c["predicted"]]),
    }
    confusions = sorted(
        ({"true": labels[i], "predicted": labels[j], "count": cm[i][j]} for i in range(k) for j in range(k) if i != j and cm[i][j]),
        key=lambda d: -d["count"],
    )[:10]
    probs_right, probs_wrong = [], []
    if "probability" in cols:
        for r, a, b in zip(rows, y_true, y_pred):
            p = to_float(r.get("probability"))
            if p is not None:
                (probs_right if a == b else probs_wrong).append(p)
    worst = min(with_support, key=lambda c: (c["recall"], -c["support"])) if with_support else None
    return {
        "available": True,
        "n": n,
        "accuracy": correct / n if n else None,
        "balanced_accuracy": macro["recall"],
        "macro": macro,
        "labels": labels,
        "confusion": cm,
        "classes": classes,
        "top_confusions": confusions,
        "mean_probability_correct": _mean(probs_right),
        "mean_probability_wrong": _mean(probs_wrong),
        "worst_class": worst["label"] if worst else None,
    }


def _true_and_predicted(rows: list[dict[str, str]], tcol: str, pcol: str, labels: list[str]) -> tuple[list[str], list[str], list[str]]:
    """(true labels, predicted labels, every label) of the validation predictions, class indices mapped to names."""
    y_true = [str(r.get(tcol, "")) for r in rows]
    y_pred = [str(r.get(pcol, "")) for r in rows]
    # predictions may hold class indices rather than names
    if labels and all(v.isdigit() for v in y_true + y_pred) and not any(v in labels for v in y_true):
        idx = lambda v: labels[int(v)] if int(v) < len(labels) else v  # noqa: E731
        y_true = [idx(v) for v in y_true]
        y_pred = [idx(v) for v in y_pred]
    for v in y_true + y_pred:
        if v not in labels:
            labels.append(v)
    return y_true, y_pred, labels


def _class_metrics(cm: list[list[int]], labels: list[str]) -> list[dict[str, Any]]:
    """Precision, recall, F1, support and predicted count per class, from the confusion matrix."""
    k = len(labels)
    classes = []
    for i, c in enumerate(labels):
        tp = cm[i][i]
        support = sum(cm[i])
        predicted = sum(cm[j][i] for j in range(k))
        precision = tp / predicted if predicted else None
        recall = tp / support if support else None
        f1 = (2 * precision * recall / (precision + recall)) if precision and recall else (0.0 if support or predicted else None)
        classes.append({"label": c, "precision": precision, "recall": recall, "f1": f1, "support": support, "predicted": predicted})
    return classes


def _mean(xs: list[float]) -> float | None:
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else None
