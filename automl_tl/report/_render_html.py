"""The report's HTML sections, one function per section: each takes (report, PNG bytes per figure)
and returns its escaped HTML, "" for a section that is absent."""

from __future__ import annotations

from typing import Any

from automl_tl.report._fmt import esc, fmt_interval, fmt_score, fmt_seconds
from automl_tl.report._html import html_list, html_table, img, kv_html, state_badge, text_table
from automl_tl.report._rows import (BASELINE_HEAD, CONFUSION_HEAD, GAP_HEAD, IMPORTANCE_HEAD, NO_BASELINE, PER_CLASS_HEAD,
                                    PROBE_HEAD, baseline_rows, baseline_tag, confusion_rows, delivered_rows,
                                    delivered_sentences, gap_rows, importance_rows, lb_columns, new_data_sentences,
                                    pareto_rows, per_class_rows, per_class_sentence, probe_rows, profile_rows,
                                    recommendation_rows, verdict_cards)

__all__ = ["html_title", "html_nav", "html_verdict", "html_delivered", "html_new_data",
           "html_profile", "html_leaderboard", "html_matrix", "html_cost", "html_curves",
           "html_search", "html_baseline", "html_per_class", "html_failures", "html_notes",
           "html_footer"]


def _card_value(v: str) -> str:
    """A card's big number; its "± SE" part smaller, so that it does not wrap the card."""
    head, sep, se = str(v).partition(" ± ")
    return esc(head) + (f'<span class="pm"> ± {esc(se)}</span>' if sep else "")


def html_title(r: dict[str, Any], _pngs: dict[str, bytes]) -> str:
    """The page title: run name, finished or not, run directory, generation time, modality and data source."""
    status = '<span class="badge ok">finished</span>' if r["finished"] else '<span class="badge warn">not finished (running or interrupted)</span>'
    task = r.get("task") or {}
    return (
        f"<h1>Strategy report: {esc(r['run_name'])} {status}</h1>"
        f"<div class=\"sub\">run directory <code>{esc(r['run_dir'])}</code> · generated {esc(r['generated_at'])}"
        + (f" · modality {esc(task.get('modality'))}" if task.get("modality") else "")
        + (f" · source <code>{esc(task.get('source'))}</code>" if task.get("source") else "")
        + "</div>"
    )


_NAV = [
    ("verdict", "Verdict"),
    ("delivered", "Delivered & why"),
    ("new-data", "On new data"),
    ("profile", "Dataset & recommendation"),
    ("leaderboard", "Leaderboard"),
    ("matrix", "Strategy × backbone"),
    ("cost", "Accuracy vs cost"),
    ("curves", "Learning curves"),
    ("search", "Search"),
    ("baseline", "Baseline"),
    ("per-class", "Per class"),
]


def html_nav(r: dict[str, Any], _pngs: dict[str, bytes]) -> str:
    """The navigation bar: a link per section (failures and notes only when there are any)."""
    sections = list(_NAV)
    if r["failures"]["n"]:
        sections.append(("failures", "Failures"))
    if r["warnings"]:
        sections.append(("notes", "Notes"))
    return "<nav>" + "".join(f'<a href="#{a}">{esc(t)}</a>' for a, t in sections) + "</nav>"


def html_verdict(r: dict[str, Any], _pngs: dict[str, bytes]) -> str:
    """The verdict section: the headline cards, then the headline sentences."""
    card_html = "".join(f'<div class="card"><div class="k">{esc(k)}</div><div class="v">{_card_value(v)}</div><div class="n">{esc(n)}</div></div>'
                        for k, v, n in verdict_cards(r))
    return f'<section id="verdict"><h2>Verdict</h2><div class="cards">{card_html}</div>' + html_list(r["headline"], "headline") + "</section>"


def html_delivered(r: dict[str, Any], _pngs: dict[str, bytes]) -> str:
    """The "what was delivered and why" section: the selection, the refit, the stop, the evaluation and the linear probe."""
    sentences = delivered_sentences(r)
    if not sentences and not r.get("probe"):
        return ('<section id="delivered"><h2>What was delivered and why</h2><p class="muted">Not recorded: this run has no '
                'selection, refit, stop or evaluation record in summary.json (an older automl-tl, or no trial completed yet).</p></section>')
    body = html_list(sentences, "headline") if sentences else ""
    rows = delivered_rows(r)
    body += kv_html(rows) if rows else ""
    if r.get("probe"):
        body += "<h3>Linear probe: backbones ranked by logistic regression on frozen features</h3>" + text_table(PROBE_HEAD, probe_rows(r))
    return f'<section id="delivered"><h2>What was delivered and why</h2>{body}</section>'


def html_new_data(r: dict[str, Any], pngs: dict[str, bytes]) -> str:
    """The "on new data" section: the estimate for new items or new sources, and the calibration."""
    nd = r.get("on_new_data")
    if not nd:
        return ('<section id="new-data"><h2>On new data</h2><p class="muted">Not recorded: this run predates the '
                'estimate on new data (summary.json has no on_new_data).</p></section>')
    body = html_list(new_data_sentences(nd), "headline")
    if nd.get("random_vs_grouped"):
        body += "<h3>Random folds against folds that hold out whole sources</h3>" + text_table(GAP_HEAD, gap_rows(nd))
    body += img(pngs.get("reliability"), "reliability diagram of the delivered model's out-of-fold probabilities")
    return f'<section id="new-data"><h2>On new data</h2>{body}</section>'


def html_profile(r: dict[str, Any], _pngs: dict[str, bytes]) -> str:
    """The dataset profile and the recommendation (strategy table) section."""
    key_rows, all_rows = profile_rows(r)
    if all_rows:
        prof = kv_html(key_rows) + (
            f'<details class="small"><summary>all profile fields ({len(all_rows)})</summary>{kv_html(all_rows)}</details>'
            if len(all_rows) > len(key_rows) - sum(1 for k, _ in key_rows if k.startswith("task."))
            else ""
        )
    else:
        prof = (kv_html(key_rows) if key_rows else "") + '<p class="muted">No dataset profile recorded (summary.json missing or without "profile").</p>'
    recd = r["recommendation"]
    rech = kv_html(recommendation_rows(recd)) if recd else '<p class="muted">No recommendation recorded.</p>'
    return (
        '<section id="profile"><h2>Dataset profile &amp; recommendation</h2><div class="grid2">'
        f"<div><h3>Profile</h3>{prof}</div><div><h3>Recommendation (strategy table)</h3>{rech}</div></div></section>"
    )


def _html_lb_row(row: dict[str, Any], cols: list, best: dict[str, Any] | None) -> tuple[list[str], str]:
    """One leaderboard row: its escaped cells and its highlight classes."""
    cls = " ".join(c for c, on in (("best", best is not None and row["trial"] == best["trial"]), ("delivered", row.get("delivered")), ("rec", row["recommended"])) if on)
    cells = []
    for key, _, _, fn in cols:
        if key == "state":
            cells.append(state_badge(row["state"]))
        elif key == "fail_reason" and row["fail_reason"]:
            first = str(row["fail_reason"]).strip().splitlines()[0][:160] if str(row["fail_reason"]).strip() else ""
            cells.append(f'<span class="reason" title="{esc(row["fail_reason"])}">{esc(first)}</span>')
        else:
            cells.append(esc(fn(row)))
    return cells, cls


def html_leaderboard(r: dict[str, Any], _pngs: dict[str, bytes]) -> str:
    """The leaderboard section: every trial, best first."""
    cols = lb_columns(r)
    rows = [_html_lb_row(row, cols, r["best"]) for row in r["leaderboard"]]
    lb_html = html_table([(esc(label), num) for _, label, num, _ in cols], rows, scroll=True) if rows else '<p class="muted">No trials recorded yet.</p>'
    return (
        '<section id="leaderboard"><h2>Leaderboard</h2>'
        f'<p class="small muted">Every trial, best first (complete, then pruned, running, failed). Highlighted yellow: the top score; green: the delivered (selected) trial; red edge: the recommended configuration. Scores are validation {esc(r["metric"])} ± one standard error (a gap smaller than that is noise); time is the trial\'s compute.</p>'
        f"{lb_html}</section>"
    )


def _html_matrix_cell(r: dict[str, Any], c: dict[str, Any] | None, lo: float, hi: float) -> str:
    """One strategy x backbone cell: best score (shaded greener when better), trial counts and compute."""
    if c is None:
        return '<span class="muted">—</span>'
    sc = c["best_score"]
    style = ""
    if sc is not None:
        t = 0.5 if hi == lo else (sc - lo) / (hi - lo)
        if r["direction"] == "minimize":
            t = 1 - t
        style = f' style="display:block;padding:2px 4px;border-radius:4px;background:hsl(130,55%,{96 - 26 * t:.0f}%)"'
    extra = [f"{c['n_trials']} trial{'s' if c['n_trials'] != 1 else ''}"]
    for k, w in (("n_pruned", "pruned"), ("n_failed", "failed"), ("n_running", "running")):
        if c[k]:
            extra.append(f"{c[k]} {w}")
    return (
        f"<span{style}><b>{esc(fmt_interval(sc, c.get('best_se')))}</b>"
        + (f" <span class=\"muted\">#{esc(c['best_trial'])}</span>" if c["best_trial"] is not None else "")
        + f"<br><span class=\"small\">{esc(' · '.join(extra))} · {esc(fmt_seconds(c['seconds']))}</span></span>"
    )


def html_matrix(r: dict[str, Any], _pngs: dict[str, bytes]) -> str:
    """The strategy x backbone section: a cell per pair, the strategy's best score at the end of each row."""
    m = r["matrix"]
    if not m["cells"]:
        return '<section id="matrix"><h2>Strategy × backbone</h2><p class="muted">No trials recorded yet.</p></section>'
    scored = [c["best_score"] for c in m["cells"] if c["best_score"] is not None]
    lo, hi = (min(scored), max(scored)) if scored else (0, 1)
    by = {(c["strategy"], c["backbone"]): c for c in m["cells"]}
    head = [("strategy \\ backbone", False)] + [(esc(b), False) for b in m["backbones"]] + [("best", True)]
    strat = {s["strategy"]: s for s in r["strategies"]}
    mrows = []
    for s in m["strategies"]:
        cells = [_html_matrix_cell(r, by.get((s, b)), lo, hi) for b in m["backbones"]]
        st = strat.get(s, {})
        label = esc(s) + (' <span class="badge warn">recommended</span>' if st.get("recommended") else "") + (' <span class="badge ok">winner</span>' if s == r["winner_strategy"] else "")
        if st.get("description"):  # what the strategy says of itself, built-in or a plugin's
            label += f'<br><span class="small muted">{esc(st["description"])}</span>'
        mrows.append(([label] + cells + [esc(fmt_interval(st.get("best_score"), st.get("best_se")))], ""))
    return (
        '<section id="matrix"><h2>Strategy × backbone</h2>'
        '<p class="small muted">Best score ± one standard error per cell (trial number), then trial counts and the compute spent in that cell. Greener is better.</p>'
        + html_table(head, mrows)
        + "</section>"
    )


def html_cost(r: dict[str, Any], pngs: dict[str, bytes]) -> str:
    """The accuracy vs cost section: the sentence, the Pareto plot and the Pareto-optimal trials."""
    front_rows = pareto_rows(r)
    ft = html_table(
        [("trial", True), ("backbone", False), ("strategy", False), (esc(r["metric"]), True), ("time", True)],
        [([esc(x["trial"]), esc(x["backbone"]), esc(x["strategy"]), esc(fmt_interval(x["score"], x.get("score_se"))), esc(fmt_seconds(x["seconds"]))], "") for x in front_rows],
    ) if front_rows else ""
    return (
        '<section id="cost"><h2>Accuracy vs cost</h2>'
        f"<p>{esc(r['pareto']['sentence'])}</p>"
        + (
            img(pngs["pareto"], "accuracy versus compute per trial, Pareto front marked")
            + '<p class="small muted">Each dot is a trial. The dashed staircase is the Pareto front: no other trial is both cheaper and better than a trial on it. Anything below/right of it is dominated.</p>'
            if pngs.get("pareto")
            else ""
        )
        + (f"<h3>Pareto-optimal trials</h3>{ft}" if ft else "")
        + "</section>"
    )


def html_curves(r: dict[str, Any], pngs: dict[str, bytes]) -> str:
    """The learning curves section: the plot and a row per strategy's best trial."""
    curves = r["learning_curves"]
    if curves:
        ch = img(pngs.get("curves"), "learning curves of the best trial per strategy")
        ch += html_table(
            [("strategy", False), ("trial", True), ("backbone", False), ("state", False), ("epochs", True), ("trial score", True), ("best epoch val", True), ("last epoch val", True)],
            [
                (
                    [esc(c["strategy"]), esc(c["trial"]), esc(c["backbone"]), state_badge(c["state"]), esc(len(c["history"])), esc(fmt_score(c["score"])),
                     esc(fmt_score(max((h["val_score"] for h in c["history"] if h["val_score"] is not None), default=None))),
                     esc(fmt_score(next((h["val_score"] for h in reversed(c["history"]) if h["val_score"] is not None), None)))],
                    "",
                )
                for c in curves
            ],
        )
    else:
        ch = '<p class="muted">No per-epoch history recorded in the study for this trial.</p>'
    return f'<section id="curves"><h2>Learning curves (best trial per strategy)</h2>{ch}</section>'


def html_search(r: dict[str, Any], pngs: dict[str, bytes]) -> str:
    """The search section: the optimisation history and the hyperparameter importances."""
    imp = r["importances"]
    if imp.get("available"):
        imph = img(pngs.get("importances"), "hyperparameter importances") + text_table(IMPORTANCE_HEAD, importance_rows(imp))
    else:
        imph = f'<p class="muted">Hyperparameter importances not available: {esc(imp.get("reason"))}.</p>'
    hist = img(pngs.get("history"), "optimisation history") or '<p class="muted">No scored trial yet.</p>'
    return f'<section id="search"><h2>Search</h2><div class="grid2"><div><h3>Optimisation history</h3>{hist}</div><div><h3>Hyperparameter importances</h3>{imph}</div></div></section>'


def html_baseline(r: dict[str, Any], _pngs: dict[str, bytes]) -> str:
    """The classical baseline section: its verdict badge, its sentence and its table."""
    b = r["baseline"]
    if not b:
        return f'<section id="baseline"><h2>Classical baseline</h2><p class="muted">{esc(NO_BASELINE)}</p></section>'
    cls = "bad" if b.get("beat_transfer") else "warn" if b.get("tie") or b.get("score") is None else "ok"
    bt = text_table(BASELINE_HEAD, baseline_rows(r))
    return f'<section id="baseline"><h2>Classical baseline <span class="badge {cls}">{esc(baseline_tag(b))}</span></h2><p>{esc(b["sentence"])}</p>{bt}</section>'


def html_per_class(r: dict[str, Any], pngs: dict[str, bytes]) -> str:
    """The per-class section: the summary, the confusion matrix, the per-class table and the top confusions."""
    pc = r["per_class"]
    if not pc.get("available"):
        return f'<section id="per-class"><h2>Per-class results</h2><p class="muted">Not available: {esc(pc.get("reason"))}</p></section>'
    t = text_table(PER_CLASS_HEAD, per_class_rows(pc), scroll=len(pc["classes"]) > 15)
    conf = "<h3>Most frequent confusions</h3>" + text_table(CONFUSION_HEAD, confusion_rows(pc)) if pc["top_confusions"] else ""
    cm_img = img(pngs.get("confusion"), "confusion matrix on the validation split")
    if not cm_img and len(pc["labels"]) > 60:
        cm_img = f'<p class="muted">{len(pc["labels"])} classes: the confusion matrix is too large to draw; see the table and report.json.</p>'
    probs = ""
    if pc.get("mean_probability_correct") is not None or pc.get("mean_probability_wrong") is not None:
        probs = f" Mean confidence when right {fmt_score(pc.get('mean_probability_correct'))}, when wrong {fmt_score(pc.get('mean_probability_wrong'))}."
    return (
        '<section id="per-class"><h2>Per-class results of the final model (validation split)</h2>'
        f"<p>{esc(per_class_sentence(pc))}{esc(probs)}"
        + (f" Weakest class by recall: {esc(pc['worst_class'])}." if pc.get("worst_class") is not None else "")
        + f'</p><div class="grid2"><div>{cm_img}</div><div>{t}{conf}</div></div></section>'
    )


def html_failures(r: dict[str, Any], _pngs: dict[str, bytes]) -> str:
    """The failures section (empty when no trial failed): the reasons, then the failed trials."""
    f = r["failures"]
    if not f["n"]:
        return ""
    return (
        f'<section id="failures"><h2>Failures ({esc(f["n"])})</h2>'
        + html_table([("reason", False), ("trials", True)], [([f'<span class="reason">{esc(x["reason"])}</span>', esc(x["count"])], "") for x in f["reasons"]])
        + "<h3>Failed trials</h3>"
        + html_table(
            [("trial", True), ("backbone", False), ("strategy", False), ("reason", False)],
            [([esc(x["trial"]), esc(x["backbone"]), esc(x["strategy"]), f'<span class="reason">{esc(x["reason"] or "no reason recorded")}</span>'], "") for x in f["trials"]],
            scroll=len(f["trials"]) > 15,
        )
        + "</section>"
    )


def html_notes(r: dict[str, Any], _pngs: dict[str, bytes]) -> str:
    """The notes section (empty when there are no warnings)."""
    return '<section id="notes"><h2>Notes</h2>' + html_list(r["warnings"]) + "</section>" if r["warnings"] else ""


def html_footer(r: dict[str, Any], _pngs: dict[str, bytes]) -> str:
    """The footer: where the numbers are, and which run files were not present."""
    missing = [k for k, v in r["files"].items() if not v and not (k == "baseline.json" and r["baseline"])]  # newer runs: in summary.json
    return (
        '<p class="small muted">automl-tl report · all numbers are in report.json next to this file'
        + (f" · files not present: {esc(', '.join(missing))}" if missing else "")
        + "</p>"
    )
