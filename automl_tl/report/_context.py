"""The shared facts of a run that every section of its report reads (:class:`RunContext`), and the
small helpers on trials they share."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from automl_tl.report._io import to_float
from automl_tl.report._load import NOISE_COLUMNS, PARAM_COLUMNS, RunData

__all__ = ["RunContext", "run_context", "scored_trials", "public_trial", "eval_label", "profile_size"]


def profile_size(profile: dict[str, Any] | None, split: dict[str, Any] | None = None) -> int | None:
    """Number of usable samples of the dataset, from the profile (or split.json as a fallback)."""
    profile = profile or {}
    for key in ("n_samples", "n_items", "num_samples", "n_examples", "size", "n"):
        v = profile.get(key)
        if isinstance(v, dict):
            v = v.get("n_samples", v.get("total"))
        if to_float(v) is not None:
            return int(to_float(v))
    if split:
        n = 0
        for part in ("train", "val", "test"):
            items = (split.get(part) or {}).get("items") if isinstance(split.get(part), dict) else None
            if isinstance(items, list):
                n += len(items)
        return n or None
    return None


def _point(scores: list[float]) -> float:
    """One 'point' of the metric: 0.01 for scores in [0, 1], else 1."""
    return 0.01 if scores and all(-1e-9 <= s <= 1 + 1e-9 for s in scores) else 1.0 if scores else 0.01


def public_trial(t: dict[str, Any]) -> dict[str, Any]:
    return {k: t.get(k) for k in ("trial", "state", *PARAM_COLUMNS, "score", *NOISE_COLUMNS, "seconds", "recommended", "not_started", "fail_reason")}


def eval_label(t: dict[str, Any], k: int | None) -> str:
    """How a trial was scored, for a table cell: "5-fold CV, 600 items" / "hold-out, 120 items"."""
    ev = t.get("evaluation")
    if not ev:
        return ""
    name = (f"{k}-fold CV" if k else "CV") if ev == "cv" else "hold-out" if ev == "holdout" else str(ev)
    return f"{name}, {t['n_eval']} items" if t.get("n_eval") is not None else name


@dataclass
class RunContext:
    """What every section builder reads: the run's trials, its direction and metric, and its best trial."""

    data: RunData
    summary: dict[str, Any]
    sign: float  # +1 when larger scores are better, -1 when smaller are
    trials: list[dict[str, Any]]
    task: dict[str, Any]
    metric: str
    profile: dict[str, Any]
    rec: dict[str, Any] | None
    counts: Counter
    complete: list[dict[str, Any]]
    point: float
    engine_best: Any
    finished: bool
    selection: dict[str, Any]
    top_se: float | None  # the noise band when trials carry no standard error
    total_seconds: float
    best: dict[str, Any] | None = None
    #: strategy name -> what it declares (:func:`automl_tl.report._declared.declared_strategies`)
    declared: dict[str, dict[str, Any]] = field(default_factory=dict)

    def better_key(self, t: dict[str, Any]) -> tuple:
        """Larger is better: the score; on equal scores the engine's own pick (its model is the one saved), then the cheaper trial."""
        return (self.sign * t["score"], t["trial"] == self.engine_best, -(t["seconds"] if t["seconds"] is not None else math.inf), -t["trial"])

    def best_of(self, trials: list[dict[str, Any]]) -> dict[str, Any] | None:
        """The best of ``trials`` (complete, scored ones), or None."""
        return max(trials, key=self.better_key) if trials else None


def scored_trials(trials: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The complete trials with a score."""
    return [t for t in trials if t["state"] == "COMPLETE" and t["score"] is not None]


def run_context(data: RunData, declared: dict[str, dict[str, Any]] | None = None) -> RunContext:
    """The shared facts of the run that every section builder reads; ``declared``: what its strategies declare."""
    summary = data.summary
    task = summary.get("task") if isinstance(summary.get("task"), dict) else {}
    complete = scored_trials(data.trials)
    selection = summary.get("selection") if isinstance(summary.get("selection"), dict) else {}
    engine_best = (summary.get("best") or {}).get("trial") if isinstance(summary.get("best"), dict) else None
    if engine_best is None and data.config:
        engine_best = data.config.get("trial")
    run = RunContext(
        data=data,
        summary=summary,
        sign=-1.0 if data.direction == "minimize" else 1.0,
        trials=data.trials,
        task=task,
        metric=str(task.get("metric") or (data.baseline or {}).get("metric") or "score"),
        profile=summary.get("profile") if isinstance(summary.get("profile"), dict) else {},
        rec=summary.get("recommendation") if isinstance(summary.get("recommendation"), dict) else None,
        counts=Counter("NOT_STARTED" if t.get("not_started") else t["state"] for t in data.trials),
        complete=complete,
        point=_point([t["score"] for t in complete]),
        engine_best=engine_best,
        finished=bool(summary.get("finished", False)),
        selection=selection,
        top_se=to_float(selection.get("top_se")),
        total_seconds=sum(t["seconds"] or 0.0 for t in data.trials),
        declared=dict(declared or {}),
    )
    run.best = run.best_of(complete)
    return run
