"""The report's Markdown sections, one function per section: each takes (report, image path per
figure) and returns its lines, each section ending with a blank one (none for an absent section)."""

from __future__ import annotations

from typing import Any

from automl_tl.report._fmt import fmt_interval, fmt_seconds, fmt_value, md
from automl_tl.report._rows import (BASELINE_HEAD, CONFUSION_HEAD, GAP_HEAD, IMPORTANCE_HEAD, NO_BASELINE, PER_CLASS_HEAD,
                                    PROBE_HEAD, baseline_rows, confusion_rows, delivered_rows, delivered_sentences,
                                    gap_rows, importance_rows, lb_columns, new_data_sentences, pareto_rows, per_class_rows,
                                    per_class_sentence, probe_rows, profile_rows, recommendation_rows, short_text)

__all__ = ["md_table", "md_text_table", "md_title", "md_verdict", "md_delivered", "md_new_data",
           "md_profile", "md_leaderboard", "md_matrix", "md_cost", "md_curves", "md_search",
           "md_baseline", "md_per_class", "md_failures", "md_notes"]


def md_table(headers: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(md(h) for h in headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(md(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def md_text_table(head: list[tuple[str, bool]], rows: list[list[str]]) -> str:
    """A Markdown table with the headers the HTML tables use (the numeric flags dropped)."""
    return md_table([h for h, _ in head], rows)


def _md_list(items: list[Any]) -> list[str]:
    """A bulleted list of escaped sentences."""
    return [f"- {md(s)}" for s in items]


def _md_image(images: dict[str, str], name: str, alt: str) -> list[str]:
    """A figure's image line (and a blank one), or nothing when the figure has no file."""
    return [f"![{alt}]({images[name]})", ""] if name in images else []


def md_title(r: dict[str, Any], _images: dict[str, str]) -> list[str]:
    """The title: run name, run directory, generation time, finished or not."""
    status = "finished" if r["finished"] else "**not finished** (running or interrupted)"
    return [f"# Strategy report: {md(r['run_name'])}", "", f"Run directory {md(r['run_dir'])} · generated {md(r['generated_at'])} · " + status, ""]


def md_verdict(r: dict[str, Any], _images: dict[str, str]) -> list[str]:
    """The verdict section: the headline sentences."""
    return ["## Verdict", "", *_md_list(r["headline"]), ""]


def md_delivered(r: dict[str, Any], _images: dict[str, str]) -> list[str]:
    """The "what was delivered and why" section: the selection, the refit, the stop, the evaluation and the linear probe."""
    L = ["## What was delivered and why", ""]
    sentences = delivered_sentences(r)
    if not sentences and not r.get("probe"):
        return L + ["_Not recorded: this run has no selection, refit, stop or evaluation record in summary.json._", ""]
    L += _md_list(sentences) + [""]
    rows = delivered_rows(r)
    if rows:
        L += [md_table(["delivered", "value"], [[k, fmt_value(v)] for k, v in rows]), ""]
    if r.get("probe"):
        L += ["### Linear probe (logistic regression on frozen features)", "", md_text_table(PROBE_HEAD, probe_rows(r)), ""]
    return L


def md_new_data(r: dict[str, Any], images: dict[str, str]) -> list[str]:
    """The "on new data" section: the estimate for new items or new sources, and the calibration."""
    L = ["## On new data", ""]
    nd = r.get("on_new_data")
    if not nd:
        return L + ["_Not recorded: this run predates the estimate on new data._", ""]
    L += _md_list(new_data_sentences(nd)) + [""]
    if nd.get("random_vs_grouped"):
        L += [md_text_table(GAP_HEAD, gap_rows(nd)), ""]
    return L + _md_image(images, "reliability", "reliability diagram")


def md_profile(r: dict[str, Any], _images: dict[str, str]) -> list[str]:
    """The dataset profile and recommendation section."""
    L = ["## Dataset profile and recommendation", ""]
    prof, all_prof = profile_rows(r)
    L.append(md_table(["profile", "value"], [[k, short_text(v)[:300]] for k, v in prof]) if prof else "_No dataset profile recorded._")
    if len(all_prof) > len(prof):
        L += ["", "_All profile fields are in report.json (`profile`)._"]
    L.append("")
    recd = r["recommendation"]
    if recd:
        rows = [[k, short_text(v) if k.startswith("params.") else fmt_value(v)] for k, v in recommendation_rows(recd)]
        L.append(md_table(["recommendation", "value"], rows))
    else:
        L.append("_No recommendation recorded._")
    return L + [""]


def md_leaderboard(r: dict[str, Any], _images: dict[str, str]) -> list[str]:
    """The leaderboard section: every trial, best first."""
    cols = lb_columns(r)
    if not r["leaderboard"]:
        return ["## Leaderboard", "", "_No trials recorded yet._", ""]
    return ["## Leaderboard", "", md_table([label for _, label, _, _ in cols], [[fn(row) for _, _, _, fn in cols] for row in r["leaderboard"]]), ""]


def md_matrix(r: dict[str, Any], _images: dict[str, str]) -> list[str]:
    """The strategy x backbone section."""
    m = r["matrix"]
    if not m["cells"]:
        return ["## Strategy × backbone", "", "_No trials recorded yet._", ""]
    by = {(c["strategy"], c["backbone"]): c for c in m["cells"]}
    rows = []
    for s in m["strategies"]:
        row = [s + (" (recommended)" if s == r["recommended"]["strategy"] else "") + (" (winner)" if s == r["winner_strategy"] else "")]
        for b in m["backbones"]:
            c = by.get((s, b))
            row.append(
                "—" if c is None else f"{fmt_interval(c['best_score'], c.get('best_se'))}" + (f" (#{c['best_trial']})" if c["best_trial"] is not None else "")
                + f"; {c['n_trials']} trial{'s' if c['n_trials'] != 1 else ''}; {fmt_seconds(c['seconds'])}"
            )
        rows.append(row)
    return ["## Strategy × backbone", "", md_table(["strategy / backbone"] + m["backbones"], rows), ""]


def md_cost(r: dict[str, Any], images: dict[str, str]) -> list[str]:
    """The accuracy vs cost section: the sentence, the Pareto plot and the Pareto-optimal trials."""
    L = ["## Accuracy vs cost", "", md(r["pareto"]["sentence"]), ""] + _md_image(images, "pareto", "accuracy vs cost")
    front = pareto_rows(r)
    if front:
        L += [md_table(["Pareto trial", "backbone", "strategy", r["metric"], "time"], [[str(x["trial"]), fmt_value(x["backbone"]), fmt_value(x["strategy"]), fmt_interval(x["score"], x.get("score_se")), fmt_seconds(x["seconds"])] for x in front]), ""]
    return L


def md_curves(r: dict[str, Any], images: dict[str, str]) -> list[str]:
    """The learning curves section: the plot and a row per strategy's best trial."""
    L = ["## Learning curves", ""] + _md_image(images, "curves", "learning curves")
    if r["learning_curves"]:
        L.append(md_table(["strategy", "trial", "backbone", "state", "epochs"], [[c["strategy"], str(c["trial"]), fmt_value(c["backbone"]), c["state"], str(len(c["history"]))] for c in r["learning_curves"]]))
    else:
        L.append("_No per-epoch history recorded._")
    return L + [""]


def md_search(r: dict[str, Any], images: dict[str, str]) -> list[str]:
    """The search section: the optimisation history and the hyperparameter importances."""
    L = ["## Search", ""] + _md_image(images, "history", "optimisation history")
    imp = r["importances"]
    if imp.get("available"):
        L += _md_image(images, "importances", "hyperparameter importances") + [md_text_table(IMPORTANCE_HEAD, importance_rows(imp))]
    else:
        L.append(f"_Hyperparameter importances not available: {md(imp.get('reason'))}._")
    return L + [""]


def md_baseline(r: dict[str, Any], _images: dict[str, str]) -> list[str]:
    """The classical baseline section: its sentence and its table."""
    b = r["baseline"]
    if not b:
        return ["## Classical baseline", "", f"_{md(NO_BASELINE)}_", ""]
    return ["## Classical baseline", "", md(b["sentence"]), "", md_text_table(BASELINE_HEAD, baseline_rows(r)), ""]


def md_per_class(r: dict[str, Any], images: dict[str, str]) -> list[str]:
    """The per-class section: the summary, the confusion matrix, the per-class table and the top confusions."""
    L = ["## Per-class results (validation split)", ""]
    pc = r["per_class"]
    if not pc.get("available"):
        return L + [f"_Not available: {md(pc.get('reason'))}_", ""]
    L += [md(per_class_sentence(pc)), ""] + _md_image(images, "confusion", "confusion matrix")
    L.append(md_text_table(PER_CLASS_HEAD, per_class_rows(pc)))
    if pc["top_confusions"]:
        L += ["", md_text_table(CONFUSION_HEAD, confusion_rows(pc))]
    return L + [""]


def md_failures(r: dict[str, Any], _images: dict[str, str]) -> list[str]:
    """The failures section (nothing when no trial failed): the failed trials and their reasons."""
    f = r["failures"]
    if not f["n"]:
        return []
    rows = [[str(x["trial"]), fmt_value(x["backbone"]), fmt_value(x["strategy"]), x["reason"] or "no reason recorded"] for x in f["trials"]]
    return [f"## Failures ({f['n']})", "", md_table(["trial", "backbone", "strategy", "reason"], rows), ""]


def md_notes(r: dict[str, Any], _images: dict[str, str]) -> list[str]:
    """The notes section (nothing when there are no warnings)."""
    return ["## Notes", "", *_md_list(r["warnings"]), ""] if r["warnings"] else []
