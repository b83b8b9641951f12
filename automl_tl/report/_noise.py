"""Verdicts that know about noise: a gap within one standard error is a tie, not a win.

Newer runs give every score a standard error (``score_se``: a bootstrap over the items it was
measured on). Two scores whose gap is within the larger of their two standard errors cannot be told
apart on this validation data, so the report calls that a tie *within noise*. Runs without standard
errors (older automl-tl) fall back to the selection's ``top_se`` when there is one, else only equal
scores tie, as before.
"""

from __future__ import annotations

from typing import Any

from automl_tl.report._fmt import fmt_interval, fmt_points, fmt_score, fmt_seconds
from automl_tl.report._io import to_float

__all__ = ["EPS", "band", "compare", "tied_strategies", "strategy_verdict", "strategy_sentence", "regret_sentence", "baseline_part"]

EPS = 1e-12
HELD, HELD_NOISE, NOT_HELD = "held", "held (a tie within noise)", "did not hold"
#: the recommended strategy won, but no other strategy completed a trial: nothing to compare with
NOT_TESTED = "not tested"


def band(*ses: Any, fallback: Any = None) -> float | None:
    """The noise band of a comparison: the larger standard error of the scores compared
    (``fallback``, e.g. the selection's ``top_se``, when none is known); None if nothing is known."""
    vals = [v for v in (to_float(s) for s in ses) if v is not None and v >= 0]
    if vals:
        return max(vals)
    fb = to_float(fallback)
    return fb if fb is not None and fb >= 0 else None


def compare(a: float, a_se: Any, b: float, b_se: Any, sign: float, *, fallback: Any = None) -> dict[str, Any]:
    """``a`` against ``b``: gap = sign·(a − b) (positive: a is better), the band, and the kind:
    "equal", "noise" (0 < |gap| <= band), "a" or "b" (that one is better beyond the band)."""
    gap = sign * (a - b)
    se = band(a_se, b_se, fallback=fallback)
    if abs(gap) <= EPS:
        kind = "equal"
    elif se is not None and abs(gap) <= se + EPS:
        kind = "noise"
    else:
        kind = "a" if gap > 0 else "b"
    return {"gap": gap, "se": se, "kind": kind}


def tied_strategies(best: dict | None, per_strategy: list[dict], sign: float, fallback: Any = None) -> list[str]:
    """Strategies whose best trial is level with the best trial: an equal score, or a gap within one SE."""
    if best is None:
        return []
    out = []
    for s in per_strategy:
        if s["best_score"] is None or s["strategy"] == "?":
            continue
        c = compare(best["score"], best.get("score_se"), s["best_score"], s.get("best_se"), sign, fallback=fallback)
        if c["kind"] in ("equal", "noise") or s.get("paired_tie"):
            out.append(s["strategy"])
    return out


def strategy_verdict(best: dict | None, rec_strategy: str | None, per_strategy: list[dict], sign: float, fallback: Any = None) -> dict[str, Any]:
    """Did the recommended strategy win? "held", "held (a tie within noise)" or "did not hold"
    (only when the best trial of the recommended strategy is behind by more than one SE)."""
    out: dict[str, Any] = {"held": None, "verdict": None, "within_noise": False, "paired": False, "gap": None, "se": None,
                           "rec_best_trial": None}
    if best is None or not rec_strategy:
        return out
    others = sorted(s["strategy"] for s in per_strategy if s["strategy"] != rec_strategy and s.get("n_complete"))
    out["compared_with"] = others
    if best["strategy"] == rec_strategy and not others:
        out.update(verdict=NOT_TESTED, rec_best_trial=best["trial"])
        return out
    if best["strategy"] == rec_strategy:
        out.update(held=True, verdict=HELD, gap=0.0, se=band(best.get("score_se"), fallback=fallback), rec_best_trial=best["trial"])
        return out
    rs = next((s for s in per_strategy if s["strategy"] == rec_strategy), None)
    if rs is None or rs["best_score"] is None:
        out.update(held=False, verdict=NOT_HELD)
        return out
    c = compare(best["score"], best.get("score_se"), rs["best_score"], rs.get("best_se"), sign, fallback=fallback)
    # the scores may have been measured on different items (a 40-item hold-out vs cross-validation
    # on all): the run's selection compared them on the items both were scored on
    paired = c["kind"] == "a" and bool(rs.get("paired_tie"))
    held = c["kind"] in ("equal", "noise") or paired
    noise = c["kind"] == "noise" or paired
    out.update(held=held, within_noise=noise, paired=paired, gap=c["gap"], se=c["se"], rec_best_trial=rs["best_trial"],
               verdict=HELD_NOISE if noise else HELD if held else NOT_HELD)
    return out


def strategy_sentence(v: dict[str, Any], best: dict, rec_strategy: str, tied: list[str], per_strategy: list[dict], point: float) -> str | None:
    """The headline sentence of the strategy-table verdict ``v`` (from :func:`strategy_verdict`)."""
    if v.get("verdict") == NOT_TESTED:
        return (f"The strategy table was not tested: every completed trial used the recommended strategy "
                f"({rec_strategy}), so there is nothing to compare it with.")
    if v["held"] is None:
        return None
    winner = best["strategy"]
    others = [x for x in tied if x != winner]
    tie = f" (tied with {', '.join(others)})" if others else ""
    rs = next((s for s in per_strategy if s["strategy"] == rec_strategy), None)
    se_txt = f"one standard error ({fmt_points(v['se'], point)})" if v["se"] is not None else "one standard error"
    if v["held"] and winner == rec_strategy:
        return (f"The strategy table held: the recommended strategy ({rec_strategy}) won{tie}, compared with "
                f"{', '.join(v.get('compared_with') or []) or 'no other strategy'}.")
    if v["held"] and not v["within_noise"]:
        return f"The strategy table held: the recommended strategy ({rec_strategy}) tied with the winner ({winner}) at {fmt_score(best['score'])}."
    if v["held"] and v.get("paired"):
        return (
            f"The strategy table held (a tie within noise): the best {rec_strategy} trial scored "
            f"{fmt_interval(rs['best_score'], rs.get('best_se'))}, {fmt_points(v['gap'], point)} below the winner {winner} "
            f"({fmt_interval(best['score'], best.get('score_se'))}), but the two were scored on different items; compared on "
            f"the items both were scored on, the gap is within its standard error: noise, not evidence against the table."
        )
    if v["held"]:
        return (
            f"The strategy table held (a tie within noise): the best {rec_strategy} trial ({v['rec_best_trial']}) scored "
            f"{fmt_interval(rs['best_score'], rs.get('best_se'))}, {fmt_points(v['gap'], point)} below the winner {winner} "
            f"({fmt_interval(best['score'], best.get('score_se'))}), within {se_txt}: a gap this small is noise, not evidence against the table."
        )
    if rs is None:
        extra = f"; no {rec_strategy} trial was run"
    elif rs["best_score"] is None:
        extra = f"; no {rec_strategy} trial completed"
    else:
        beyond = f", beyond {se_txt}" if v["se"] is not None else ""
        extra = f"; the best {rec_strategy} trial scored {fmt_interval(rs['best_score'], rs.get('best_se'))}, {fmt_points(v['gap'], point)} lower{beyond}"
    return (
        f"The strategy table did not hold here: {winner} won ({fmt_interval(best['score'], best.get('score_se'))}){tie}, "
        f"not the recommended {rec_strategy}{extra}."
    )


def regret_sentence(rec_best: dict, best: dict, regret: float, sign: float, point: float, fallback: Any = None,
                    paired: bool = False) -> str:
    """``paired``: the run's selection found the two tied on the items both were scored on."""
    if regret <= EPS:
        return f"The recommended configuration (trial {rec_best['trial']}) was the best: regret 0."
    c = compare(best["score"], best.get("score_se"), rec_best["score"], rec_best.get("score_se"), sign, fallback=fallback)
    noise = f", within one standard error ({fmt_points(c['se'], point)}): a tie within noise" if c["kind"] == "noise" else ""
    if c["kind"] == "a" and paired:
        noise = ", within one standard error when compared on the items both were scored on: a tie within noise"
    return (
        f"The recommended configuration (trial {rec_best['trial']}) scored {fmt_interval(rec_best['score'], rec_best.get('score_se'))}: "
        f"regret {fmt_points(regret, point)} ({fmt_score(regret)}){noise}."
    )


def baseline_part(b: dict[str, Any], tl: dict | None, metric: str, sign: float, point: float) -> dict[str, Any]:
    """The classical baseline against ``tl``, the best transfer-learning (not classical) trial:
    the baseline beat transfer learning only when it is ahead by more than one standard error."""
    bscore = to_float(b.get("score"))
    bse = to_float(b.get("score_se", b.get("se")))
    c = compare(tl["score"], tl.get("score_se"), bscore, bse, sign) if (tl and bscore is not None) else None
    out = {
        "name": b.get("name"),
        "backbone": b.get("backbone"),
        "metric": b.get("metric") or metric,
        "score": bscore,
        "score_se": bse,
        "seconds": to_float(b.get("seconds")),
        "best_trial": tl["trial"] if tl else None,
        "best_score": tl["score"] if tl else None,
        "best_se": tl.get("score_se") if tl else None,
        "best_seconds": tl.get("seconds") if tl else None,
        "delta": c["gap"] if c else None,
        "gap_se": c["se"] if c else None,
        "beat_transfer": (c["kind"] == "b") if c else (bscore is not None),
        "tie": bool(c and c["kind"] in ("equal", "noise")),
        "within_noise": bool(c and c["kind"] == "noise"),
        "same_metric": str(b.get("metric") or metric) == metric,
    }
    if b.get("error"):
        out["error"] = str(b["error"])
    out["sentence"] = _baseline_sentence(out, b, tl, metric, point)
    return out


def _baseline_sentence(o: dict[str, Any], b: dict[str, Any], tl: dict | None, metric: str, point: float) -> str:
    name = b.get("name") or "classical baseline"
    named = "" if "baseline" in str(name).lower() and len(str(name)) < 24 else f" ({name})"
    bs, ts = fmt_interval(o["score"], o["score_se"]), fmt_interval(o["best_score"], o["best_se"])
    se_txt = f"one standard error ({fmt_points(o['gap_se'], point)})" if o["gap_se"] is not None else None
    if o["score"] is None:
        s = f"The classical baseline{named} has no score" + (f": it failed ({b['error']})." if b.get("error") else " recorded.")
    elif tl is None:
        s = f"The classical baseline{named} scored {bs}; no transfer-learning trial completed, so the baseline is the best model of this run."
    elif o["tie"] and not o["within_noise"]:
        s = (f"Transfer learning and the classical baseline{named} tied at {fmt_score(o['score'])}: on this validation split the "
             f"pretrained backbone brought no gain over the baseline (which took {fmt_seconds(o['seconds'])}).")
    elif o["tie"]:
        s = (f"Transfer learning (trial {tl['trial']}, {ts}) and the classical baseline{named} ({bs}) are a tie within noise: "
             f"a gap of {fmt_points(abs(o['delta']), point)} is within {se_txt}, so neither is measurably better on this validation data.")
    elif o["beat_transfer"]:
        beyond = f", beyond {se_txt}" if se_txt else ""
        s = (f"The classical baseline{named} beat transfer learning: {bs} vs {ts} ({fmt_points(-o['delta'], point)} better{beyond}) "
             f"in {fmt_seconds(o['seconds'])}. On this data a pretrained backbone did not pay off; prefer the baseline or revisit the data.")
    else:
        beyond = f", beyond {se_txt}" if se_txt else ""
        s = f"Transfer learning beat the classical baseline{named} by {fmt_points(o['delta'], point)}{beyond}: {ts} vs {bs}."
    if not o["same_metric"]:
        s += f" Note: the baseline was scored with {b.get('metric')}, the search with {metric}."
    return s
