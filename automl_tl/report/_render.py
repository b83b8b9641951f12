"""HTML (one self-contained file) and Markdown renderings of a report dict. Everything is escaped."""

from __future__ import annotations

import base64
from typing import Any, Callable

from automl_tl.report._fmt import esc, fmt_interval, fmt_points, fmt_score, fmt_seconds, fmt_value, md

__all__ = ["render_html", "render_markdown", "CSS", "CSP", "page", "flatten"]

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
CSS = """
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 -apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:#1d2330;background:#f5f6f8}
main{max-width:1300px;margin:0 auto;padding:18px 22px 40px}
h1{font-size:22px;margin:6px 0 2px}h2{font-size:18px;margin:0 0 10px;padding-bottom:4px;border-bottom:1px solid #e2e5ea}
h3{font-size:15px;margin:14px 0 6px}
.sub{color:#5b6475;font-size:12.5px;word-break:break-all}
section{background:#fff;border:1px solid #e2e5ea;border-radius:8px;padding:14px 18px;margin:14px 0}
nav{font-size:13px;margin:8px 0}nav a{margin-right:12px;color:#2457c5;text-decoration:none}
.badge{display:inline-block;padding:2px 8px;border-radius:10px;font-size:12px;font-weight:600;vertical-align:middle}
.ok{background:#dcf3e3;color:#17612f}.warn{background:#fff1d6;color:#7a4d00}.bad{background:#fde0e0;color:#8f1d1d}.muted{color:#6b7383}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:10px 0}
.card{flex:1 1 160px;border:1px solid #e2e5ea;border-radius:8px;padding:8px 12px;background:#fafbfc}
.card .k{font-size:11.5px;color:#5b6475;text-transform:uppercase;letter-spacing:.03em}.card .v{font-size:20px;font-weight:600}
.card .n{font-size:12px;color:#5b6475}.card .pm{font-size:13px;font-weight:400;color:#5b6475;white-space:nowrap}
ul.headline{margin:6px 0;padding-left:20px}ul.headline li{margin:3px 0}
table{border-collapse:collapse;font-size:12px;width:100%}
th,td{border-bottom:1px solid #eceef2;padding:4px 6px;text-align:left;vertical-align:top}
th{background:#f0f2f5;position:sticky;top:0;z-index:1;font-weight:600}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr.best td{background:#fff8d6}tr.delivered td{background:#e3f4e8}tr.rec td:first-child{box-shadow:inset 3px 0 #d62728}
.scroll{max-height:460px;overflow:auto;border:1px solid #eceef2;border-radius:6px}
.wide{overflow-x:auto}
.kv{width:auto;min-width:50%}.kv th{position:static;width:230px}
img.plot{max-width:100%;height:auto;display:block;margin:8px 0;border:1px solid #eceef2;border-radius:6px}
.grid2{display:grid;grid-template-columns:1fr 1fr;gap:14px}@media (max-width:1000px){.grid2{grid-template-columns:1fr}}
.reason{color:#8f1d1d;display:inline-block;min-width:160px;max-width:300px;word-break:break-word}
.small{font-size:12px}
details summary{cursor:pointer;color:#2457c5}details{margin-top:6px}
code{background:#f0f2f5;padding:1px 4px;border-radius:4px;font-size:12.5px;word-break:break-all}
"""


def flatten(d: Any, prefix: str = "", out: list | None = None, depth: int = 3) -> list[tuple[str, Any]]:
    out = [] if out is None else out
    if isinstance(d, dict):
        for k, v in d.items():
            key = f"{prefix}.{k}" if prefix else str(k)
            if isinstance(v, dict) and v and len(v) <= 12 and depth > 1:
                flatten(v, key, out, depth - 1)
            else:
                out.append((key, v))
    else:
        out.append((prefix or "value", d))
    return out


# the profile rows that explain the recommendation; everything else goes under "all profile fields"
_PROFILE_KEYS = (
    "modality", "n_samples", "n_classes", "size_category", "class_counts", "class_counts.*", "imbalance_ratio", "median_per_class",
    "backbones.*.similarity", "backbones.*.similar", "backbones.*.fine_tunable", "similarity", "similarity_threshold",
    "skipped.count",
)


def profile_rows(report: dict[str, Any]) -> tuple[list[tuple[str, Any]], list[tuple[str, Any]]]:
    """(key rows, all rows) of the dataset profile, with the task's split sizes and metric first."""
    from fnmatch import fnmatchcase

    task = report.get("task") or {}
    head = [(f"task.{k}", task[k]) for k in ("metric", "n_train", "n_val", "seed") if k in task]
    rows = flatten(report["profile"]) if report["profile"] else []
    key_rows = [(k, v) for k, v in rows if any(fnmatchcase(k, pat) for pat in _PROFILE_KEYS)]
    if not key_rows:
        key_rows = [(k, v) for k, v in rows if len(_short(v)) <= 120][:25]
    return head + key_rows, rows


def _kv_html(rows: list[tuple[str, Any]]) -> str:
    out = []
    for k, v in rows:
        text = _short(v)
        if len(text) > 400:
            cell = f"<details><summary>{esc(text[:160])}…</summary>{esc(text)}</details>"
        else:
            cell = esc(text)
        out.append(f"<tr><th>{esc(k)}</th><td>{cell}</td></tr>")
    return '<table class="kv">' + "".join(out) + "</table>"


def _short(v: Any, limit: int = 12) -> str:
    if isinstance(v, list):
        head = ", ".join(fmt_value(x) for x in v[:limit])
        return head + (f", … (+{len(v) - limit} more)" if len(v) > limit else "")
    if isinstance(v, dict):
        return "{}" if not v else ", ".join(f"{k}={fmt_value(x)}" for k, x in list(v.items())[:limit])
    return fmt_value(v)


def page(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        "<meta name=\"referrer\" content=\"no-referrer\">"
        f"<title>{esc(title)}</title><style>{CSS}</style></head>\n<body><main>\n{body}\n</main></body></html>\n"
    )


def img(png: bytes | None, alt: str) -> str:
    if not png:
        return ""
    return f'<img class="plot" alt="{esc(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">'


def _table(headers: list[tuple[str, bool]], rows: list[tuple[list[str], str]], scroll: bool = False) -> str:
    """headers: (escaped label, numeric); rows: (already-escaped cells, tr class)."""
    h = "".join(f'<th class="num">{x}</th>' if num else f"<th>{x}</th>" for x, num in headers)
    body = []
    for cells, cls in rows:
        tds = "".join(f'<td class="num">{c}</td>' if headers[i][1] else f"<td>{c}</td>" for i, c in enumerate(cells))
        body.append(f'<tr class="{cls}">{tds}</tr>' if cls else f"<tr>{tds}</tr>")
    t = f"<table><thead><tr>{h}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    return f'<div class="scroll">{t}</div>' if scroll else f'<div class="wide">{t}</div>'


def _lb_columns(report: dict[str, Any]) -> list[tuple[str, str, bool, Callable[[dict], str]]]:
    lb = report["leaderboard"]
    cols: list[tuple[str, str, bool, Callable[[dict], str]]] = [
        ("rank", "#", True, lambda r: "" if r["rank"] is None else str(r["rank"])),
        ("trial", "trial", True, lambda r: str(r["trial"])),
        ("state", "state", False, lambda r: r["state"]),
        ("backbone", "backbone", False, lambda r: fmt_value(r["backbone"])),
        ("strategy", "strategy", False, lambda r: fmt_value(r["strategy"])),
        ("unfreeze_blocks", "unfreeze", True, lambda r: fmt_value(r["unfreeze_blocks"])),
        ("head_lr", "head lr", True, lambda r: fmt_value(r["head_lr"])),
        ("backbone_lr", "backbone lr", True, lambda r: fmt_value(r["backbone_lr"])),
        ("head_units", "head units", True, lambda r: fmt_value(r["head_units"])),
        ("dropout", "dropout", True, lambda r: fmt_value(r["dropout"])),
        ("head_epochs", "epochs head/ft", True, lambda r: f"{fmt_value(r['head_epochs'])}/{fmt_value(r['ft_epochs'])}"),
        ("augment", "augment", False, lambda r: fmt_value(r["augment"])),
        ("options", "options", False, lambda r: fmt_value(r["options"])),
        ("score", f"{report['metric']} ± SE" if any(r.get("score_se") is not None for r in lb) else report["metric"], True, lambda r: fmt_interval(r["score"], r.get("score_se"))),
        ("scored_on", "scored on", False, lambda r: r.get("scored_on") or ""),
        ("seconds", "time", True, lambda r: fmt_seconds(r["seconds"])),
        ("flags", "flags", False, _lb_flags),
        ("fail_reason", "failed reason", False, lambda r: fmt_value(r["fail_reason"]) if r["fail_reason"] else ""),
    ]
    keep = []
    for key, label, num, fn in cols:
        if key in ("options", "augment", "unfreeze_blocks", "backbone_lr", "head_units", "dropout", "head_epochs", "fail_reason", "scored_on"):
            if all(r.get(key) in (None, "", "{}", "[]", "null") for r in lb) and not (key == "head_epochs" and any(r.get("ft_epochs") is not None for r in lb)):
                continue
        keep.append((key, label, num, fn))
    return keep


NO_BASELINE = 'No classical baseline in this run (neither summary.json "baseline" nor baseline.json), so there is nothing to compare with.'
_BASELINE_HEAD = [("model", False), ("metric", False), ("score ± SE", True), ("time", True)]


def _baseline_tag(b: dict[str, Any]) -> str:
    if b.get("beat_transfer"):
        return "baseline beat transfer learning"
    if b.get("within_noise"):
        return "tie within noise"
    if b.get("tie"):
        return "tie"
    return "no baseline score" if b.get("score") is None else "transfer learning won"


def _baseline_rows(r: dict[str, Any]) -> list[list[str]]:
    """The baseline against the best transfer-learning trial, as plain text cells."""
    b = r["baseline"]
    tl = f"best transfer: trial {b['best_trial']}" if b.get("best_trial") is not None else "best transfer: none"
    return [
        [f"baseline: {b.get('name') or '?'}", fmt_value(b.get("metric")), fmt_interval(b.get("score"), b.get("score_se")), fmt_seconds(b.get("seconds"))],
        [tl, r["metric"], fmt_interval(b.get("best_score"), b.get("best_se")), fmt_seconds(b.get("best_seconds"))],
    ]


def _verdict_cards(r: dict[str, Any]) -> list[tuple[str, str, str]]:
    best, rec, b, d = r["best"], r["recommended"], r["baseline"], r.get("delivered")
    verdict = (r.get("strategy_verdict") or {}).get("verdict") or {True: "held", False: "did not hold", None: "—"}[r["strategy_held"]]
    cards = [
        ("best " + r["metric"], fmt_interval(best["score"], best.get("score_se")) if best else "—", f"trial {best['trial']} · {fmt_value(best['strategy'])}" if best else "no complete trial"),
        ("recommended config", fmt_interval(rec["score"], rec.get("score_se")), f"trial {rec['best_trial']} · {fmt_value(rec['strategy'])}" if rec["best_trial"] is not None else fmt_value(rec["strategy"])),
        ("regret", fmt_points(r["regret"], r["point"]) if r["regret"] is not None else "—", "best − recommended"),
        ("strategy table", verdict, f"winner: {fmt_value(r['winner_strategy'])}"),
        ("baseline", fmt_interval((b or {}).get("score"), (b or {}).get("score_se")), fmt_value(b.get("name")) if b else "none recorded"),
    ]
    if d:
        refit = "refitted" if d["refit"] else "not refitted" if d["refit"] is False else "not delivered yet"
        cards.append(("delivered", f"trial {d['trial']}", f"{'top score' if d['is_top'] else 'one-SE rule'} · {refit}"))
    cards.append(("compute", fmt_seconds(r["total_seconds"]), f"{r['counts']['total']} trials"))
    return cards


def _card_value(v: str) -> str:
    """A card's big number; its "± SE" part smaller, so that it does not wrap the card."""
    head, sep, se = str(v).partition(" ± ")
    return esc(head) + (f'<span class="pm"> ± {esc(se)}</span>' if sep else "")


def _delivered_rows(r: dict[str, Any]) -> list[tuple[str, Any]]:
    d, st, ev = r.get("delivered") or {}, r.get("stop") or {}, r.get("evaluation") or {}
    rows: list[tuple[str, Any]] = []
    if d:
        rows += [
            ("delivered trial", f"{d['trial']} ({fmt_value(d['backbone'])}, {fmt_value(d['strategy'])}): {fmt_interval(d['score'], d['se'])}"),
            ("top-scoring trial", f"{fmt_value(d['top_trial'])}: {fmt_interval(d['top_score'], d['top_se'])}"),
            ("within one SE of the top", ", ".join(str(x) for x in d["tied"]) or "—"),
            ("selection rule", d["rule"] or "—"),
            ("why", d["selection_reason"] or "—"),
            ("refit on all labelled data", {True: "yes", False: "no", None: "not delivered yet"}[d["refit"]]),
            ("trained on", f"{d['n_train']} items" if d["n_train"] is not None else "—"),
            ("refit", d["refit_reason"] or "—"),
            ("model kind", d["kind"] or "—"),
        ]
    if st:
        rows += [("stopped", st["label"]), ("stop reason", st["reason"] or "—")]
        if st["seconds_saved"] is not None or st["trials_saved"] is not None:
            rows.append(("saved", f"{fmt_seconds(st['seconds_saved'])}, {fmt_value(st['trials_saved'])} trials"))
    if ev:
        scheme = f"{ev['k']}-fold cross-validation (cheap trials)" if ev["kind"] == "cv" else "hold-out"
        rows += [("evaluation", scheme), ("train / validation items", f"{fmt_value(ev['n_train'])} / {fmt_value(ev['n_val'])}")]
    return rows


_PROBE_HEAD = [("#", True), ("backbone", False), ("options", False), ("score ± SE", True), ("C", True), ("features", True),
               ("LogME", True), ("kNN", True), ("classical", False), ("time", True)]


def _probe_rows(r: dict[str, Any]) -> list[list[str]]:
    return [
        [fmt_value(p["rank"]) if p["rank"] else "", fmt_value(p["backbone"]), p["options"],
         fmt_interval(p["score"], p["se"]) if p["skipped"] is None else f"skipped: {p['skipped']}",
         fmt_value(p["C"]), fmt_value(p.get("dim")), "" if p.get("logme") is None else f"{p['logme']:.3f}",
         fmt_value(p.get("knn")), "yes" if p["classical"] else "", fmt_seconds(p["seconds"])]
        for p in r.get("probe") or []
    ]


def _delivered_sentences(r: dict[str, Any]) -> list[str]:
    out = list((r.get("delivered") or {}).get("sentences") or [])
    out += [x["sentence"] for x in (r.get("stop"), r.get("evaluation")) if x]
    if r.get("transferability"):
        out.append(r["transferability"])
    return out


# --- what the HTML and Markdown sections share: headers and plain-text rows -----------------------

_PER_CLASS_HEAD = [("class", False), ("precision", True), ("recall", True), ("F1", True), ("support", True)]
_CONFUSION_HEAD = [("true", False), ("predicted as", False), ("count", True)]
_IMPORTANCE_HEAD = [("parameter", False), ("importance", True)]


def _recommendation_rows(recd: dict[str, Any]) -> list[tuple[str, Any]]:
    """The recommendation section's rows: strategy, rule, reason, then the recommended parameters."""
    rows = [("strategy", recd.get("strategy")), ("rule", recd.get("rule")), ("reason", recd.get("reason"))]
    return rows + [(f"params.{k}", v) for k, v in (recd.get("params") or {}).items()]


def _pareto_rows(r: dict[str, Any]) -> list[dict[str, Any]]:
    """The accuracy/cost section's Pareto-optimal trials, cheapest first."""
    return sorted((x for x in r["leaderboard"] if x["pareto"]), key=lambda x: x["seconds"] or 0)


def _importance_rows(imp: dict[str, Any]) -> list[list[str]]:
    """The search section's hyperparameter importances, largest first."""
    return [[k, f"{v:.3f}"] for k, v in sorted(imp["values"].items(), key=lambda kv: -kv[1])]


def _per_class_sentence(pc: dict[str, Any]) -> str:
    """The per-class section's summary sentence: items, accuracy, balanced accuracy, macro F1."""
    return (f"{pc['n']} validation items, accuracy {fmt_score(pc['accuracy'])}, balanced accuracy {fmt_score(pc['balanced_accuracy'])}, "
            f"macro F1 {fmt_score(pc['macro']['f1'])}.")


def _per_class_rows(pc: dict[str, Any]) -> list[list[str]]:
    """The per-class section's table: precision, recall, F1 and support per class."""
    return [[c["label"], fmt_score(c["precision"]), fmt_score(c["recall"]), fmt_score(c["f1"]), str(c["support"])] for c in pc["classes"]]


def _confusion_rows(pc: dict[str, Any]) -> list[list[str]]:
    """The per-class section's most frequent confusions."""
    return [[c["true"], c["predicted"], str(c["count"])] for c in pc["top_confusions"]]


# --- HTML: one function per section ---------------------------------------------------------------

def _html_list(items: list[Any], cls: str | None = None) -> str:
    """A bulleted list of escaped sentences."""
    return (f'<ul class="{cls}">' if cls else "<ul>") + "".join(f"<li>{esc(s)}</li>" for s in items) + "</ul>"


def _text_table(head: list[tuple[str, bool]], rows: list[list[str]], scroll: bool = False) -> str:
    """An HTML table of plain-text headers and cells (all escaped here)."""
    return _table([(esc(h), num) for h, num in head], [([esc(c) for c in row], "") for row in rows], scroll=scroll)


def _delivered_html(r: dict[str, Any], _pngs: dict[str, bytes]) -> str:
    """The "what was delivered and why" section: the selection, the refit, the stop, the evaluation and the linear probe."""
    sentences = _delivered_sentences(r)
    if not sentences and not r.get("probe"):
        return ('<section id="delivered"><h2>What was delivered and why</h2><p class="muted">Not recorded: this run has no '
                'selection, refit, stop or evaluation record in summary.json (an older automl-tl, or no trial completed yet).</p></section>')
    body = _html_list(sentences, "headline") if sentences else ""
    rows = _delivered_rows(r)
    body += _kv_html(rows) if rows else ""
    if r.get("probe"):
        body += "<h3>Linear probe: backbones ranked by logistic regression on frozen features</h3>" + _text_table(_PROBE_HEAD, _probe_rows(r))
    return f'<section id="delivered"><h2>What was delivered and why</h2>{body}</section>'


_GAP_HEAD = [("backbone", False), ("random folds", True), ("grouped folds (new sources)", True), ("gap", True)]


def _new_data_sentences(nd: dict[str, Any]) -> list[str]:
    """What to expect on new data: the estimate, the unit that is new, the grouping, the gap, the calibration."""
    out = [nd.get("sentence", "").capitalize() + "."] if nd.get("sentence") else []
    g = nd.get("grouping") or {}
    if g.get("confounded"):
        out.append(f"Seen from one {nd.get('unit') if nd.get('grouped') else 'source'} only: class(es) "
                   f"{', '.join(map(str, g['confounded'][:8]))}; how they are recognised from a new one is not measured.")
    if nd.get("gap_sentence"):
        out.append(nd["gap_sentence"][:1].upper() + nd["gap_sentence"][1:] + ".")
    cal = nd.get("calibration")
    if cal and cal.get("ece_before") is not None:
        if cal.get("applied"):
            out.append(f"Probabilities calibrated by temperature scaling (T = {cal['temperature']:.3g}): expected "
                       f"calibration error {cal['ece_before']:.3f} before, {cal['ece_after']:.3f} after, on "
                       f"{cal.get('n_items')} out-of-fold items.")
        else:
            out.append(f"Probabilities not rescaled ({cal.get('reason', '')}); expected calibration error "
                       f"{cal['ece_before']:.3f} on {cal.get('n_items')} out-of-fold items.")
    return out


def _gap_rows(nd: dict[str, Any]) -> list[list[str]]:
    return [[str(x["backbone"]) + (" (classical)" if x.get("classical") else ""),
             fmt_interval(x.get("random"), x.get("random_se")), fmt_interval(x.get("grouped"), x.get("grouped_se")),
             f"{x.get('gap', 0):+.3f}" + (" (memorises the sources)" if x.get("leaks") else "")]
            for x in nd.get("random_vs_grouped") or []]


def _html_new_data(r: dict[str, Any], pngs: dict[str, bytes]) -> str:
    """The "on new data" section: the estimate for new items or new sources, and the calibration."""
    nd = r.get("on_new_data")
    if not nd:
        return ('<section id="new-data"><h2>On new data</h2><p class="muted">Not recorded: this run predates the '
                'estimate on new data (summary.json has no on_new_data).</p></section>')
    body = _html_list(_new_data_sentences(nd), "headline")
    if nd.get("random_vs_grouped"):
        body += "<h3>Random folds against folds that hold out whole sources</h3>" + _text_table(_GAP_HEAD, _gap_rows(nd))
    body += img(pngs.get("reliability"), "reliability diagram of the delivered model's out-of-fold probabilities")
    return f'<section id="new-data"><h2>On new data</h2>{body}</section>'


def _md_new_data(r: dict[str, Any], images: dict[str, str]) -> list[str]:
    """The "on new data" section: the estimate for new items or new sources, and the calibration."""
    L = ["## On new data", ""]
    nd = r.get("on_new_data")
    if not nd:
        return L + ["_Not recorded: this run predates the estimate on new data._", ""]
    L += _md_list(_new_data_sentences(nd)) + [""]
    if nd.get("random_vs_grouped"):
        L += [_md_text_table(_GAP_HEAD, _gap_rows(nd)), ""]
    return L + _md_image(images, "reliability", "reliability diagram")


def _lb_flags(r: dict[str, Any]) -> str:
    flags = (("delivered", r.get("delivered")), ("within 1 SE of the top", r.get("within_se") and not r.get("delivered")),
             ("recommended", r["recommended"]), ("Pareto", r["pareto"]), ("not started", r.get("not_started")))
    return ", ".join(f for f, on in flags if on)


def _state_badge(state: str) -> str:
    cls = {"COMPLETE": "ok", "PRUNED": "warn", "RUNNING": "warn", "FAIL": "bad"}.get(state, "muted")
    return f'<span class="badge {cls}">{esc(state)}</span>'


def _html_title(r: dict[str, Any], _pngs: dict[str, bytes]) -> str:
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


def _html_nav(r: dict[str, Any], _pngs: dict[str, bytes]) -> str:
    """The navigation bar: a link per section (failures and notes only when there are any)."""
    sections = list(_NAV)
    if r["failures"]["n"]:
        sections.append(("failures", "Failures"))
    if r["warnings"]:
        sections.append(("notes", "Notes"))
    return "<nav>" + "".join(f'<a href="#{a}">{esc(t)}</a>' for a, t in sections) + "</nav>"


def _html_verdict(r: dict[str, Any], _pngs: dict[str, bytes]) -> str:
    """The verdict section: the headline cards, then the headline sentences."""
    card_html = "".join(f'<div class="card"><div class="k">{esc(k)}</div><div class="v">{_card_value(v)}</div><div class="n">{esc(n)}</div></div>'
                        for k, v, n in _verdict_cards(r))
    return f'<section id="verdict"><h2>Verdict</h2><div class="cards">{card_html}</div>' + _html_list(r["headline"], "headline") + "</section>"


def _html_profile(r: dict[str, Any], _pngs: dict[str, bytes]) -> str:
    """The dataset profile and the recommendation (strategy table) section."""
    key_rows, all_rows = profile_rows(r)
    if all_rows:
        prof = _kv_html(key_rows) + (
            f'<details class="small"><summary>all profile fields ({len(all_rows)})</summary>{_kv_html(all_rows)}</details>'
            if len(all_rows) > len(key_rows) - sum(1 for k, _ in key_rows if k.startswith("task."))
            else ""
        )
    else:
        prof = (_kv_html(key_rows) if key_rows else "") + '<p class="muted">No dataset profile recorded (summary.json missing or without "profile").</p>'
    recd = r["recommendation"]
    rech = _kv_html(_recommendation_rows(recd)) if recd else '<p class="muted">No recommendation recorded.</p>'
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
            cells.append(_state_badge(row["state"]))
        elif key == "fail_reason" and row["fail_reason"]:
            first = str(row["fail_reason"]).strip().splitlines()[0][:160] if str(row["fail_reason"]).strip() else ""
            cells.append(f'<span class="reason" title="{esc(row["fail_reason"])}">{esc(first)}</span>')
        else:
            cells.append(esc(fn(row)))
    return cells, cls


def _html_leaderboard(r: dict[str, Any], _pngs: dict[str, bytes]) -> str:
    """The leaderboard section: every trial, best first."""
    cols = _lb_columns(r)
    rows = [_html_lb_row(row, cols, r["best"]) for row in r["leaderboard"]]
    lb_html = _table([(esc(label), num) for _, label, num, _ in cols], rows, scroll=True) if rows else '<p class="muted">No trials recorded yet.</p>'
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


def _html_matrix(r: dict[str, Any], _pngs: dict[str, bytes]) -> str:
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
        mrows.append(([label] + cells + [esc(fmt_interval(st.get("best_score"), st.get("best_se")))], ""))
    return (
        '<section id="matrix"><h2>Strategy × backbone</h2>'
        '<p class="small muted">Best score ± one standard error per cell (trial number), then trial counts and the compute spent in that cell. Greener is better.</p>'
        + _table(head, mrows)
        + "</section>"
    )


def _html_cost(r: dict[str, Any], pngs: dict[str, bytes]) -> str:
    """The accuracy vs cost section: the sentence, the Pareto plot and the Pareto-optimal trials."""
    front_rows = _pareto_rows(r)
    ft = _table(
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


def _html_curves(r: dict[str, Any], pngs: dict[str, bytes]) -> str:
    """The learning curves section: the plot and a row per strategy's best trial."""
    curves = r["learning_curves"]
    if curves:
        ch = img(pngs.get("curves"), "learning curves of the best trial per strategy")
        ch += _table(
            [("strategy", False), ("trial", True), ("backbone", False), ("state", False), ("epochs", True), ("trial score", True), ("best epoch val", True), ("last epoch val", True)],
            [
                (
                    [esc(c["strategy"]), esc(c["trial"]), esc(c["backbone"]), _state_badge(c["state"]), esc(len(c["history"])), esc(fmt_score(c["score"])),
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


def _html_search(r: dict[str, Any], pngs: dict[str, bytes]) -> str:
    """The search section: the optimisation history and the hyperparameter importances."""
    imp = r["importances"]
    if imp.get("available"):
        imph = img(pngs.get("importances"), "hyperparameter importances") + _text_table(_IMPORTANCE_HEAD, _importance_rows(imp))
    else:
        imph = f'<p class="muted">Hyperparameter importances not available: {esc(imp.get("reason"))}.</p>'
    hist = img(pngs.get("history"), "optimisation history") or '<p class="muted">No scored trial yet.</p>'
    return f'<section id="search"><h2>Search</h2><div class="grid2"><div><h3>Optimisation history</h3>{hist}</div><div><h3>Hyperparameter importances</h3>{imph}</div></div></section>'


def _html_baseline(r: dict[str, Any], _pngs: dict[str, bytes]) -> str:
    """The classical baseline section: its verdict badge, its sentence and its table."""
    b = r["baseline"]
    if not b:
        return f'<section id="baseline"><h2>Classical baseline</h2><p class="muted">{esc(NO_BASELINE)}</p></section>'
    cls = "bad" if b.get("beat_transfer") else "warn" if b.get("tie") or b.get("score") is None else "ok"
    bt = _text_table(_BASELINE_HEAD, _baseline_rows(r))
    return f'<section id="baseline"><h2>Classical baseline <span class="badge {cls}">{esc(_baseline_tag(b))}</span></h2><p>{esc(b["sentence"])}</p>{bt}</section>'


def _html_per_class(r: dict[str, Any], pngs: dict[str, bytes]) -> str:
    """The per-class section: the summary, the confusion matrix, the per-class table and the top confusions."""
    pc = r["per_class"]
    if not pc.get("available"):
        return f'<section id="per-class"><h2>Per-class results</h2><p class="muted">Not available: {esc(pc.get("reason"))}</p></section>'
    t = _text_table(_PER_CLASS_HEAD, _per_class_rows(pc), scroll=len(pc["classes"]) > 15)
    conf = "<h3>Most frequent confusions</h3>" + _text_table(_CONFUSION_HEAD, _confusion_rows(pc)) if pc["top_confusions"] else ""
    cm_img = img(pngs.get("confusion"), "confusion matrix on the validation split")
    if not cm_img and len(pc["labels"]) > 60:
        cm_img = f'<p class="muted">{len(pc["labels"])} classes: the confusion matrix is too large to draw; see the table and report.json.</p>'
    probs = ""
    if pc.get("mean_probability_correct") is not None or pc.get("mean_probability_wrong") is not None:
        probs = f" Mean confidence when right {fmt_score(pc.get('mean_probability_correct'))}, when wrong {fmt_score(pc.get('mean_probability_wrong'))}."
    return (
        '<section id="per-class"><h2>Per-class results of the final model (validation split)</h2>'
        f"<p>{esc(_per_class_sentence(pc))}{esc(probs)}"
        + (f" Weakest class by recall: {esc(pc['worst_class'])}." if pc.get("worst_class") is not None else "")
        + f'</p><div class="grid2"><div>{cm_img}</div><div>{t}{conf}</div></div></section>'
    )


def _html_failures(r: dict[str, Any], _pngs: dict[str, bytes]) -> str:
    """The failures section (empty when no trial failed): the reasons, then the failed trials."""
    f = r["failures"]
    if not f["n"]:
        return ""
    return (
        f'<section id="failures"><h2>Failures ({esc(f["n"])})</h2>'
        + _table([("reason", False), ("trials", True)], [([f'<span class="reason">{esc(x["reason"])}</span>', esc(x["count"])], "") for x in f["reasons"]])
        + "<h3>Failed trials</h3>"
        + _table(
            [("trial", True), ("backbone", False), ("strategy", False), ("reason", False)],
            [([esc(x["trial"]), esc(x["backbone"]), esc(x["strategy"]), f'<span class="reason">{esc(x["reason"] or "no reason recorded")}</span>'], "") for x in f["trials"]],
            scroll=len(f["trials"]) > 15,
        )
        + "</section>"
    )


def _html_notes(r: dict[str, Any], _pngs: dict[str, bytes]) -> str:
    """The notes section (empty when there are no warnings)."""
    return '<section id="notes"><h2>Notes</h2>' + _html_list(r["warnings"]) + "</section>" if r["warnings"] else ""


def _html_footer(r: dict[str, Any], _pngs: dict[str, bytes]) -> str:
    """The footer: where the numbers are, and which run files were not present."""
    missing = [k for k, v in r["files"].items() if not v and not (k == "baseline.json" and r["baseline"])]  # newer runs: in summary.json
    return (
        '<p class="small muted">automl-tl report · all numbers are in report.json next to this file'
        + (f" · files not present: {esc(', '.join(missing))}" if missing else "")
        + "</p>"
    )


# --- Markdown: one function per section, each a list of lines ending with a blank one ----------------

def _md_table(headers: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(md(h) for h in headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(md(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def _md_text_table(head: list[tuple[str, bool]], rows: list[list[str]]) -> str:
    """A Markdown table with the headers the HTML tables use (the numeric flags dropped)."""
    return _md_table([h for h, _ in head], rows)


def _md_list(items: list[Any]) -> list[str]:
    """A bulleted list of escaped sentences."""
    return [f"- {md(s)}" for s in items]


def _md_image(images: dict[str, str], name: str, alt: str) -> list[str]:
    """A figure's image line (and a blank one), or nothing when the figure has no file."""
    return [f"![{alt}]({images[name]})", ""] if name in images else []


def _md_title(r: dict[str, Any], _images: dict[str, str]) -> list[str]:
    """The title: run name, run directory, generation time, finished or not."""
    status = "finished" if r["finished"] else "**not finished** (running or interrupted)"
    return [f"# Strategy report: {md(r['run_name'])}", "", f"Run directory {md(r['run_dir'])} · generated {md(r['generated_at'])} · " + status, ""]


def _md_verdict(r: dict[str, Any], _images: dict[str, str]) -> list[str]:
    """The verdict section: the headline sentences."""
    return ["## Verdict", "", *_md_list(r["headline"]), ""]


def _delivered_md(r: dict[str, Any], _images: dict[str, str]) -> list[str]:
    """The "what was delivered and why" section: the selection, the refit, the stop, the evaluation and the linear probe."""
    L = ["## What was delivered and why", ""]
    sentences = _delivered_sentences(r)
    if not sentences and not r.get("probe"):
        return L + ["_Not recorded: this run has no selection, refit, stop or evaluation record in summary.json._", ""]
    L += _md_list(sentences) + [""]
    rows = _delivered_rows(r)
    if rows:
        L += [_md_table(["delivered", "value"], [[k, fmt_value(v)] for k, v in rows]), ""]
    if r.get("probe"):
        L += ["### Linear probe (logistic regression on frozen features)", "", _md_text_table(_PROBE_HEAD, _probe_rows(r)), ""]
    return L


def _md_profile(r: dict[str, Any], _images: dict[str, str]) -> list[str]:
    """The dataset profile and recommendation section."""
    L = ["## Dataset profile and recommendation", ""]
    prof, all_prof = profile_rows(r)
    L.append(_md_table(["profile", "value"], [[k, _short(v)[:300]] for k, v in prof]) if prof else "_No dataset profile recorded._")
    if len(all_prof) > len(prof):
        L += ["", "_All profile fields are in report.json (`profile`)._"]
    L.append("")
    recd = r["recommendation"]
    if recd:
        rows = [[k, _short(v) if k.startswith("params.") else fmt_value(v)] for k, v in _recommendation_rows(recd)]
        L.append(_md_table(["recommendation", "value"], rows))
    else:
        L.append("_No recommendation recorded._")
    return L + [""]


def _md_leaderboard(r: dict[str, Any], _images: dict[str, str]) -> list[str]:
    """The leaderboard section: every trial, best first."""
    cols = _lb_columns(r)
    if not r["leaderboard"]:
        return ["## Leaderboard", "", "_No trials recorded yet._", ""]
    return ["## Leaderboard", "", _md_table([label for _, label, _, _ in cols], [[fn(row) for _, _, _, fn in cols] for row in r["leaderboard"]]), ""]


def _md_matrix(r: dict[str, Any], _images: dict[str, str]) -> list[str]:
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
    return ["## Strategy × backbone", "", _md_table(["strategy / backbone"] + m["backbones"], rows), ""]


def _md_cost(r: dict[str, Any], images: dict[str, str]) -> list[str]:
    """The accuracy vs cost section: the sentence, the Pareto plot and the Pareto-optimal trials."""
    L = ["## Accuracy vs cost", "", md(r["pareto"]["sentence"]), ""] + _md_image(images, "pareto", "accuracy vs cost")
    front = _pareto_rows(r)
    if front:
        L += [_md_table(["Pareto trial", "backbone", "strategy", r["metric"], "time"], [[str(x["trial"]), fmt_value(x["backbone"]), fmt_value(x["strategy"]), fmt_interval(x["score"], x.get("score_se")), fmt_seconds(x["seconds"])] for x in front]), ""]
    return L


def _md_curves(r: dict[str, Any], images: dict[str, str]) -> list[str]:
    """The learning curves section: the plot and a row per strategy's best trial."""
    L = ["## Learning curves", ""] + _md_image(images, "curves", "learning curves")
    if r["learning_curves"]:
        L.append(_md_table(["strategy", "trial", "backbone", "state", "epochs"], [[c["strategy"], str(c["trial"]), fmt_value(c["backbone"]), c["state"], str(len(c["history"]))] for c in r["learning_curves"]]))
    else:
        L.append("_No per-epoch history recorded._")
    return L + [""]


def _md_search(r: dict[str, Any], images: dict[str, str]) -> list[str]:
    """The search section: the optimisation history and the hyperparameter importances."""
    L = ["## Search", ""] + _md_image(images, "history", "optimisation history")
    imp = r["importances"]
    if imp.get("available"):
        L += _md_image(images, "importances", "hyperparameter importances") + [_md_text_table(_IMPORTANCE_HEAD, _importance_rows(imp))]
    else:
        L.append(f"_Hyperparameter importances not available: {md(imp.get('reason'))}._")
    return L + [""]


def _md_baseline(r: dict[str, Any], _images: dict[str, str]) -> list[str]:
    """The classical baseline section: its sentence and its table."""
    b = r["baseline"]
    if not b:
        return ["## Classical baseline", "", f"_{md(NO_BASELINE)}_", ""]
    return ["## Classical baseline", "", md(b["sentence"]), "", _md_text_table(_BASELINE_HEAD, _baseline_rows(r)), ""]


def _md_per_class(r: dict[str, Any], images: dict[str, str]) -> list[str]:
    """The per-class section: the summary, the confusion matrix, the per-class table and the top confusions."""
    L = ["## Per-class results (validation split)", ""]
    pc = r["per_class"]
    if not pc.get("available"):
        return L + [f"_Not available: {md(pc.get('reason'))}_", ""]
    L += [md(_per_class_sentence(pc)), ""] + _md_image(images, "confusion", "confusion matrix")
    L.append(_md_text_table(_PER_CLASS_HEAD, _per_class_rows(pc)))
    if pc["top_confusions"]:
        L += ["", _md_text_table(_CONFUSION_HEAD, _confusion_rows(pc))]
    return L + [""]


def _md_failures(r: dict[str, Any], _images: dict[str, str]) -> list[str]:
    """The failures section (nothing when no trial failed): the failed trials and their reasons."""
    f = r["failures"]
    if not f["n"]:
        return []
    rows = [[str(x["trial"]), fmt_value(x["backbone"]), fmt_value(x["strategy"]), x["reason"] or "no reason recorded"] for x in f["trials"]]
    return [f"## Failures ({f['n']})", "", _md_table(["trial", "backbone", "strategy", "reason"], rows), ""]


def _md_notes(r: dict[str, Any], _images: dict[str, str]) -> list[str]:
    """The notes section (nothing when there are no warnings)."""
    return ["## Notes", "", *_md_list(r["warnings"]), ""] if r["warnings"] else []


# The report's sections in the order both renderers lay them out: (HTML builder, Markdown builder),
# None where one rendering has no such section. HTML builders take (report, PNG bytes per figure) and
# return "" for a section that is absent; Markdown builders take (report, image path per figure) and
# return their lines, each section ending with a blank one (none for an absent section).
_SECTIONS: list[tuple[Callable[[dict, dict], str] | None, Callable[[dict, dict], list[str]] | None]] = [
    (_html_title, _md_title),
    (_html_nav, None),
    (_html_verdict, _md_verdict),
    (_delivered_html, _delivered_md),
    (_html_new_data, _md_new_data),
    (_html_profile, _md_profile),
    (_html_leaderboard, _md_leaderboard),
    (_html_matrix, _md_matrix),
    (_html_cost, _md_cost),
    (_html_curves, _md_curves),
    (_html_search, _md_search),
    (_html_baseline, _md_baseline),
    (_html_per_class, _md_per_class),
    (_html_failures, _md_failures),
    (_html_notes, _md_notes),
    (_html_footer, None),
]


def render_html(report: dict[str, Any], pngs: dict[str, bytes]) -> str:
    """The report as one self-contained HTML page: its sections in order (the optional ones only when present)."""
    parts = [html(report, pngs) for html, _ in _SECTIONS if html is not None]
    return page(f"automl-tl report — {report['run_name']}", "\n".join(p for p in parts if p))


def render_markdown(report: dict[str, Any], images: dict[str, str]) -> str:
    """``images``: figure name -> relative path of its PNG (figures without a file are left out)."""
    lines = [line for _, markdown in _SECTIONS if markdown is not None for line in markdown(report, images)]
    return "\n".join(lines) + "\n"
