"""Across runs of one task at different dataset sizes: which strategy won at each size (the empirical
strategy table), and where the recommendation disagreed with the winner."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Any, Iterable

from automl_tl.errors import AutoMLTLError, ConfigError
from automl_tl.report._build import build_report
from automl_tl.report._declared import order_strategies
from automl_tl.report._fmt import esc, fmt_interval, fmt_points, fmt_seconds, fmt_value, md
from automl_tl.report._html import html_table, img, page
from automl_tl.report._io import jsonable
from automl_tl.report._plots import compare_plot
from automl_tl.report._render_md import md_table
from automl_tl.report._write import write_files

__all__ = ["build_comparison", "write_comparison"]


def _run_row(report: dict[str, Any], label: str) -> dict[str, Any]:
    best = report["best"]
    scores = {s["strategy"]: s["best_score"] for s in report["strategies"]}
    b = report["baseline"] or {}
    v = report.get("strategy_verdict") or {}
    d = report.get("delivered") or {}
    return _noise_fields(report, v, b, d) | {
        "label": label,
        "run_dir": report["run_dir"],
        "run_name": report["run_name"],
        "finished": report["finished"],
        "n_samples": report["n_samples"],
        "n_classes": (report["profile"] or {}).get("n_classes"),
        "modality": (report["task"] or {}).get("modality"),
        "source": (report["task"] or {}).get("source"),
        "metric": report["metric"],
        "point": report["point"],
        "recommended_strategy": report["recommended"]["strategy"],
        "recommendation_rule": (report["recommendation"] or {}).get("rule"),
        "winner_strategy": report["winner_strategy"],
        "tied_strategies": [x for x in report.get("tied_strategies", []) if x != report["winner_strategy"]],
        "best_score": best["score"] if best else None,
        "best_trial": best["trial"] if best else None,
        "best_backbone": best["backbone"] if best else None,
        "best_seconds": best["seconds"] if best else None,
        "strategy_scores": scores,
        "strategy_seconds": {s["strategy"]: s["seconds"] for s in report["strategies"]},
        "strategy_ranks": {s["strategy"]: s.get("rank") for s in report["strategies"]},
        "recommended_score": report["recommended"]["score"],
        "regret": report["regret"],
        "regret_points": report["regret_points"],
        "agrees": report["strategy_held"],
        "baseline_score": b.get("score"),
        "baseline_beat_transfer": b.get("beat_transfer") if b else None,
        "counts": report["counts"],
        "total_seconds": report["total_seconds"],
        "labels": (report["per_class"] or {}).get("labels") if (report["per_class"] or {}).get("available") else None,
    }


def _noise_fields(report: dict[str, Any], v: dict, b: dict, d: dict) -> dict[str, Any]:
    """Standard errors and the noise-aware verdicts of one run (None where the run has none)."""
    best = report["best"] or {}
    return {
        "best_se": best.get("score_se"),
        "strategy_ses": {s["strategy"]: s.get("best_se") for s in report["strategies"]},
        "strategy_verdict": v.get("verdict"),
        "within_noise": bool(v.get("within_noise")),
        "strategy_paired": bool(v.get("paired")),
        "strategy_gap": v.get("gap"),
        "strategy_gap_se": v.get("se"),
        "baseline_se": b.get("score_se"),
        "baseline_tie_within_noise": bool(b.get("within_noise")),
        "delivered_trial": d.get("trial"),
        "delivered_is_top": d.get("is_top"),
        "delivered_kind": d.get("kind"),
        "refit": d.get("refit"),
    }


def _read_runs(run_dirs: list[Path], strategies: Iterable[Any] | None) -> tuple[list[dict[str, Any]], list[dict[str, str]], list[str]]:
    """(rows, skipped, warnings): one row per readable run, the unreadable ones skipped, the runs' own warnings."""
    rows, skipped, warnings = [], [], []
    for i, rd in enumerate(run_dirs):
        try:
            rep = build_report(rd, importances=False, strategies=strategies)
        except AutoMLTLError as exc:
            skipped.append({"run_dir": str(rd), "reason": str(exc)})
            continue
        rows.append(_run_row(rep, label=rep["run_name"] or f"run {i + 1}"))
        warnings += [f"{rep['run_name']}: {w}" for w in rep["warnings"]]
    if not rows:
        raise ConfigError("none of the given directories is a readable run directory: " + "; ".join(s["reason"] for s in skipped))
    names = [r["label"] for r in rows]
    for r in rows:  # disambiguate equal directory names
        if names.count(r["label"]) > 1:
            r["label"] = f"{r['label']} ({Path(r['run_dir']).resolve().parent.name})"
    rows.sort(key=lambda r: (r["n_samples"] is None, r["n_samples"] or 0, r["label"]))
    return rows, skipped, warnings


def _consistency_warnings(rows: list[dict[str, Any]], metrics: list[str], warnings: list[str]) -> None:
    """The notes on runs that are not comparable (metrics, modalities, class sets), first, and on unknown sizes and unfinished runs."""
    modalities = sorted({str(r["modality"]) for r in rows if r["modality"]})
    if len(metrics) > 1:
        warnings.insert(0, f"The runs use different metrics ({', '.join(metrics)}): scores are not comparable across runs.")
    if len(modalities) > 1:
        warnings.insert(0, f"The runs have different modalities ({', '.join(modalities)}): they are not the same task.")
    label_sets = {tuple(sorted(r["labels"])) for r in rows if r["labels"]}
    if len(label_sets) > 1:
        warnings.insert(0, "The runs' validation splits have different class sets: check that they are the same task.")
    for r in rows:
        if r["n_samples"] is None:
            warnings.append(f"{r['label']}: dataset size unknown (no profile n_samples, no split.json); placed last.")
        if not r["finished"]:
            warnings.append(f"{r['label']}: run not finished; its winner may still change.")


def _strategy_table(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The empirical strategy table: the winner per size, next to what was recommended."""
    return [
        {"n_samples": r["n_samples"], "run": r["label"], "winner": r["winner_strategy"], "recommended": r["recommended_strategy"], "agrees": r["agrees"],
         "within_noise": r["within_noise"], "best_score": r["best_score"], "best_se": r["best_se"]}
        for r in rows
    ]


def _bands(table: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Bands of consecutive sizes with one winner."""
    bands: list[dict[str, Any]] = []
    for t in table:
        if t["winner"] is None:
            continue
        if bands and bands[-1]["winner"] == t["winner"]:
            bands[-1]["sizes"].append(t["n_samples"])
        else:
            bands.append({"winner": t["winner"], "sizes": [t["n_samples"]]})
    return bands


def _across_sentence(rows: list[dict[str, Any]], bands: list[dict[str, Any]]) -> str:
    """The comparison headline's first sentence: which strategy won at which sizes."""
    sized = [r["n_samples"] for r in rows if r["n_samples"] is not None]
    rng = f" ({min(sized)}–{max(sized)} samples)" if sized else ""
    if not bands:
        return f"Across {len(rows)} runs no trial completed, so no strategy won anywhere yet."
    return (
        f"Across {len(rows)} run{'s' if len(rows) != 1 else ''}{rng}: "
        + "; ".join(f"{b['winner']} won at {', '.join('?' if s is None else str(s) for s in b['sizes'])}" for b in bands)
        + "."
    )


def _disagreements(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """The runs where the recommendation disagreed with the winner, and a headline sentence for each."""
    disagreements, sentences = [], []
    for r in rows:
        if r["agrees"] is not False:
            continue
        rec_score = r["strategy_scores"].get(r["recommended_strategy"])
        gap = None if rec_score is None or r["best_score"] is None else abs(r["best_score"] - rec_score)
        d = {"run": r["label"], "n_samples": r["n_samples"], "recommended": r["recommended_strategy"], "winner": r["winner_strategy"], "gap": gap,
             "se": r["strategy_gap_se"], "rule": r["recommendation_rule"]}
        disagreements.append(d)
        size = "?" if r["n_samples"] is None else r["n_samples"]
        beyond = f", beyond one standard error ({fmt_points(d['se'], r['point'])})" if d["se"] is not None else ""
        why = f", by {fmt_points(gap, r['point'])}{beyond}" if gap is not None else f"; no {r['recommended_strategy']} trial completed"
        sentences.append(f"At {size} samples ({r['label']}) the recommendation ({r['recommended_strategy']}) disagreed with the winner ({r['winner_strategy']}{why}).")
    return disagreements, sentences


def _strategy_order(rows: list[dict[str, Any]]) -> list[str]:
    """Every strategy of the runs and every recommended one, simplest first by what they declare, then
    in the order the runs (smallest first) show them."""
    seen: dict[str, int] = {}
    ranks: dict[str, int] = {}
    for r in rows:
        for s in [*r["strategy_scores"], r["recommended_strategy"]]:
            if s:
                seen.setdefault(s, len(seen))
        for s, rank in (r.get("strategy_ranks") or {}).items():
            if rank is not None:
                ranks.setdefault(s, rank)
    return order_strategies(seen, {s: {"rank": rank} for s, rank in ranks.items()}, seen)


def build_comparison(run_dirs: Iterable[str | Path], *, strategies: Iterable[Any] | None = None) -> dict[str, Any]:
    """The comparison across runs: the empirical strategy table, its bands, the disagreements and the headline.

    ``strategies``: the registered strategies, for what a run did not record of its own (see :func:`build_report`)."""
    run_dirs = [Path(p) for p in run_dirs]
    if not run_dirs:
        raise ConfigError("compare needs at least one run directory (ideally one per dataset size).")
    rows, skipped, warnings = _read_runs(run_dirs, strategies)
    order = _strategy_order(rows)
    metrics = sorted({r["metric"] for r in rows})
    _consistency_warnings(rows, metrics, warnings)
    table = _strategy_table(rows)
    bands = _bands(table)
    disagreements, disagreement_sentences = _disagreements(rows)
    sentences = [_across_sentence(rows, bands)] + disagreement_sentences + _noise_sentences(rows, bool(disagreements))
    return jsonable(
        {
            "report_version": 1,
            "generated_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "metric": metrics[0] if len(metrics) == 1 else " / ".join(metrics),
            "strategies": order,
            "runs": rows,
            "strategy_table": table,
            "bands": bands,
            "disagreements": disagreements,
            "headline": sentences,
            "skipped": skipped,
            "warnings": warnings,
        }
    )


def _noise_sentences(rows: list[dict[str, Any]], any_disagreement: bool) -> list[str]:
    out = []
    for r in rows:
        if r["agrees"] and r["within_noise"]:
            size = "?" if r["n_samples"] is None else r["n_samples"]
            se = f" ({fmt_points(r['strategy_gap_se'], r['point'])})" if r["strategy_gap_se"] is not None else ""
            if r.get("strategy_paired"):
                se = " when compared on the items both were scored on"
            out.append(
                f"At {size} samples ({r['label']}) the recommended {r['recommended_strategy']} finished {fmt_points(r['strategy_gap'], r['point'])} "
                f"behind the winner ({r['winner_strategy']}), within one standard error{se}: a tie within noise, so the table held."
            )
    agreed = [r for r in rows if r["agrees"] is True]
    if not any_disagreement and agreed:
        out.append(f"The recommendation matched the winning strategy (or tied with it within noise) in all {len(agreed)} run{'s' if len(agreed) != 1 else ''} with a winner.")
    bl = [r for r in rows if r["baseline_beat_transfer"]]
    if bl:
        out.append("The classical baseline beat transfer learning at " + ", ".join(str(r["n_samples"] or "?") for r in bl) + " samples, by more than one standard error.")
    tie = [r for r in rows if r["baseline_tie_within_noise"]]
    if tie:
        out.append("The classical baseline and transfer learning tied within noise at " + ", ".join(str(r["n_samples"] or "?") for r in tie) + " samples.")
    return out


_AGREES_HTML = {True: '<span class="badge ok">yes</span>', False: '<span class="badge bad">disagreed</span>', None: '<span class="muted">—</span>'}


def _render_html(c: dict[str, Any], png: bytes | None) -> str:
    parts = [f"<h1>Strategy comparison across {len(c['runs'])} runs</h1><div class=\"sub\">generated {esc(c['generated_at'])} · metric {esc(c['metric'])}</div>"]
    parts.append('<section id="verdict"><h2>Verdict</h2><ul class="headline">' + "".join(f"<li>{esc(s)}</li>" for s in c["headline"]) + "</ul></section>")
    head = [("run", False), ("samples", True), ("recommended", False), ("winner", False), ("best", True)]
    head += [(esc(s), True) for s in c["strategies"]] + [("regret", True), ("baseline", True), ("agrees", False)]
    rows = []
    for r in c["runs"]:
        cells = [esc(r["label"]) + ("" if r["finished"] else ' <span class="badge warn">unfinished</span>'), esc(fmt_value(r["n_samples"])), esc(fmt_value(r["recommended_strategy"])), f"<b>{esc(fmt_value(r['winner_strategy']))}</b>" + (f" <span class=\"muted\">(tied: {esc(', '.join(r['tied_strategies']))})</span>" if r["tied_strategies"] else ""), esc(fmt_interval(r["best_score"], r.get("best_se")))]
        for s in c["strategies"]:
            v = r["strategy_scores"].get(s)
            txt = esc(fmt_interval(v, (r.get("strategy_ses") or {}).get(s)))
            if s == r["winner_strategy"]:
                txt = f"<b>{txt}</b> ★"
            if s == r["recommended_strategy"]:
                txt += ' <span class="muted">(rec.)</span>'
            cells.append(txt)
        cells.append(esc(fmt_points(r["regret"], r["point"])) if r["regret"] is not None else "—")
        cells.append(esc(fmt_interval(r["baseline_score"], r.get("baseline_se"))) + (' <span class="badge bad">beat TL</span>' if r["baseline_beat_transfer"] else ""))
        cells.append('<span class="badge warn">tie within noise</span>' if r["agrees"] and r.get("within_noise") else _AGREES_HTML[r["agrees"]])
        rows.append((cells, ""))
    parts.append(
        '<section id="table"><h2>Empirical strategy table</h2><p class="small muted">One row per run, by dataset size. Columns per strategy: the best score ± one standard error that strategy reached in that run (★ = winner, rec. = what the strategy table recommended). Regret: best score minus the recommended configuration\'s score. A recommended strategy within one standard error of the winner is a tie within noise, not a disagreement.</p>'
        + html_table(head, rows)
        + "</section>"
    )
    parts.append('<section id="plot"><h2>Best score per strategy vs dataset size</h2>' + (img(png, "best score per strategy by dataset size") or '<p class="muted">No dataset sizes known, nothing to plot.</p>') + "</section>")
    det = html_table(
        [("run", False), ("directory", False), ("trials", True), ("complete", True), ("compute", True), ("best trial", True), ("best backbone", False)],
        [([esc(r["label"]), f"<code>{esc(r['run_dir'])}</code>", esc(r["counts"]["total"]), esc(r["counts"]["complete"]), esc(fmt_seconds(r["total_seconds"])), esc(fmt_value(r["best_trial"])), esc(fmt_value(r["best_backbone"]))], "") for r in c["runs"]],
    )
    parts.append(f'<section id="runs"><h2>Runs</h2>{det}</section>')
    if c["skipped"] or c["warnings"]:
        items = [f"skipped {s['run_dir']}: {s['reason']}" for s in c["skipped"]] + c["warnings"]
        parts.append('<section id="notes"><h2>Notes</h2><ul>' + "".join(f"<li>{esc(w)}</li>" for w in items) + "</ul></section>")
    return page("automl-tl strategy comparison", "\n".join(parts))


def _render_md(c: dict[str, Any], images: dict[str, str]) -> str:
    L = [f"# Strategy comparison across {len(c['runs'])} runs", "", f"Generated {md(c['generated_at'])} · metric {md(c['metric'])}", "", "## Verdict", ""]
    L += [f"- {md(s)}" for s in c["headline"]]
    L += ["", "## Empirical strategy table", ""]
    rows = []
    for r in c["runs"]:
        row = [r["label"], fmt_value(r["n_samples"]), fmt_value(r["recommended_strategy"]), fmt_value(r["winner_strategy"]) + (f" (tied: {', '.join(r['tied_strategies'])})" if r["tied_strategies"] else ""), fmt_interval(r["best_score"], r.get("best_se"))]
        for s in c["strategies"]:
            v = fmt_interval(r["strategy_scores"].get(s), (r.get("strategy_ses") or {}).get(s))
            row.append(v + (" ★" if s == r["winner_strategy"] else "") + (" (rec.)" if s == r["recommended_strategy"] else ""))
        agrees = "tie within noise" if r["agrees"] and r.get("within_noise") else {True: "yes", False: "DISAGREED", None: "—"}[r["agrees"]]
        row += [fmt_points(r["regret"], r["point"]) if r["regret"] is not None else "—", fmt_interval(r["baseline_score"], r.get("baseline_se")), agrees]
        rows.append(row)
    L.append(md_table(["run", "samples", "recommended", "winner", "best", *c["strategies"], "regret", "baseline", "agrees"], rows))
    L.append("")
    if "compare" in images:
        L += [f"![best score per strategy vs dataset size]({images['compare']})", ""]
    if c["skipped"] or c["warnings"]:
        L += ["## Notes", ""] + [f"- skipped {md(s['run_dir'])}: {md(s['reason'])}" for s in c["skipped"]] + [f"- {md(w)}" for w in c["warnings"]] + [""]
    return "\n".join(L) + "\n"


def write_comparison(run_dirs: Iterable[str | Path], out_dir: str | Path, *,
                     strategies: Iterable[Any] | None = None) -> dict[str, Path]:
    """Write compare.html (self-contained), compare.md (+ compare_files/*.png) and compare.json into ``out_dir``."""
    c = build_comparison(run_dirs, strategies=strategies)
    pngs: dict[str, bytes] = {}
    try:
        png = compare_plot(c)
        if png:
            pngs["compare"] = png
    except Exception as exc:  # a plot must never sink the comparison
        c["warnings"].append(f"comparison plot failed: {type(exc).__name__}: {exc}")
    html = _render_html(c, pngs.get("compare"))
    return write_files(Path(out_dir), "compare", c, pngs, html, _render_md)


