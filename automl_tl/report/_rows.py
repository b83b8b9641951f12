"""What the HTML and Markdown renderings of a report share: section headers and rows as plain text.

Each renderer escapes these for its own format (:mod:`automl_tl.report._html`, :mod:`automl_tl.report._render_md`).
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any, Callable

from automl_tl.report._fmt import fmt_interval, fmt_points, fmt_score, fmt_seconds, fmt_value

__all__ = ["flatten", "profile_rows", "short_text", "lb_columns", "NO_BASELINE", "BASELINE_HEAD",
           "baseline_tag", "baseline_rows", "verdict_cards", "delivered_rows", "PROBE_HEAD",
           "probe_rows", "delivered_sentences", "PER_CLASS_HEAD", "CONFUSION_HEAD",
           "IMPORTANCE_HEAD", "recommendation_rows", "pareto_rows", "importance_rows",
           "per_class_sentence", "per_class_rows", "confusion_rows", "GAP_HEAD",
           "new_data_sentences", "gap_rows"]


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
    task = report.get("task") or {}
    head = [(f"task.{k}", task[k]) for k in ("metric", "n_train", "n_val", "seed") if k in task]
    rows = flatten(report["profile"]) if report["profile"] else []
    key_rows = [(k, v) for k, v in rows if any(fnmatchcase(k, pat) for pat in _PROFILE_KEYS)]
    if not key_rows:
        key_rows = [(k, v) for k, v in rows if len(short_text(v)) <= 120][:25]
    return head + key_rows, rows


def short_text(v: Any, limit: int = 12) -> str:
    if isinstance(v, list):
        head = ", ".join(fmt_value(x) for x in v[:limit])
        return head + (f", … (+{len(v) - limit} more)" if len(v) > limit else "")
    if isinstance(v, dict):
        return "{}" if not v else ", ".join(f"{k}={fmt_value(x)}" for k, x in list(v.items())[:limit])
    return fmt_value(v)


def lb_columns(report: dict[str, Any]) -> list[tuple[str, str, bool, Callable[[dict], str]]]:
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


def _lb_flags(r: dict[str, Any]) -> str:
    flags = (("delivered", r.get("delivered")), ("within 1 SE of the top", r.get("within_se") and not r.get("delivered")),
             ("recommended", r["recommended"]), ("Pareto", r["pareto"]), ("not started", r.get("not_started")))
    return ", ".join(f for f, on in flags if on)


NO_BASELINE = 'No classical baseline in this run (neither summary.json "baseline" nor baseline.json), so there is nothing to compare with.'


BASELINE_HEAD = [("model", False), ("metric", False), ("score ± SE", True), ("time", True)]


def baseline_tag(b: dict[str, Any]) -> str:
    if b.get("beat_transfer"):
        return "baseline beat transfer learning"
    if b.get("within_noise"):
        return "tie within noise"
    if b.get("tie"):
        return "tie"
    return "no baseline score" if b.get("score") is None else "transfer learning won"


def baseline_rows(r: dict[str, Any]) -> list[list[str]]:
    """The baseline against the best transfer-learning trial, as plain text cells."""
    b = r["baseline"]
    tl = f"best transfer: trial {b['best_trial']}" if b.get("best_trial") is not None else "best transfer: none"
    return [
        [f"baseline: {b.get('name') or '?'}", fmt_value(b.get("metric")), fmt_interval(b.get("score"), b.get("score_se")), fmt_seconds(b.get("seconds"))],
        [tl, r["metric"], fmt_interval(b.get("best_score"), b.get("best_se")), fmt_seconds(b.get("best_seconds"))],
    ]


def verdict_cards(r: dict[str, Any]) -> list[tuple[str, str, str]]:
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


def delivered_rows(r: dict[str, Any]) -> list[tuple[str, Any]]:
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


PROBE_HEAD = [("#", True), ("backbone", False), ("options", False), ("score ± SE", True), ("C", True), ("features", True),
               ("LogME", True), ("kNN", True), ("classical", False), ("time", True)]


def probe_rows(r: dict[str, Any]) -> list[list[str]]:
    return [
        [fmt_value(p["rank"]) if p["rank"] else "", fmt_value(p["backbone"]), p["options"],
         fmt_interval(p["score"], p["se"]) if p["skipped"] is None else f"skipped: {p['skipped']}",
         fmt_value(p["C"]), fmt_value(p.get("dim")), "" if p.get("logme") is None else f"{p['logme']:.3f}",
         fmt_value(p.get("knn")), "yes" if p["classical"] else "", fmt_seconds(p["seconds"])]
        for p in r.get("probe") or []
    ]


def delivered_sentences(r: dict[str, Any]) -> list[str]:
    out = list((r.get("delivered") or {}).get("sentences") or [])
    out += [x["sentence"] for x in (r.get("stop"), r.get("evaluation")) if x]
    if r.get("transferability"):
        out.append(r["transferability"])
    return out


PER_CLASS_HEAD = [("class", False), ("precision", True), ("recall", True), ("F1", True), ("support", True)]


CONFUSION_HEAD = [("true", False), ("predicted as", False), ("count", True)]


IMPORTANCE_HEAD = [("parameter", False), ("importance", True)]


def recommendation_rows(recd: dict[str, Any]) -> list[tuple[str, Any]]:
    """The recommendation section's rows: strategy, rule, reason, then the recommended parameters."""
    rows = [("strategy", recd.get("strategy")), ("rule", recd.get("rule")), ("reason", recd.get("reason"))]
    return rows + [(f"params.{k}", v) for k, v in (recd.get("params") or {}).items()]


def pareto_rows(r: dict[str, Any]) -> list[dict[str, Any]]:
    """The accuracy/cost section's Pareto-optimal trials, cheapest first."""
    return sorted((x for x in r["leaderboard"] if x["pareto"]), key=lambda x: x["seconds"] or 0)


def importance_rows(imp: dict[str, Any]) -> list[list[str]]:
    """The search section's hyperparameter importances, largest first."""
    return [[k, f"{v:.3f}"] for k, v in sorted(imp["values"].items(), key=lambda kv: -kv[1])]


def per_class_sentence(pc: dict[str, Any]) -> str:
    """The per-class section's summary sentence: items, accuracy, balanced accuracy, macro F1."""
    return (f"{pc['n']} validation items, accuracy {fmt_score(pc['accuracy'])}, balanced accuracy {fmt_score(pc['balanced_accuracy'])}, "
            f"macro F1 {fmt_score(pc['macro']['f1'])}.")


def per_class_rows(pc: dict[str, Any]) -> list[list[str]]:
    """The per-class section's table: precision, recall, F1 and support per class."""
    return [[c["label"], fmt_score(c["precision"]), fmt_score(c["recall"]), fmt_score(c["f1"]), str(c["support"])] for c in pc["classes"]]


def confusion_rows(pc: dict[str, Any]) -> list[list[str]]:
    """The per-class section's most frequent confusions."""
    return [[c["true"], c["predicted"], str(c["count"])] for c in pc["top_confusions"]]


GAP_HEAD = [("backbone", False), ("random folds", True), ("grouped folds (new sources)", True), ("gap", True)]


def new_data_sentences(nd: dict[str, Any]) -> list[str]:
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


def gap_rows(nd: dict[str, Any]) -> list[list[str]]:
    return [[str(x["backbone"]) + (" (classical)" if x.get("classical") else ""),
             fmt_interval(x.get("random"), x.get("random_se")), fmt_interval(x.get("grouped"), x.get("grouped_se")),
             f"{x.get('gap', 0):+.3f}" + (" (memorises the sources)" if x.get("leaks") else "")]
            for x in nd.get("random_vs_grouped") or []]
