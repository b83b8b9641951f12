"""What ``GET /metadata`` says about the served model: read from what the run folder records
(config.json of the delivered model, summary.json of the search), never recomputed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from automl_tl._version import __version__

__all__ = ["run_metadata"]

#: the parts of summary.json's ``on_new_data`` a client may show
_NEW_DATA_KEYS = ("metric", "estimate", "se", "interval", "grouped", "unit", "sentence")


def _summary(run_dir: Path) -> dict[str, Any] | None:
    """summary.json, or None where there is none (a copy made by ``AutoTransfer.save``) or it
    cannot be read: the model serves without it."""
    try:
        summary = json.loads((Path(run_dir) / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return summary if isinstance(summary, dict) else None


def run_metadata(predictor) -> dict[str, Any]:
    """The served model: classes, backbone, strategy, metric, its score in the search and how it
    was validated, the estimate on new data (summary.json's ``on_new_data``), calibration, the
    versions of automl-tl that fitted and that serves it."""
    config = predictor.config
    summary = _summary(predictor.run_dir)
    params = config.get("params") or {}
    evaluation = (summary or {}).get("evaluation") or {}
    on_new = (summary or {}).get("on_new_data") or {}
    cal = config.get("calibration") or {}
    return {
        "run": str(predictor.run_dir),
        "classes": list(predictor.labels),
        "modality": predictor.modality.name,
        "inputs": ("texts as JSON: {\"texts\": [...]}" if predictor.modality.inline
                   else f"{predictor.modality.name} files as multipart/form-data"),
        "backbone": config.get("backbone"),
        "strategy": params.get("strategy"),
        "metric": config.get("metric"),
        "score": config.get("score"),
        "score_se": config.get("score_se"),
        "validation": {k: evaluation.get(k) for k in ("kind", "k", "n_train", "n_val", "reason")} if evaluation else None,
        "on_new_data": {k: on_new.get(k) for k in _NEW_DATA_KEYS} if on_new else None,
        "refitted": config.get("refitted"),
        "ensemble": len(predictor.members) + 1 if predictor.members else None,
        "calibration": {"temperature": float(predictor.temperature), "applied": bool(cal.get("applied", False)),
                        "reason": cal.get("reason")} if cal else None,
        "fitted_with": (summary or {}).get("version"),
        "automl_tl_version": __version__,
    }
