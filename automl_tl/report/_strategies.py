"""The strategy comparison of a report: the strategy x backbone matrix, the per-strategy summary with
the verdict on the strategy table, and the learning curve of each strategy's best trial."""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

from automl_tl.report import _noise
from automl_tl.report._context import RunContext, scored_trials
from automl_tl.report._declared import DECLARED, first_trials, order_strategies
from automl_tl.report._io import to_float

__all__ = ["placed_trials", "matrix_part", "strategy_part", "learning_curves"]


def placed_trials(trials: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The trials the strategy x backbone matrix counts (queued trials without parameters yet, and trials never started, are left out)."""
    return [t for t in trials if (t["strategy"] or t["backbone"] or t["state"] not in ("WAITING", "UNKNOWN")) and not t.get("not_started")]


def matrix_part(run: RunContext, placed: list[dict[str, Any]]) -> dict[str, Any]:
    """The strategy x backbone matrix: one cell per pair that has trials; the strategies simplest
    first by what they declare (:func:`~automl_tl.report._declared.order_strategies`), built-in or not."""
    strategies = order_strategies({t["strategy"] or "?" for t in placed}, run.declared, first_trials(run.trials))
    backbones = sorted({t["backbone"] or "?" for t in placed}, key=str)
    cells = []
    for s in strategies:
        for b in backbones:
            ts = [t for t in placed if (t["strategy"] or "?") == s and (t["backbone"] or "?") == b]
            if ts:
                cells.append(_matrix_cell(run, s, b, ts))
    return {"strategies": strategies, "backbones": backbones, "cells": cells}


def _matrix_cell(run: RunContext, strategy: str, backbone: str, ts: list[dict[str, Any]]) -> dict[str, Any]:
    """One cell of the strategy x backbone matrix: its best trial, its trial counts and its compute."""
    cb = run.best_of(scored_trials(ts))
    c = Counter(t["state"] for t in ts)
    return {
        "strategy": strategy,
        "backbone": backbone,
        "best_score": cb["score"] if cb else None,
        "best_se": cb["score_se"] if cb else None,
        "best_trial": cb["trial"] if cb else None,
        "n_trials": len(ts),
        "n_complete": c.get("COMPLETE", 0),
        "n_pruned": c.get("PRUNED", 0),
        "n_failed": c.get("FAIL", 0),
        "n_running": c.get("RUNNING", 0),
        "seconds": sum(t["seconds"] or 0.0 for t in ts),
    }


def _paired_ties(run: RunContext) -> set:
    """The trials the run's selection found tied with the top score (paired, on shared items).

    That tie set holds for the report's best only when it is the same score (equal top scores: the same hold-out)."""
    best, top_score = run.best, to_float(run.selection.get("top_score"))
    if best and top_score is not None and abs(top_score - best["score"]) <= 1e-12:
        return set(run.selection.get("tied") or [])
    return set()


def strategy_part(run: RunContext, placed: list[dict[str, Any]], strategies: list[str], rec_strategy: str | None) -> dict[str, Any]:
    """The per-strategy summary and the verdict: did the recommended strategy win, or tie with the winner within noise?"""
    paired_ties = _paired_ties(run)
    per_strategy = [_strategy_row(run, s, [t for t in placed if (t["strategy"] or "?") == s], rec_strategy, paired_ties) for s in strategies]
    # a recommended strategy whose best trial is within one standard error of the winner held: a tie within noise
    tied = _noise.tied_strategies(run.best, per_strategy, run.sign, run.top_se)
    for s in per_strategy:
        s["tied_with_best"] = s["strategy"] in tied
    verdict = _noise.strategy_verdict(run.best, rec_strategy, per_strategy, run.sign, run.top_se)
    return {"per_strategy": per_strategy, "paired_ties": paired_ties, "tied": tied, "verdict": verdict}


def _strategy_row(run: RunContext, strategy: str, ts: list[dict[str, Any]], rec_strategy: str | None, paired_ties: set) -> dict[str, Any]:
    """One row of the per-strategy summary: the strategy's best trial, its counts, compute and gap to the
    run's best, and what it declares (None where nothing does)."""
    best = run.best
    done = scored_trials(ts)
    sb = run.best_of(done)
    return {
        "strategy": strategy,
        "best_score": sb["score"] if sb else None,
        "best_se": sb["score_se"] if sb else None,
        "best_trial": sb["trial"] if sb else None,
        "best_backbone": sb["backbone"] if sb else None,
        "n_trials": len(ts),
        "n_complete": len(done),
        "seconds": sum(t["seconds"] or 0.0 for t in ts),
        "gap_to_best": (run.sign * (best["score"] - sb["score"])) if (sb and best) else None,
        "recommended": strategy == rec_strategy,
        # the run's selection compared this strategy's trial with the top one on the items both
        # were scored on and found the gap within its standard error
        "paired_tie": any(t["trial"] in paired_ties for t in done),
        **{k: (run.declared.get(strategy) or {}).get(k) for k in DECLARED},
    }


def learning_curves(run: RunContext, strategies: list[str]) -> list[dict[str, Any]]:
    """The learning curves: the best trial (with a history) per strategy."""
    sign, curves = run.sign, []
    for s in strategies:
        cand = [t for t in run.trials if (t["strategy"] or "?") == s and t["history"] and t["score"] is not None]
        if not cand:
            cand = [t for t in run.trials if (t["strategy"] or "?") == s and t["history"]]
        if not cand:
            continue
        pick = max(cand, key=lambda t: (t["state"] == "COMPLETE", sign * (t["score"] if t["score"] is not None else -sign * math.inf)))
        hist = [
            {"phase": h.get("phase"), "epoch": h.get("epoch"), "loss": to_float(h.get("loss")), "val_score": to_float(h.get("val_score"))}
            for h in pick["history"]
        ]
        curves.append({"strategy": s, "trial": pick["trial"], "backbone": pick["backbone"], "state": pick["state"], "score": pick["score"], "history": hist})
    return curves
