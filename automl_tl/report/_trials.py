"""The trial tables of a report: the leaderboard, the recommended configuration's trials, accuracy
against cost (the Pareto front), the optimisation history and the failures."""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

from automl_tl import schema
from automl_tl.report._context import RunContext, eval_label, public_trial, scored_trials
from automl_tl.report._fmt import describe_config, fmt_score, fmt_seconds
from automl_tl.report._load import PARAM_COLUMNS

__all__ = ["leaderboard_part", "recommended_trials", "recommended_part", "pareto_part", "optimisation_history",
           "failures_part"]


STATE_ORDER = {s: i for i, s in enumerate(schema.STATE_ORDER)}  # the leaderboard's order


def leaderboard_part(trials: list[dict], sign: float, delivered: int | None, tied: set[int], k: int | None) -> list[dict[str, Any]]:
    def lb_key(t):
        return (STATE_ORDER.get(t["state"], 5), t.get("not_started", False), -(sign * t["score"]) if t["score"] is not None else math.inf, t["trial"])

    out, rank = [], 0
    for t in sorted(trials, key=lb_key):
        row = public_trial(t)
        if t["state"] == "COMPLETE" and t["score"] is not None:
            rank += 1
            row["rank"] = rank
        else:
            row["rank"] = None
        row.update(pareto=False, delivered=t["trial"] == delivered, within_se=t["trial"] in tied, scored_on=eval_label(t, k))
        out.append(row)
    return out


def recommended_trials(run: RunContext) -> dict[str, Any]:
    """The recommended configuration: its strategy, its trials, the best of them and the regret against the run's best."""
    rec, trials = run.rec, run.trials
    strategy = (rec.get("strategy") or (rec.get("params") or {}).get("strategy")) if rec else None
    rec_trials = [t for t in trials if t["recommended"]]
    if not rec_trials and rec and isinstance(rec.get("params"), dict) and rec["params"]:
        p = rec["params"]
        keys = [k for k in p if k in PARAM_COLUMNS]
        if keys:
            rec_trials = [t for t in trials if all(str(t.get(k)) == str(p[k]) for k in keys)]
    rec_best = run.best_of(scored_trials(rec_trials))
    regret = run.sign * (run.best["score"] - rec_best["score"]) if run.best and rec_best else None
    return {"strategy": strategy, "trials": rec_trials, "best": rec_best, "regret": regret}


def recommended_part(rec: dict[str, Any]) -> dict[str, Any]:
    """The report's "recommended" entry: the recommended trials and the best of them."""
    b = rec["best"]
    return {
        "strategy": rec["strategy"],
        "trials": [t["trial"] for t in rec["trials"]],
        "best_trial": b["trial"] if b else None,
        "score": b["score"] if b else None,
        "score_se": b["score_se"] if b else None,
        "seconds": b["seconds"] if b else None,
        "states": {str(t["trial"]): t["state"] for t in rec["trials"]},
    }


def pareto_part(run: RunContext, leaderboard: list[dict[str, Any]]) -> dict[str, Any]:
    """Accuracy vs cost: the Pareto front (lower seconds, better score), marked on the leaderboard, and a cheaper near-best trial."""
    sign = run.sign
    costed = sorted((t for t in run.complete if t["seconds"] is not None), key=lambda t: (t["seconds"], -sign * t["score"], t["trial"]))
    front = []
    best_so_far = -math.inf
    for t in costed:
        if sign * t["score"] > best_so_far:
            front.append(t["trial"])
            best_so_far = sign * t["score"]
    for row in leaderboard:
        row["pareto"] = row["trial"] in front
    cheaper = _cheaper_alternative(run, costed)
    return {"front": front, "cheaper_alternative": cheaper, "sentence": _cheaper_sentence(run.best, cheaper)}


def _cheaper_alternative(run: RunContext, costed: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The cheapest trial within one point of the best that costs under 90% of its compute, or None."""
    best, sign, point = run.best, run.sign, run.point
    if best is None or best["seconds"] is None:
        return None
    near = [
        t
        for t in costed
        if sign * (best["score"] - t["score"]) <= point + 1e-12 and t["seconds"] < 0.9 * best["seconds"] and t["trial"] != best["trial"]
    ]
    if not near:
        return None
    c = min(near, key=lambda t: (t["seconds"], -sign * t["score"]))
    return {
        "trial": c["trial"],
        "backbone": c["backbone"],
        "strategy": c["strategy"],
        "score": c["score"],
        "seconds": c["seconds"],
        "gap": sign * (best["score"] - c["score"]),
        "speedup": (best["seconds"] / c["seconds"]) if c["seconds"] else None,
    }


def _cheaper_sentence(best: dict[str, Any] | None, cheaper: dict[str, Any] | None) -> str:
    """The accuracy/cost section's sentence: the cheaper near-best trial, or why there is none."""
    if best is None:
        return "No trial completed, so there is no accuracy/cost trade-off to read yet."
    if not cheaper:
        return "No configuration within one point of the best was meaningfully cheaper: the best is also cost-efficient."
    sp = f" ({cheaper['speedup']:.1f}× cheaper)" if cheaper["speedup"] else ""
    return (
        f"Trial {cheaper['trial']} ({describe_config(cheaper)}) scored {fmt_score(cheaper['score'])}, within one point "
        f"of the best ({fmt_score(best['score'])}), for {fmt_seconds(cheaper['seconds'])} of compute instead of "
        f"{fmt_seconds(best['seconds'])}{sp}."
    )


def optimisation_history(run: RunContext) -> list[dict[str, Any]]:
    """The optimisation history: every trial in order, with the best score so far."""
    history = []
    run_best = None
    for t in sorted(run.trials, key=lambda t: t["trial"]):
        if t["state"] == "COMPLETE" and t["score"] is not None:
            run_best = t["score"] if run_best is None else (max(run_best, t["score"]) if run.sign > 0 else min(run_best, t["score"]))
        history.append({"trial": t["trial"], "state": t["state"], "strategy": t["strategy"], "score": t["score"], "best_so_far": run_best, "recommended": t["recommended"]})
    return history


def _reason_head(reason: str | None) -> str:
    if not reason:
        return "no reason recorded"
    first = str(reason).strip().splitlines()[0] if str(reason).strip() else "no reason recorded"
    return first[:200]


def failures_part(trials: list[dict[str, Any]]) -> dict[str, Any]:
    """The failures: the failed trials and their reasons, most frequent first."""
    failed = [t for t in trials if t["state"] == "FAIL"]
    reasons = Counter(_reason_head(t["fail_reason"]) for t in failed)
    return {
        "n": len(failed),
        "reasons": [{"reason": r, "count": n} for r, n in reasons.most_common()],
        "trials": [{"trial": t["trial"], "backbone": t["backbone"], "strategy": t["strategy"], "reason": t["fail_reason"]} for t in failed],
    }
