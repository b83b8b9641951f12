"""All the numbers of a run report (the content of report.json), computed from a run directory.

One section builder after another over the run's shared facts (:mod:`automl_tl.report._context`):
the trial tables (:mod:`~automl_tl.report._trials`), the strategy comparison
(:mod:`~automl_tl.report._strategies`), the per-class results (:mod:`~automl_tl.report._per_class`),
what was delivered (:mod:`~automl_tl.report._delivered`) and the headline
(:mod:`~automl_tl.report._headline`).
"""

from __future__ import annotations

import datetime as _dt
import math
from pathlib import Path
from typing import Any, Iterable

from automl_tl.report import _noise
from automl_tl.report._context import RunContext, profile_size, public_trial, run_context
from automl_tl.report._declared import declared_strategies
from automl_tl.report._delivered import (classical_backbones, delivered_part, evaluation_part, probe_part, stop_part,
                                        transferability_sentence)
from automl_tl.report._headline import headline_sentences
from automl_tl.report._io import jsonable
from automl_tl.report._load import RunData, load_run
from automl_tl.report._per_class import per_class_part
from automl_tl.report._strategies import learning_curves, matrix_part, placed_trials, strategy_part
from automl_tl.report._trials import (failures_part, leaderboard_part, optimisation_history, pareto_part, recommended_part,
                                      recommended_trials)

__all__ = ["build_report", "build_from_data", "REPORT_VERSION", "profile_size"]


REPORT_VERSION = 1


def _importances(data: RunData, n_complete: int) -> dict[str, Any]:
    if data.study is None:
        why = "no study.db in the run directory" if not data.files.get("study.db") else "study.db could not be opened"
        return {"available": False, "reason": why, "values": {}}
    try:
        from optuna.trial import TrialState

        complete = data.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    except Exception as exc:
        return {"available": False, "reason": f"study trials unreadable ({type(exc).__name__})", "values": {}}
    if len(complete) < 2:
        return {"available": False, "reason": f"needs at least 2 complete trials (has {len(complete)})", "values": {}}
    if len({t.value for t in complete}) < 2:
        return {"available": False, "reason": "every complete trial has the same score", "values": {}}
    try:
        import warnings

        import optuna

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            values = optuna.importance.get_param_importances(
                data.study, evaluator=optuna.importance.FanovaImportanceEvaluator(n_trees=32, seed=0)
            )
    except Exception as exc:  # conditional spaces, single-valued params, sklearn missing...
        return {"available": False, "reason": f"Optuna could not compute importances ({type(exc).__name__}: {exc})", "values": {}}
    values = {str(k): float(v) for k, v in values.items() if v is not None and math.isfinite(float(v))}
    if not values:
        return {"available": False, "reason": "no parameter is shared by all complete trials", "values": {}}
    return {"available": True, "method": "fANOVA (Optuna, seed 0)", "values": values, "reason": None}


def _run_part(run: RunContext) -> dict[str, Any]:
    """The report's head: which run, which task and metric, the dataset profile and the recommendation."""
    data = run.data
    return {
        "report_version": REPORT_VERSION,
        "generated_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "run_dir": str(data.run_dir.resolve()),
        "run_name": data.run_dir.resolve().name,
        "finished": run.finished,
        "task": run.task,
        "metric": run.metric,
        "direction": data.direction,
        "point": run.point,
        "profile": run.profile,
        "n_samples": profile_size(run.profile, data.split),
        "recommendation": run.rec,
    }


def _counts_part(run: RunContext) -> dict[str, int]:
    """The trial counts per state."""
    counts, n = run.counts, len(run.trials)
    return {
        "total": n,
        "complete": counts.get("COMPLETE", 0),
        "pruned": counts.get("PRUNED", 0),
        "failed": counts.get("FAIL", 0),
        "running": counts.get("RUNNING", 0),
        "waiting": counts.get("WAITING", 0),
        "not_started": counts.get("NOT_STARTED", 0),
        "other": n - sum(counts.get(s, 0) for s in ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING", "NOT_STARTED")),
    }


def _baseline(run: RunContext, delivered: dict[str, Any] | None) -> dict[str, Any] | None:
    """The classical baseline, compared with the best transfer-learning trial (a classical featurizer searched like a backbone is not one)."""
    if not run.data.baseline:
        return None
    classical = classical_backbones(run.summary, run.data.baseline)
    if delivered and delivered["classical"] and delivered["backbone"]:
        classical.add(str(delivered["backbone"]))
    tl_best = run.best_of([t for t in run.complete if str(t["backbone"]) not in classical])
    return _noise.baseline_part(run.data.baseline, tl_best, run.metric, run.sign, run.point)


def _on_new_data(summary: dict[str, Any]) -> dict[str, Any] | None:
    """summary.json's estimate on new data, with the calibration's reliability bins for the diagram."""
    nd = summary.get("on_new_data")
    if not nd:
        return None
    cal = ((summary.get("delivered") or {}).get("calibration")) or {}
    bins = {k: cal[k] for k in ("bins_before", "bins_after") if cal.get(k)}
    return dict(nd) | ({"reliability": bins} if bins else {})


def build_from_data(data: RunData, *, importances: bool = True, strategies: Iterable[Any] | None = None) -> dict[str, Any]:
    """Every number of a run's report (what report.json holds), one section builder after another.

    ``strategies``: the registered strategies (a :class:`~automl_tl.strategies.StrategyRegistry`),
    whose declarations complete what the run recorded of its strategies (see :mod:`automl_tl.report._declared`)."""
    run = run_context(data, declared_strategies(data.summary, strategies))
    rec = recommended_trials(run)
    delivered = delivered_part(run.summary, {t["trial"]: t for t in run.trials}, run.best, run.sign, run.point)
    evaluation = evaluation_part(run.summary)
    tied_se = set(delivered["tied"]) - {delivered["top_trial"]} if delivered else set()  # within one SE of the top score, not the top itself
    leaderboard = leaderboard_part(run.trials, run.sign, delivered["trial"] if delivered else None, tied_se, (evaluation or {}).get("k"))
    placed = placed_trials(run.trials)
    matrix = matrix_part(run, placed)
    strat = strategy_part(run, placed, matrix["strategies"], rec["strategy"])
    sections = {
        "delivered": delivered,
        "evaluation": evaluation,
        "pareto": pareto_part(run, leaderboard),  # also marks the Pareto trials on the leaderboard
        "baseline": _baseline(run, delivered),
        "stop": stop_part(run.summary),
        "failures": failures_part(run.trials),
    }
    headline = headline_sentences(run, rec, strat, sections)
    imp = _importances(data, len(run.complete)) if importances else {"available": False, "reason": "not computed", "values": {}}
    report = {
        **_run_part(run),
        "counts": _counts_part(run),
        "summary_counts": run.summary.get("counts"),
        "total_seconds": run.total_seconds,
        "best": public_trial(run.best) if run.best else None,
        "recommended": recommended_part(rec),
        "regret": rec["regret"],
        "regret_points": (rec["regret"] / run.point) if rec["regret"] is not None else None,
        "winner_strategy": run.best["strategy"] if run.best else None,
        "tied_strategies": strat["tied"],
        "strategy_held": strat["verdict"]["held"],
        "strategy_verdict": strat["verdict"],
        "headline": headline,
        "leaderboard": leaderboard,
        "strategies": strat["per_strategy"],
        "matrix": matrix,
        "pareto": sections["pareto"],
        "learning_curves": learning_curves(run, matrix["strategies"]),
        "optimisation_history": optimisation_history(run),
        "importances": imp,
        "baseline": sections["baseline"],
        "delivered": delivered,
        "on_new_data": _on_new_data(run.summary),
        "stop": sections["stop"],
        "evaluation": evaluation,
        "probe": probe_part(run.summary),
        "transferability": transferability_sentence(run.summary),
        "per_class": per_class_part(data),
        "failures": sections["failures"],
        "files": data.files,
        "warnings": list(data.warnings),
    }
    return jsonable(report)


def build_report(run_dir: str | Path, *, importances: bool = True, storage: str | None = None,
                 strategies: Iterable[Any] | None = None) -> dict[str, Any]:
    """Every number of the report of ``run_dir`` (what report.json holds), as plain JSON types.

    ``strategies``: the registered strategies, for what the run did not record of its own (None: the record only)."""
    return build_from_data(load_run(run_dir, storage=storage), importances=importances, strategies=strategies)
