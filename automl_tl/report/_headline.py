"""The headline of a report: the verdict sentences at its top, in order."""

from __future__ import annotations

from typing import Any

from automl_tl.report import _noise
from automl_tl.report._context import RunContext, eval_label
from automl_tl.report._fmt import describe_config, fmt_interval, fmt_seconds

__all__ = ["headline_sentences"]


def _top_reasons(failures: dict[str, Any]) -> str:
    """The three most frequent failure reasons, for a headline sentence."""
    return "; ".join(f"{r['reason']} (×{r['count']})" for r in failures["reasons"][:3])


def _progress_sentence(run: RunContext) -> str:
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


def _recommendation_sentence(run: RunContext, rec_strategy: str | None) -> str:
    """The headline's sentence on what the strategy table recommended, and why."""
    rec = run.rec
    if not rec:
        return "No recommendation recorded in summary.json."
    rule = f" (rule {rec.get('rule')})" if rec.get("rule") else ""
    reason = f": {str(rec.get('reason')).rstrip()}" if rec.get("reason") else ""
    if not reason.endswith((".", "!", "?")):
        reason += "."
    return f"The strategy table recommended {rec_strategy or '?'}{rule}{reason}"


def _best_sentences(run: RunContext, delivered: dict | None, evaluation: dict | None, failures: dict[str, Any]) -> list[str]:
    """The headline's sentences on the best trial (and the delivered one), or on why there is none."""
    best, n = run.best, len(run.trials)
    if best:
        scored_on = eval_label(best, (evaluation or {}).get("k"))
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


def _regret_sentences(run: RunContext, rec: dict[str, Any], strat: dict[str, Any]) -> list[str | None]:
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


def headline_sentences(run: RunContext, rec: dict[str, Any], strat: dict[str, Any], sections: dict[str, Any]) -> list[str | None]:
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
