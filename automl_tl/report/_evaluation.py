"""A delivered model on labelled data it never saw (``automl-tl evaluate``, ``AutoTransfer.evaluate``).

More than one number: accuracy, macro-F1 and balanced accuracy, the log-loss and the expected
calibration error, each with a 95 % percentile bootstrap interval over the items (SciPy's
``stats.bootstrap``, paired resampling of truth and prediction), per-class precision, recall and
F1 with their support and the confusion matrix (scikit-learn's), written as ``evaluation.json`` and
a self-contained ``evaluation.html`` (the confusion matrix as a picture) beside the report.

Items whose label the model does not know, and inputs that cannot be read, are counted and left
out, not scored as wrong: the record says how many.
"""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from automl_tl.atomic import atomic_write_text
from automl_tl.errors import DataError

__all__ = ["evaluation_record", "evaluate_labelled", "write_evaluation"]

#: a file of this name in the output folder that automl-tl did not write is never replaced
_MARK = "automl_tl_evaluation"
_RESAMPLES = 999


def _interval(statistic, *arrays, seed: int) -> list[float] | None:
    """The 95 % percentile bootstrap interval of ``statistic(*arrays)`` over the items; None for
    fewer than two items or a statistic that does not vary."""
    from scipy import stats

    if len(arrays[0]) < 2:
        return None
    try:
        res = stats.bootstrap(arrays, statistic, paired=True, vectorized=False, n_resamples=_RESAMPLES,
                              method="percentile", random_state=np.random.default_rng(seed))
    except ValueError:
        return None
    low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    return None if not (np.isfinite(low) and np.isfinite(high)) else [round(low, 4), round(high, 4)]


def evaluation_record(truth: Sequence[int], proba: np.ndarray, labels: Sequence[str], *, seed: int = 0) -> dict:
    """Every number of an evaluation of probabilities ``proba`` ``(n, classes)`` against the
    class indices ``truth``."""
    import warnings

    from sklearn import metrics

    from automl_tl.calibration import expected_calibration_error
    from automl_tl.metrics import METRICS, true_class_log_loss

    y = np.asarray(truth, dtype=int)
    proba = np.asarray(proba, dtype=np.float64)
    proba = proba / np.clip(proba.sum(1, keepdims=True), 1e-12, None)  # float32 rows sum to 1 within 1e-7
    pred = proba.argmax(1)
    classes = list(range(len(labels)))

    # the run's own definitions (automl_tl.metrics), as the search scored its trials
    def log_loss(a, rows):
        return true_class_log_loss(proba[rows.astype(int), np.asarray(a, dtype=int)])

    def ece(a, rows):
        return float(expected_calibration_error(proba[rows.astype(int)], a))

    rows = np.arange(len(y), dtype=float)
    measures = {name: (lambda a, b, f=METRICS[name]: float(f(a, b)), (y, pred))
                for name in ("accuracy", "macro_f1", "balanced_accuracy")}
    measures |= {"log_loss": (log_loss, (y, rows)), "calibration_error": (ece, (y, rows))}
    out: dict[str, Any] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a resample without some class: its F1 is 0, said once per resample
        for name, (fn, args) in measures.items():
            out[name] = {"value": round(fn(*args), 4), "interval": _interval(fn, *args, seed=seed)}
    precision, recall, f1, support = metrics.precision_recall_fscore_support(y, pred, labels=classes, zero_division=0)
    per_class = [{"label": labels[c], "precision": round(float(precision[c]), 4), "recall": round(float(recall[c]), 4),
                  "f1": round(float(f1[c]), 4), "support": int(support[c])} for c in classes]
    return {"n": int(len(y)), "metrics": out, "per_class": per_class,
            "confusion": {"labels": list(labels), "matrix": metrics.confusion_matrix(y, pred, labels=classes).tolist()},
            "interval": f"95 % percentile bootstrap over items ({_RESAMPLES} resamples)"}


def evaluate_labelled(predictor, data, y=None, *, column: str | None = None, batch_size: int = 32,
                      seed: int = 0) -> dict:
    """Evaluate ``predictor`` (:func:`automl_tl.artifacts.load_predictor`) on ``data``: with ``y``
    the inputs themselves and their labels, without it a folder of class sub-folders or a table
    with a label column (read as ``automl-tl predict`` reads it, the truth from the data)."""
    from automl_tl.data import label_str, prediction_inputs

    if y is None:
        fit_columns = predictor.config.get("columns") or {}
        inputs = prediction_inputs([str(data)], predictor.modality, column,
                                   (fit_columns.get("inputs"), fit_columns.get("labels")))
        items, truths = [x.value for x in inputs], [x.truth for x in inputs]
    else:
        items, truths = list(data), [label_str(v) for v in y]
        if len(items) != len(truths):
            raise DataError(f"{len(items)} inputs and {len(truths)} labels: give one label per input")
    index = {label: i for i, label in enumerate(predictor.labels)}
    known = [i for i, t in enumerate(truths) if t in index]
    if not known:
        raise DataError(f"none of the {len(items)} inputs has a label the model knows ({', '.join(predictor.labels[:8])}"
                        f"{' ...' if len(predictor.labels) > 8 else ''}): give a folder with one sub-folder per "
                        f"class, or a table with a label column")
    keep, usable, skips = predictor.check_inputs([items[i] for i in known])
    if not usable:
        raise DataError(f"none of the {len(known)} labelled inputs can be read: {skips[0].reason if skips else ''}")
    proba = predictor.predict_proba(usable, batch_size=batch_size)
    record = evaluation_record([index[truths[known[i]]] for i in keep], proba, list(predictor.labels), seed=seed)
    return record | {"unknown_labels": len(items) - len(known), "unreadable": len(known) - len(keep),
                     "data": str(data) if y is None else "<inputs>",
                     "model": {k: predictor.config.get(k) for k in ("backbone", "strategy", "metric", "score")},
                     "written": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}


def _html(record: dict, png: bytes | None) -> str:
    from automl_tl.report._fmt import esc
    from automl_tl.report._html import html_table, img, page

    def interval(m):
        return f"[{m['interval'][0]:.4f}, {m['interval'][1]:.4f}]" if m["interval"] else "-"

    names = {"accuracy": "accuracy", "macro_f1": "macro-F1", "balanced_accuracy": "balanced accuracy",
             "log_loss": "log-loss (lower is better)", "calibration_error": "expected calibration error (lower is better)"}
    summary = html_table([("measure", False), ("value", True), ("95 % interval", True)],
                         [([esc(names[k]), f"{m['value']:.4f}", interval(m)], "") for k, m in record["metrics"].items()])
    per_class = html_table([("class", False), ("precision", True), ("recall", True), ("F1", True), ("support", True)],
                           [([esc(c["label"]), f"{c['precision']:.3f}", f"{c['recall']:.3f}", f"{c['f1']:.3f}",
                              str(c["support"])], "") for c in record["per_class"]])
    left_out = (f"<p>{record['n']} items scored; {record['unknown_labels']} with a label the model does not know "
                f"and {record['unreadable']} unreadable were left out. Intervals: {esc(record['interval'])}.</p>")
    body = (f"<h1>Evaluation on {esc(record['data'])}</h1>{left_out}<h2>Measures</h2>{summary}"
            f"<h2>Per class</h2>{per_class}<h2>Confusion matrix</h2>{img(png, 'confusion matrix')}")
    return page("automl-tl evaluation", body)


def write_evaluation(record: dict, out_dir: str | Path) -> dict[str, Path]:
    """``evaluation.json`` and ``evaluation.html`` in ``out_dir`` (written atomically; files of
    those names that automl-tl did not write are refused, not replaced)."""
    from automl_tl.report._plots import confusion_png

    out = Path(out_dir)
    paths = {"json": out / "evaluation.json", "html": out / "evaluation.html"}
    theirs = paths["json"].exists() and _MARK not in paths["json"].read_text(encoding="utf-8", errors="replace")
    if theirs or (paths["html"].exists() and not paths["json"].exists()):
        raise DataError(f"{out} holds an evaluation.json or evaluation.html that automl-tl did not write: "
                        f"give --out another folder")
    out.mkdir(parents=True, exist_ok=True)
    cm = record["confusion"]
    png = confusion_png(cm["labels"], cm["matrix"], "Confusion matrix (colour = share of the true class)")
    atomic_write_text(paths["json"], json.dumps({_MARK: 1, **record}, indent=2) + "\n")
    atomic_write_text(paths["html"], _html(record, png))
    return paths
