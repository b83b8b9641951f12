"""All the numbers of a run report (the content of report.json), computed from a run directory."""

from __future__ import annotations

import datetime as _dt
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from automl_tl import schema
from automl_tl.report import _noise
from automl_tl.report._delivered import (classical_backbones, delivered_part, evaluation_part, probe_part, stop_part,
                                        transferability_sentence)
from automl_tl.report._fmt import describe_config, fmt_interval, fmt_score, fmt_seconds
from automl_tl.report._io import jsonable, to_float
from automl_tl.report._load import NOISE_COLUMNS, PARAM_COLUMNS, RunData, load_run

__all__ = ["build_report", "build_from_data", "REPORT_VERSION", "profile_size"]

REPORT_VERSION = 1
STRATEGY_ORDER = ("head_only", "linear_probe", "feature_extraction", "fine_tune_top", "fine_tune_all", "lp_ft",
                  "layerwise_decay")
STATE_ORDER = {s: i for i, s in enumerate(schema.STATE_ORDER)}  # the leaderboard's order
MAX_CONFUSION_CLASSES = 60


def _strategy_key(s: str) -> tuple:
    return (STRATEGY_ORDER.index(s) if s in STRATEGY_ORDER else len(STRATEGY_ORDER), str(s))


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


def _public_trial(t: dict[str, Any]) -> dict[str, Any]:
    return {k: t.get(k) for k in ("trial", "state", *PARAM_COLUMNS, "score", *NOISE_COLUMNS, "seconds", "recommended", "not_started", "fail_reason")}


def _eval_label(t: dict[str, Any], k: int | None) -> str:
    """How a trial was scored, for a table cell: "5-fold CV, 600 items" / "hold-out, 120 items"."""
    ev = t.get("evaluation")
    if not ev:
        return ""
    name = (f"{k}-fold CV" if k else "CV") if ev == "cv" else "hold-out" if ev == "holdout" else str(ev)
    return f"{name}, {t['n_eval']} items" if t.get("n_eval") is not None else name


def _leaderboard(trials: list[dict], sign: float, delivered: int | None, tied: set[int], k: int | None) -> list[dict[str, Any]]:
    def lb_key(t):
        return (STATE_ORDER.get(t["state"], 5), t.get("not_started", False), -(sign * t["score"]) if t["score"] is not None else math.inf, t["trial"])

    out, rank = [], 0
    for t in sorted(trials, key=lb_key):
        row = _public_trial(t)
        if t["state"] == "COMPLETE" and t["score"] is not None:
            rank += 1
            row["rank"] = rank
        else:
            row["rank"] = None
        row.update(pareto=False, delivered=t["trial"] == delivered, within_se=t["trial"] in tied, scored_on=_eval_label(t, k))
        out.append(row)
    return out


def _reason_head(reason: str | None) -> str:
    if not reason:
        return "no reason recorded"
    first = str(reason).strip().splitlines()[0] if str(reason).strip() else "no reason recorded"
    return first[:200]


def _per_class(data: RunData) -> dict[str, Any]:
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


@dataclass
class _Run:
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

    def better_key(self, t: dict[str, Any]) -> tuple:
        """Larger is better: the score; on equal scores the engine's own pick (its model is the one saved), then the cheaper trial."""
        return (self.sign * t["score"], t["trial"] == self.engine_best, -(t["seconds"] if t["seconds"] is not None else math.inf), -t["trial"])

    def best_of(self, trials: list[dict[str, Any]]) -> dict[str, Any] | None:
        """The best of ``trials`` (complete, scored ones), or None."""
        return max(trials, key=self.better_key) if trials else None


def _scored(trials: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The complete trials with a score."""
    return [t for t in trials if t["state"] == "COMPLETE" and t["score"] is not None]


def _run_context(data: RunData) -> _Run:
    """The shared facts of the run that every section builder reads."""
    summary = data.summary
    task = summary.get("task") if isinstance(summary.get("task"), dict) else {}
    complete = _scored(data.trials)
    selection = summary.get("selection") if isinstance(summary.get("selection"), dict) else {}
    engine_best = (summary.get("best") or {}).get("trial") if isinstance(summary.get("best"), dict) else None
    if engine_best is None and data.config:
        engine_best = data.config.get("trial")
    run = _Run(
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
    )
    run.best = run.best_of(complete)
    return run


def _run_part(run: _Run) -> dict[str, Any]:
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


def _counts_part(run: _Run) -> dict[str, int]:
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


def _recommended(run: _Run) -> dict[str, Any]:
    """The recommended configuration: its strategy, its trials, the best of them and the regret against the run's best."""
    rec, trials = run.rec, run.trials
    strategy = (rec.get("strategy") or (rec.get("params") or {}).get("strategy")) if rec else None
    rec_trials = [t for t in trials if t["recommended"]]
    if not rec_trials and rec and isinstance(rec.get("params"), dict) and rec["params"]:
        p = rec["params"]
        keys = [k for k in p if k in PARAM_COLUMNS]
        if keys:
            rec_trials = [t for t in trials if all(str(t.get(k)) == str(p[k]) for k in keys)]
    rec_best = run.best_of(_scored(rec_trials))
    regret = run.sign * (run.best["score"] - rec_best["score"]) if run.best and rec_best else None
    return {"strategy": strategy, "trials": rec_trials, "best": rec_best, "regret": regret}


def _recommended_part(rec: dict[str, Any]) -> dict[str, Any]:
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


def _placed_trials(trials: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The trials the strategy x backbone matrix counts (queued trials without parameters yet, and trials never started, are left out)."""
    return [t for t in trials if (t["strategy"] or t["backbone"] or t["state"] not in ("WAITING", "UNKNOWN")) and not t.get("not_started")]


def _matrix(run: _Run, placed: list[dict[str, Any]]) -> dict[str, Any]:
    """The strategy x backbone matrix: one cell per pair that has trials."""
    strategies = sorted({t["strategy"] or "?" for t in placed}, key=_strategy_key)
    backbones = sorted({t["backbone"] or "?" for t in placed}, key=str)
    cells = []
    for s in strategies:
        for b in backbones:
            ts = [t for t in placed if (t["strategy"] or "?") == s and (t["backbone"] or "?") == b]
            if ts:
                cells.append(_matrix_cell(run, s, b, ts))
    return {"strategies": strategies, "backbones": backbones, "cells": cells}


def _matrix_cell(run: _Run, strategy: str, backbone: str, ts: list[dict[str, Any]]) -> dict[str, Any]:
    """One cell of the strategy x backbone matrix: its best trial, its trial counts and its compute."""
    cb = run.best_of(_scored(ts))
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


def _paired_ties(run: _Run) -> set:
    """The trials the run's selection found tied with the top score (paired, on shared items).

    That tie set holds for the report's best only when it is the same score (equal top scores: the same hold-out)."""
    best, top_score = run.best, to_float(run.selection.get("top_score"))
    if best and top_score is not None and abs(top_score - best["score"]) <= 1e-12:
        return set(run.selection.get("tied") or [])
    return set()


def _strategies(run: _Run, placed: list[dict[str, Any]], strategies: list[str], rec_strategy: str | None) -> dict[str, Any]:
    """The per-strategy summary and the verdict: did the recommended strategy win, or tie with the winner within noise?"""
    paired_ties = _paired_ties(run)
    per_strategy = [_strategy_row(run, s, [t for t in placed if (t["strategy"] or "?") == s], rec_strategy, paired_ties) for s in strategies]
    # a recommended strategy whose best trial is within one standard error of the winner held: a tie within noise
    tied = _noise.tied_strategies(run.best, per_strategy, run.sign, run.top_se)
    for s in per_strategy:
        s["tied_with_best"] = s["strategy"] in tied
    verdict = _noise.strategy_verdict(run.best, rec_strategy, per_strategy, run.sign, run.top_se)
    return {"per_strategy": per_strategy, "paired_ties": paired_ties, "tied": tied, "verdict": verdict}


def _strategy_row(run: _Run, strategy: str, ts: list[dict[str, Any]], rec_strategy: str | None, paired_ties: set) -> dict[str, Any]:
    """One row of the per-strategy summary: the strategy's best trial, its counts, compute and gap to the run's best."""
    best = run.best
    done = _scored(ts)
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
    }


def _pareto(run: _Run, leaderboard: list[dict[str, Any]]) -> dict[str, Any]:
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


def _cheaper_alternative(run: _Run, costed: list[dict[str, Any]]) -> dict[str, Any] | None:
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


def _learning_curves(run: _Run, strategies: list[str]) -> list[dict[str, Any]]:
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


def _optimisation_history(run: _Run) -> list[dict[str, Any]]:
    """The optimisation history: every trial in order, with the best score so far."""
    history = []
    run_best = None
    for t in sorted(run.trials, key=lambda t: t["trial"]):
        if t["state"] == "COMPLETE" and t["score"] is not None:
            run_best = t["score"] if run_best is None else (max(run_best, t["score"]) if run.sign > 0 else min(run_best, t["score"]))
        history.append({"trial": t["trial"], "state": t["state"], "strategy": t["strategy"], "score": t["score"], "best_so_far": run_best, "recommended": t["recommended"]})
    return history


def _baseline(run: _Run, delivered: dict[str, Any] | None) -> dict[str, Any] | None:
    """The classical baseline, compared with the best transfer-learning trial (a classical featurizer searched like a backbone is not one)."""
    if not run.data.baseline:
        return None
    classical = classical_backbones(run.summary, run.data.baseline)
    if delivered and delivered["classical"] and delivered["backbone"]:
        classical.add(str(delivered["backbone"]))
    tl_best = run.best_of([t for t in run.complete if str(t["backbone"]) not in classical])
    return _noise.baseline_part(run.data.baseline, tl_best, run.metric, run.sign, run.point)


def _failures(trials: list[dict[str, Any]]) -> dict[str, Any]:
    """The failures: the failed trials and their reasons, most frequent first."""
    failed = [t for t in trials if t["state"] == "FAIL"]
    reasons = Counter(_reason_head(t["fail_reason"]) for t in failed)
    return {
        "n": len(failed),
        "reasons": [{"reason": r, "count": n} for r, n in reasons.most_common()],
        "trials": [{"trial": t["trial"], "backbone": t["backbone"], "strategy": t["strategy"], "reason": t["fail_reason"]} for t in failed],
    }


def _top_reasons(failures: dict[str, Any]) -> str:
    """The three most frequent failure reasons, for a headline sentence."""
    return "; ".join(f"{r['reason']} (×{r['count']})" for r in failures["reasons"][:3])


def _progress_sentence(run: _Run) -> str:
    """The headline's first sentence: finished or not, the trials per state and the compute."""
    n, counts = len(run.trials), run.counts
    states = (("COMPLETE", "complete"), ("PRUNED", "pruned"), ("FAIL", "failed"), ("RUNNING", "running"), ("WAITING", "queued"), ("NOT_STARTED", "not started"))
    state_text = ", ".join(f"{counts.get(s, 0)} {w}" for s, w in states if counts.get(s, 0))
    if run.finished:
        return f"Run finished: {n} trial{'s' if n != 1 else ''} ({state_text or 'none'}), {fmt_seconds(run.total_seconds)} of compute."
    return (
        f"Run not finished (still going, or interrupted): {n} trial{'s' if n != 1 else ''} so far ({state_text or 'none'}), "
        f"{fmt_seconds(run.total_seconds)} of compute. Numbers below cover what was recorded; re-run `automl-tl report` later to refresh."
    )


def _recommendation_sentence(run: _Run, rec_strategy: str | None) -> str:
    """The headline's sentence on what the strategy table recommended, and why."""
    rec = run.rec
    if not rec:
        return "No recommendation recorded in summary.json."
    rule = f" (rule {rec.get('rule')})" if rec.get("rule") else ""
    reason = f": {str(rec.get('reason')).rstrip()}" if rec.get("reason") else ""
    if not reason.endswith((".", "!", "?")):
        reason += "."
    return f"The strategy table recommended {rec_strategy or '?'}{rule}{reason}"


def _best_sentences(run: _Run, delivered: dict | None, evaluation: dict | None, failures: dict[str, Any]) -> list[str]:
    """The headline's sentences on the best trial (and the delivered one), or on why there is none."""
    best, n = run.best, len(run.trials)
    if best:
        scored_on = _eval_label(best, (evaluation or {}).get("k"))
        out = [
            f"Best: trial {best['trial']}, {describe_config(best)}: {run.metric} {fmt_interval(best['score'], best.get('score_se'))}"
            + (f" ({scored_on})" if scored_on else "") + f" in {fmt_seconds(best['seconds'])}."
        ]
        if delivered and not delivered["is_top"]:
            out.append(delivered["sentences"][0])
        return out
    if n and run.counts.get("FAIL", 0) == n:
        return [f"Every trial failed ({n}). Reasons: {_top_reasons(failures)}."]
    return ["No trial has completed yet." if n else "No trial has been recorded yet."]


def _regret_sentences(run: _Run, rec: dict[str, Any], strat: dict[str, Any]) -> list[str | None]:
    """The headline's sentences on the recommended configuration's regret and on whether the strategy table held."""
    best, rec_best, out = run.best, rec["best"], []
    if rec_best and best:
        out.append(_noise.regret_sentence(rec_best, best, rec["regret"], run.sign, run.point, run.top_se,
                                          paired=rec_best["trial"] in strat["paired_ties"]))
    elif rec["trials"]:
        out.append(
            "The recommended configuration did not complete ("
            + ", ".join(f"trial {t['trial']}: {t['state']}" for t in rec["trials"][:3])
            + "), so its regret is unknown."
        )
    elif run.trials:
        out.append("No trial is marked as the recommended configuration, so its regret is unknown.")
    if best and rec["strategy"]:
        out.append(_noise.strategy_sentence(strat["verdict"], best, rec["strategy"], strat["tied"], strat["per_strategy"], run.point))
    return out


def _headline(run: _Run, rec: dict[str, Any], strat: dict[str, Any], sections: dict[str, Any]) -> list[str | None]:
    """The headline: the verdict sentences at the top of the report, in order.

    ``sections``: the delivered, evaluation, pareto, baseline, stop and failures parts of the report."""
    best, failures = run.best, sections["failures"]
    headline = [_progress_sentence(run), _recommendation_sentence(run, rec["strategy"])]
    headline += _best_sentences(run, sections["delivered"], sections["evaluation"], failures)
    if run.rec:
        headline += _regret_sentences(run, rec, strat)
    if best:
        headline.append(sections["pareto"]["sentence"])
    if sections["baseline"]:
        headline.append(sections["baseline"]["sentence"])
    stop = sections["stop"]
    if stop and stop["early"]:
        headline.append(stop["sentence"])
    n_failed = failures["n"]
    if n_failed and best:
        headline.append(f"{n_failed} trial{'s' if n_failed != 1 else ''} failed: " + _top_reasons(failures) + ".")
    return headline


def _on_new_data(summary: dict[str, Any]) -> dict[str, Any] | None:
    """summary.json's estimate on new data, with the calibration's reliability bins for the diagram."""
    nd = summary.get("on_new_data")
    if not nd:
        return None
    cal = ((summary.get("delivered") or {}).get("calibration")) or {}
    bins = {k: cal[k] for k in ("bins_before", "bins_after") if cal.get(k)}
    return dict(nd) | ({"reliability": bins} if bins else {})


def build_from_data(data: RunData, *, importances: bool = True) -> dict[str, Any]:
    """Every number of a run's report (what report.json holds), one section builder after another."""
    run = _run_context(data)
    rec = _recommended(run)
    delivered = delivered_part(run.summary, {t["trial"]: t for t in run.trials}, run.best, run.sign, run.point)
    evaluation = evaluation_part(run.summary)
    tied_se = set(delivered["tied"]) - {delivered["top_trial"]} if delivered else set()  # within one SE of the top score, not the top itself
    leaderboard = _leaderboard(run.trials, run.sign, delivered["trial"] if delivered else None, tied_se, (evaluation or {}).get("k"))
    placed = _placed_trials(run.trials)
    matrix = _matrix(run, placed)
    strat = _strategies(run, placed, matrix["strategies"], rec["strategy"])
    sections = {
        "delivered": delivered,
        "evaluation": evaluation,
        "pareto": _pareto(run, leaderboard),  # also marks the Pareto trials on the leaderboard
        "baseline": _baseline(run, delivered),
        "stop": stop_part(run.summary),
        "failures": _failures(run.trials),
    }
    headline = _headline(run, rec, strat, sections)
    imp = _importances(data, len(run.complete)) if importances else {"available": False, "reason": "not computed", "values": {}}
    report = {
        **_run_part(run),
        "counts": _counts_part(run),
        "summary_counts": run.summary.get("counts"),
        "total_seconds": run.total_seconds,
        "best": _public_trial(run.best) if run.best else None,
        "recommended": _recommended_part(rec),
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
        "learning_curves": _learning_curves(run, matrix["strategies"]),
        "optimisation_history": _optimisation_history(run),
        "importances": imp,
        "baseline": sections["baseline"],
        "delivered": delivered,
        "on_new_data": _on_new_data(run.summary),
        "stop": sections["stop"],
        "evaluation": evaluation,
        "probe": probe_part(run.summary),
        "transferability": transferability_sentence(run.summary),
        "per_class": _per_class(data),
        "failures": sections["failures"],
        "files": data.files,
        "warnings": list(data.warnings),
    }
    return jsonable(report)


def build_report(run_dir: str | Path, *, importances: bool = True, storage: str | None = None) -> dict[str, Any]:
    """Every number of the report of ``run_dir`` (what report.json holds), as plain JSON types."""
    return build_from_data(load_run(run_dir, storage=storage), importances=importances)
