"""All the numbers of a run report (the content of report.json), computed from a run directory."""

from __future__ import annotations

import datetime as _dt
import math
from collections import Counter
from pathlib import Path
from typing import Any

from automl_tl.report import _noise
from automl_tl.report._delivered import classical_backbones, delivered_part, evaluation_part, probe_part, stop_part
from automl_tl.report._fmt import describe_config, fmt_interval, fmt_score, fmt_seconds
from automl_tl.report._io import jsonable, to_float
from automl_tl.report._load import NOISE_COLUMNS, PARAM_COLUMNS, RunData, load_run

__all__ = ["build_report", "build_from_data", "REPORT_VERSION", "profile_size"]

REPORT_VERSION = 1
STRATEGY_ORDER = ("head_only", "linear_probe", "feature_extraction", "fine_tune_top", "fine_tune_all")
STATE_ORDER = {"COMPLETE": 0, "PRUNED": 1, "RUNNING": 2, "WAITING": 3, "FAIL": 4}
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
    y_true = [str(r.get(tcol, "")) for r in rows]
    y_pred = [str(r.get(pcol, "")) for r in rows]
    labels = list(data.labels)
    # predictions may hold class indices rather than names
    if labels and all(v.isdigit() for v in y_true + y_pred) and not any(v in labels for v in y_true):
        idx = lambda v: labels[int(v)] if int(v) < len(labels) else v  # noqa: E731
        y_true = [idx(v) for v in y_true]
        y_pred = [idx(v) for v in y_pred]
    for v in y_true + y_pred:
        if v not in labels:
            labels.append(v)
    pos = {c: i for i, c in enumerate(labels)}
    k = len(labels)
    cm = [[0] * k for _ in range(k)]
    for a, b in zip(y_true, y_pred):
        cm[pos[a]][pos[b]] += 1
    classes = []
    for i, c in enumerate(labels):
        tp = cm[i][i]
        support = sum(cm[i])
        predicted = sum(cm[j][i] for j in range(k))
        precision = tp / predicted if predicted else None
        recall = tp / support if support else None
        f1 = (2 * precision * recall / (precision + recall)) if precision and recall else (0.0 if support or predicted else None)
        classes.append({"label": c, "precision": precision, "recall": recall, "f1": f1, "support": support, "predicted": predicted})
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


def build_from_data(data: RunData, *, importances: bool = True) -> dict[str, Any]:
    summary = data.summary
    sign = -1.0 if data.direction == "minimize" else 1.0
    trials = data.trials
    task = summary.get("task") if isinstance(summary.get("task"), dict) else {}
    metric = str(task.get("metric") or (data.baseline or {}).get("metric") or "score")
    profile = summary.get("profile") if isinstance(summary.get("profile"), dict) else {}
    rec = summary.get("recommendation") if isinstance(summary.get("recommendation"), dict) else None
    counts = Counter("NOT_STARTED" if t.get("not_started") else t["state"] for t in trials)
    complete = [t for t in trials if t["state"] == "COMPLETE" and t["score"] is not None]
    scores = [t["score"] for t in complete]
    point = _point(scores)

    # on equal scores the engine's own pick wins (its model is the one saved), then the cheaper trial
    engine_best = (summary.get("best") or {}).get("trial") if isinstance(summary.get("best"), dict) else None
    if engine_best is None and data.config:
        engine_best = data.config.get("trial")

    def better_key(t):  # larger is better
        return (sign * t["score"], t["trial"] == engine_best, -(t["seconds"] if t["seconds"] is not None else math.inf), -t["trial"])

    best = max(complete, key=better_key) if complete else None
    finished = bool(summary.get("finished", False))
    selection = summary.get("selection") if isinstance(summary.get("selection"), dict) else {}
    top_se = to_float(selection.get("top_se"))  # the noise band when trials carry no standard error
    total_seconds = sum(t["seconds"] or 0.0 for t in trials)

    # recommended configuration
    rec_strategy = None
    if rec:
        rec_strategy = rec.get("strategy") or (rec.get("params") or {}).get("strategy")
    rec_trials = [t for t in trials if t["recommended"]]
    if not rec_trials and rec and isinstance(rec.get("params"), dict) and rec["params"]:
        p = rec["params"]
        keys = [k for k in p if k in PARAM_COLUMNS]
        if keys:
            rec_trials = [t for t in trials if all(str(t.get(k)) == str(p[k]) for k in keys)]
    rec_complete = [t for t in rec_trials if t["state"] == "COMPLETE" and t["score"] is not None]
    rec_best = max(rec_complete, key=better_key) if rec_complete else None
    regret = sign * (best["score"] - rec_best["score"]) if best and rec_best else None
    winner_strategy = best["strategy"] if best else None

    # what was delivered and why (newer runs), the leaderboard
    by_number = {t["trial"]: t for t in trials}
    delivered = delivered_part(summary, by_number, best, sign, point)
    evaluation = evaluation_part(summary)
    tied_se = set(delivered["tied"]) - {delivered["top_trial"]} if delivered else set()  # within one SE of the top score, not the top itself
    leaderboard = _leaderboard(trials, sign, delivered["trial"] if delivered else None, tied_se, (evaluation or {}).get("k"))

    # strategy x backbone matrix (queued trials without parameters yet, and trials never started, are left out)
    placed = [t for t in trials if (t["strategy"] or t["backbone"] or t["state"] not in ("WAITING", "UNKNOWN")) and not t.get("not_started")]
    strategies = sorted({t["strategy"] or "?" for t in placed}, key=_strategy_key)
    backbones = sorted({t["backbone"] or "?" for t in placed}, key=str)
    cells = []
    for s in strategies:
        for b in backbones:
            ts = [t for t in placed if (t["strategy"] or "?") == s and (t["backbone"] or "?") == b]
            if not ts:
                continue
            done = [t for t in ts if t["state"] == "COMPLETE" and t["score"] is not None]
            cb = max(done, key=better_key) if done else None
            c = Counter(t["state"] for t in ts)
            cells.append(
                {
                    "strategy": s,
                    "backbone": b,
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
            )
    # the selection's tie set was found against the top score (paired, on shared items): it holds
    # for the report's best when that is the same score (equal top scores: the same hold-out)
    top_score = to_float(selection.get("top_score"))
    paired_ties = (set(selection.get("tied") or []) if (best and top_score is not None
                                                        and abs(top_score - best["score"]) <= 1e-12) else set())
    per_strategy = []
    for s in strategies:
        ts = [t for t in placed if (t["strategy"] or "?") == s]
        done = [t for t in ts if t["state"] == "COMPLETE" and t["score"] is not None]
        sb = max(done, key=better_key) if done else None
        per_strategy.append(
            {
                "strategy": s,
                "best_score": sb["score"] if sb else None,
                "best_se": sb["score_se"] if sb else None,
                "best_trial": sb["trial"] if sb else None,
                "best_backbone": sb["backbone"] if sb else None,
                "n_trials": len(ts),
                "n_complete": len(done),
                "seconds": sum(t["seconds"] or 0.0 for t in ts),
                "gap_to_best": (sign * (best["score"] - sb["score"])) if (sb and best) else None,
                "recommended": s == rec_strategy,
                # the run's selection compared this strategy's trial with the top one on the items both
                # were scored on and found the gap within its standard error
                "paired_tie": any(t["trial"] in paired_ties for t in done),
            }
        )
    # a recommended strategy whose best trial is within one standard error of the winner held: a tie within noise
    tied = _noise.tied_strategies(best, per_strategy, sign, top_se)
    for s in per_strategy:
        s["tied_with_best"] = s["strategy"] in tied
    verdict = _noise.strategy_verdict(best, rec_strategy, per_strategy, sign, top_se)
    held = verdict["held"]

    # accuracy vs cost, Pareto front (lower seconds, better score)
    costed = sorted((t for t in complete if t["seconds"] is not None), key=lambda t: (t["seconds"], -sign * t["score"], t["trial"]))
    front = []
    best_so_far = -math.inf
    for t in costed:
        if sign * t["score"] > best_so_far:
            front.append(t["trial"])
            best_so_far = sign * t["score"]
    for row in leaderboard:
        row["pareto"] = row["trial"] in front
    cheaper = None
    if best is not None and best["seconds"] is not None:
        near = [
            t
            for t in costed
            if sign * (best["score"] - t["score"]) <= point + 1e-12 and t["seconds"] < 0.9 * best["seconds"] and t["trial"] != best["trial"]
        ]
        if near:
            c = min(near, key=lambda t: (t["seconds"], -sign * t["score"]))
            cheaper = {
                "trial": c["trial"],
                "backbone": c["backbone"],
                "strategy": c["strategy"],
                "score": c["score"],
                "seconds": c["seconds"],
                "gap": sign * (best["score"] - c["score"]),
                "speedup": (best["seconds"] / c["seconds"]) if c["seconds"] else None,
            }
    if best is None:
        cheaper_sentence = "No trial completed, so there is no accuracy/cost trade-off to read yet."
    elif cheaper:
        sp = f" ({cheaper['speedup']:.1f}× cheaper)" if cheaper["speedup"] else ""
        cheaper_sentence = (
            f"Trial {cheaper['trial']} ({describe_config(cheaper)}) scored {fmt_score(cheaper['score'])}, within one point "
            f"of the best ({fmt_score(best['score'])}), for {fmt_seconds(cheaper['seconds'])} of compute instead of "
            f"{fmt_seconds(best['seconds'])}{sp}."
        )
    else:
        cheaper_sentence = "No configuration within one point of the best was meaningfully cheaper: the best is also cost-efficient."

    # learning curves: best trial (with a history) per strategy
    curves = []
    for s in strategies:
        cand = [t for t in trials if (t["strategy"] or "?") == s and t["history"] and t["score"] is not None]
        if not cand:
            cand = [t for t in trials if (t["strategy"] or "?") == s and t["history"]]
        if not cand:
            continue
        pick = max(cand, key=lambda t: (t["state"] == "COMPLETE", sign * (t["score"] if t["score"] is not None else -sign * math.inf)))
        hist = [
            {"phase": h.get("phase"), "epoch": h.get("epoch"), "loss": to_float(h.get("loss")), "val_score": to_float(h.get("val_score"))}
            for h in pick["history"]
        ]
        curves.append({"strategy": s, "trial": pick["trial"], "backbone": pick["backbone"], "state": pick["state"], "score": pick["score"], "history": hist})

    # optimisation history
    history = []
    run_best = None
    for t in sorted(trials, key=lambda t: t["trial"]):
        if t["state"] == "COMPLETE" and t["score"] is not None:
            run_best = t["score"] if run_best is None else (max(run_best, t["score"]) if sign > 0 else min(run_best, t["score"]))
        history.append({"trial": t["trial"], "state": t["state"], "strategy": t["strategy"], "score": t["score"], "best_so_far": run_best, "recommended": t["recommended"]})

    # baseline: compared with the best transfer-learning trial (a classical featurizer searched like a backbone is not one)
    baseline = None
    if data.baseline:
        classical = classical_backbones(summary, data.baseline)
        if delivered and delivered["classical"] and delivered["backbone"]:
            classical.add(str(delivered["backbone"]))
        tl_trials = [t for t in complete if str(t["backbone"]) not in classical]
        tl_best = max(tl_trials, key=better_key) if tl_trials else None
        baseline = _noise.baseline_part(data.baseline, tl_best, metric, sign, point)

    # failures
    failed = [t for t in trials if t["state"] == "FAIL"]
    reasons = Counter(_reason_head(t["fail_reason"]) for t in failed)
    failures = {
        "n": len(failed),
        "reasons": [{"reason": r, "count": n} for r, n in reasons.most_common()],
        "trials": [{"trial": t["trial"], "backbone": t["backbone"], "strategy": t["strategy"], "reason": t["fail_reason"]} for t in failed],
    }

    # headline sentences
    n = len(trials)
    state_text = ", ".join(f"{counts.get(s, 0)} {w}" for s, w in (("COMPLETE", "complete"), ("PRUNED", "pruned"), ("FAIL", "failed"), ("RUNNING", "running"), ("WAITING", "queued"), ("NOT_STARTED", "not started")) if counts.get(s, 0))
    headline = []
    if finished:
        headline.append(f"Run finished: {n} trial{'s' if n != 1 else ''} ({state_text or 'none'}), {fmt_seconds(total_seconds)} of compute.")
    else:
        headline.append(
            f"Run not finished (still going, or interrupted): {n} trial{'s' if n != 1 else ''} so far ({state_text or 'none'}), "
            f"{fmt_seconds(total_seconds)} of compute. Numbers below cover what was recorded; re-run `automl-tl report` later to refresh."
        )
    if rec:
        rule = f" (rule {rec.get('rule')})" if rec.get("rule") else ""
        reason = f": {str(rec.get('reason')).rstrip()}" if rec.get("reason") else ""
        if not reason.endswith((".", "!", "?")):
            reason += "."
        headline.append(f"The strategy table recommended {rec_strategy or '?'}{rule}{reason}")
    else:
        headline.append("No recommendation recorded in summary.json.")
    if best:
        scored_on = _eval_label(best, (evaluation or {}).get("k"))
        headline.append(
            f"Best: trial {best['trial']}, {describe_config(best)}: {metric} {fmt_interval(best['score'], best.get('score_se'))}"
            + (f" ({scored_on})" if scored_on else "") + f" in {fmt_seconds(best['seconds'])}."
        )
        if delivered and not delivered["is_top"]:
            headline.append(delivered["sentences"][0])
    elif n and counts.get("FAIL", 0) == n:
        top = "; ".join(f"{r['reason']} (×{r['count']})" for r in failures["reasons"][:3])
        headline.append(f"Every trial failed ({n}). Reasons: {top}.")
    elif n:
        headline.append("No trial has completed yet.")
    else:
        headline.append("No trial has been recorded yet.")
    if rec:
        if rec_best and best:
            headline.append(_noise.regret_sentence(rec_best, best, regret, sign, point, top_se,
                                                    paired=rec_best["trial"] in paired_ties))
        elif rec_trials:
            headline.append(
                "The recommended configuration did not complete ("
                + ", ".join(f"trial {t['trial']}: {t['state']}" for t in rec_trials[:3])
                + "), so its regret is unknown."
            )
        elif trials:
            headline.append("No trial is marked as the recommended configuration, so its regret is unknown.")
        if best and rec_strategy:
            headline.append(_noise.strategy_sentence(verdict, best, rec_strategy, tied, per_strategy, point))
    if best:
        headline.append(cheaper_sentence)
    if baseline:
        headline.append(baseline["sentence"])
    stop = stop_part(summary)
    if stop and stop["early"]:
        headline.append(stop["sentence"])
    if failed and best:
        headline.append(f"{len(failed)} trial{'s' if len(failed) != 1 else ''} failed: " + "; ".join(f"{r['reason']} (×{r['count']})" for r in failures["reasons"][:3]) + ".")

    imp = _importances(data, len(complete)) if importances else {"available": False, "reason": "not computed", "values": {}}

    report = {
        "report_version": REPORT_VERSION,
        "generated_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "run_dir": str(data.run_dir.resolve()),
        "run_name": data.run_dir.resolve().name,
        "finished": finished,
        "task": task,
        "metric": metric,
        "direction": data.direction,
        "point": point,
        "profile": profile,
        "n_samples": profile_size(profile, data.split),
        "recommendation": rec,
        "counts": {
            "total": n,
            "complete": counts.get("COMPLETE", 0),
            "pruned": counts.get("PRUNED", 0),
            "failed": counts.get("FAIL", 0),
            "running": counts.get("RUNNING", 0),
            "waiting": counts.get("WAITING", 0),
            "not_started": counts.get("NOT_STARTED", 0),
            "other": n - sum(counts.get(s, 0) for s in ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING", "NOT_STARTED")),
        },
        "summary_counts": summary.get("counts"),
        "total_seconds": total_seconds,
        "best": _public_trial(best) if best else None,
        "recommended": {
            "strategy": rec_strategy,
            "trials": [t["trial"] for t in rec_trials],
            "best_trial": rec_best["trial"] if rec_best else None,
            "score": rec_best["score"] if rec_best else None,
            "score_se": rec_best["score_se"] if rec_best else None,
            "seconds": rec_best["seconds"] if rec_best else None,
            "states": {str(t["trial"]): t["state"] for t in rec_trials},
        },
        "regret": regret,
        "regret_points": (regret / point) if regret is not None else None,
        "winner_strategy": winner_strategy,
        "tied_strategies": tied,
        "strategy_held": held,
        "strategy_verdict": verdict,
        "headline": headline,
        "leaderboard": leaderboard,
        "strategies": per_strategy,
        "matrix": {"strategies": strategies, "backbones": backbones, "cells": cells},
        "pareto": {"front": front, "cheaper_alternative": cheaper, "sentence": cheaper_sentence},
        "learning_curves": curves,
        "optimisation_history": history,
        "importances": imp,
        "baseline": baseline,
        "delivered": delivered,
        "stop": stop,
        "evaluation": evaluation,
        "probe": probe_part(summary),
        "per_class": _per_class(data),
        "failures": failures,
        "files": data.files,
        "warnings": list(data.warnings),
    }
    return jsonable(report)


def build_report(run_dir: str | Path, *, importances: bool = True) -> dict[str, Any]:
    """Every number of the report of ``run_dir`` (what report.json holds), as plain JSON types."""
    return build_from_data(load_run(run_dir), importances=importances)
