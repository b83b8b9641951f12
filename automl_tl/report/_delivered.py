"""What was delivered and why: the selected trial against the top-scoring one (the one-standard-error
rule), the refit on all labelled data, a classical baseline delivered, why the search stopped, how
trials were scored, and the linear-probe ranking of the backbones.

Everything here reads the newer fields of ``summary.json`` ("selection", "delivered", "stop",
"evaluation", "probe"); a run without them (older automl-tl) gets None / [] and the report says so.
"""

from __future__ import annotations

from typing import Any

from automl_tl.report._fmt import describe_config, fmt_interval, fmt_points, fmt_seconds
from automl_tl.report._io import to_float, to_int

__all__ = ["classical_backbones", "delivered_part", "stop_part", "evaluation_part", "probe_part", "options_text",
           "transferability_sentence"]

STOP_LABELS = {
    "trials": "trial budget used",
    "time": "time budget used",
    "saturated": "validation saturated (early stop)",
    "patience": "no improvement (early stop)",
    "exhausted": "search space exhausted (early stop)",
}


def _dict(x: Any) -> dict[str, Any]:
    return x if isinstance(x, dict) else {}


def options_text(options: Any) -> str:
    if isinstance(options, dict):
        return ", ".join(f"{k}={v}" for k, v in options.items())
    return "" if options in (None, "", "{}") else str(options)


def classical_backbones(summary: dict[str, Any], baseline: dict[str, Any] | None) -> set[str]:
    """Names of the classical featurizers of the run (pixels, tfidf, mfcc...): not transfer learning."""
    out = {str(c["name"]) for c in summary.get("candidates") or [] if isinstance(c, dict) and c.get("classical") and c.get("name")}
    out |= {str(p["backbone"]) for p in summary.get("probe") or [] if isinstance(p, dict) and p.get("classical") and p.get("backbone")}
    if baseline and baseline.get("backbone"):
        out.add(str(baseline["backbone"]))
    return out


def delivered_part(summary: dict[str, Any], rows: dict[int, dict], top: dict | None, sign: float, point: float) -> dict[str, Any] | None:
    """The delivered (selected) trial and why; None for runs that record no selection."""
    sel, dlv = _dict(summary.get("selection")), _dict(summary.get("delivered"))
    number = to_int(dlv.get("trial")) if dlv.get("trial") is not None else to_int(sel.get("trial"))
    if number is None:
        return None
    t = rows.get(number) or {}
    from_sel = to_int(sel.get("trial")) == number
    top_trial = to_int(sel.get("top_trial")) if sel.get("top_trial") is not None else (top["trial"] if top else None)
    top_row = (rows.get(top_trial) or {}) if top_trial is not None else {}
    d = {
        "trial": number,
        "backbone": t.get("backbone"),
        "strategy": t.get("strategy"),
        "state": t.get("state"),
        "score": to_float(sel.get("score")) if from_sel else t.get("score"),
        "se": to_float(sel.get("se")) if from_sel else t.get("score_se"),
        "top_trial": top_trial,
        "top_score": to_float(sel.get("top_score")) if sel else top_row.get("score"),
        "top_se": to_float(sel.get("top_se")) if sel else top_row.get("score_se"),
        "tied": [n for n in (to_int(x) for x in sel.get("tied") or []) if n is not None],
        "rule": sel.get("rule"),
        "selection_reason": sel.get("reason"),
        "delivered": bool(dlv),
        "refit": bool(dlv.get("refit")) if dlv else None,
        "n_train": to_int(dlv.get("n_train")),
        "refit_reason": dlv.get("refit_reason"),
        "refit_seconds": to_float(dlv.get("refit_seconds")),
        "kind": dlv.get("kind"),
        "ensemble": _dict(dlv.get("ensemble")) or None,
        "ensemble_reason": dlv.get("ensemble_reason"),
    }
    if d["score"] is None:
        d["score"], d["se"] = t.get("score"), t.get("score_se")
    d["is_top"] = top_trial is None or number == top_trial
    d["classical"] = d["kind"] == "classical baseline"
    d["sentences"] = [_selection_sentence(d, t, top_row, sign, point), _refit_sentence(d)] + _kind_sentence(d)
    return d


def _selection_sentence(d: dict[str, Any], t: dict, top_row: dict, sign: float, point: float) -> str:
    desc = describe_config(t) if t else "configuration unknown"
    mine = fmt_interval(d["score"], d["se"])
    if d["is_top"]:
        s = f"Delivered: trial {d['trial']} ({desc}), {mine}, the top-scoring trial."
        k = len([n for n in d["tied"] if n != d["trial"]])
        if k:
            s += f" {k} other trial{'s' if k != 1 else ''} within one standard error of it {'were' if k != 1 else 'was'} not simpler or cheaper."
        return s
    gap = sign * (d["top_score"] - d["score"]) if (d["top_score"] is not None and d["score"] is not None) else None
    top_desc = describe_config(top_row) if top_row else "?"
    return (
        f"Delivered: trial {d['trial']} ({desc}), {mine}, rather than the top-scoring trial {d['top_trial']} "
        f"({top_desc}, {fmt_interval(d['top_score'], d['top_se'])}): a gap of {fmt_points(gap, point)} is within one standard "
        f"error ({fmt_points(d['top_se'], point)}) of the top score, so the one-standard-error rule chose the simpler or "
        "cheaper configuration — a gap this small is noise."
    )


def _refit_sentence(d: dict[str, Any]) -> str:
    if not d["delivered"]:
        return ("The search has not delivered its model yet (still running, or interrupted): the model saved so far is "
                "this trial's, trained on the training split only.")
    reason = str(d["refit_reason"] or "").strip().rstrip(".")
    secs = f" ({fmt_seconds(d['refit_seconds'])})" if d["refit_seconds"] is not None else ""
    if d["refit"]:
        return f"It was {reason}{secs}." if reason else f"It was refitted on all {d['n_train'] or '?'} labelled items{secs}."
    trained = f" It was trained on the {d['n_train']} training items only." if d["n_train"] else ""
    return (f"It was {reason}." if reason else "It was not refitted.") + trained


def _kind_sentence(d: dict[str, Any]) -> list[str]:
    if d["kind"] == "ensemble":
        trials = ", ".join(str(n) for n in (d["ensemble"] or {}).get("trials") or [])
        return [f"The delivered model is an ensemble of trials {trials or '?'} (their class probabilities averaged, "
                f"each trained as trial {d['trial']} was): {str(d['ensemble_reason'] or '').rstrip('.')}."]
    out = []
    if d["kind"] == "classical baseline":
        out.append(f"The delivered model is the classical baseline ({d['backbone'] or '?'} features + logistic "
                   "regression), not transfer learning: no pretrained backbone beat it by more than the noise.")
    elif d["kind"]:
        out.append(f"The delivered model uses {d['kind']} ({d['backbone'] or '?'}).")
    if d["ensemble_reason"]:  # an ensemble that helped on validation but was not built
        out.append(f"It is {str(d['ensemble_reason']).rstrip('.')}.")
    return out


def stop_part(summary: dict[str, Any]) -> dict[str, Any] | None:
    st = _dict(summary.get("stop"))
    if not st:
        return None
    kind = str(st.get("kind") or "")
    out = {
        "kind": kind or None,
        "label": STOP_LABELS.get(kind, kind or "stopped"),
        "reason": st.get("reason"),
        "seconds": to_float(st.get("seconds")),
        "seconds_saved": to_float(st.get("seconds_saved")),
        "trials_saved": to_int(st.get("trials_saved")),
        "early": kind in ("saturated", "patience", "exhausted"),
    }
    s = "The search stopped" + (f" after {fmt_seconds(out['seconds'])}" if out["seconds"] is not None else "")
    s += f": {str(out['reason'] or out['label']).rstrip('.')}."
    saved = []
    if out["seconds_saved"]:
        saved.append(f"about {fmt_seconds(out['seconds_saved'])}")
    if out["trials_saved"]:
        saved.append(f"{out['trials_saved']} trial{'s' if out['trials_saved'] != 1 else ''} of the budget")
    if out["early"] and saved:
        s += f" Stopping early saved {' and '.join(saved)}."
    out["sentence"] = s
    return out


def evaluation_part(summary: dict[str, Any]) -> dict[str, Any] | None:
    ev = _dict(summary.get("evaluation"))
    if not ev:
        return None
    kind, k, n_train, n_val = ev.get("kind"), to_int(ev.get("k")), to_int(ev.get("n_train")), to_int(ev.get("n_val"))
    n_all = (n_train or 0) + (n_val or 0) or None
    if kind == "cv":
        s = (f"Cheap (feature-extraction) trials were scored by {k or '?'}-fold cross-validation: each of the {n_all or '?'} "
             "labelled items is predicted once by a model that did not train on it. Fine-tuning trials, too costly to repeat "
             f"per fold, were scored on the first fold's hold-out split ({n_val or '?'} items).")
    else:
        s = f"Every trial was scored on one hold-out split of {n_val or '?'} items (trained on {n_train or '?'})."
    if ev.get("reason"):
        s += f" Why: {str(ev['reason']).rstrip('.')}."
    s += " Scores are shown ± one standard error; a gap smaller than that is noise."
    return {"kind": kind, "k": k, "n_train": n_train, "n_val": n_val, "reason": ev.get("reason"), "sentence": s}


def probe_part(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """The linear-probe ranking (logistic regression on frozen features), best first; skipped pairs last."""
    out, rank = [], 0
    for p in summary.get("probe") or []:
        if not isinstance(p, dict):
            continue
        scored = to_float(p.get("score")) is not None
        rank += scored
        out.append({
            "rank": rank if scored else None,
            "backbone": p.get("backbone"),
            "options": options_text(p.get("options")),
            "score": to_float(p.get("score")),
            "se": to_float(p.get("se")),
            "C": to_float(p.get("C")),
            "dim": to_int(p.get("dim")),
            "classical": bool(p.get("classical")),
            "seconds": to_float(p.get("seconds")),
            "skipped": None if scored else str(p.get("skipped") or "not probed"),
            "logme": to_float((p.get("proxies") or {}).get("logme")),
            "knn": to_float((p.get("proxies") or {}).get("knn")),
        })
    return out


_PROXY_NAMES = {"linear_probe": "linear probe", "logme": "LogME", "knn": "kNN"}


def transferability_sentence(summary: dict[str, Any]) -> str | None:
    """How well the probe and each proxy ranked the backbones against the search (Kendall's tau)."""
    tr = summary.get("transferability")
    if not isinstance(tr, dict) or not isinstance(tr.get("tau"), dict):
        return None
    parts, why = [], None
    for key, res in tr["tau"].items():
        if not isinstance(res, dict):
            continue
        tau = to_float(res.get("tau"))
        if tau is None:
            why = why or res.get("why")
            continue
        parts.append(f"{_PROXY_NAMES.get(key, key)} τ = {tau:+.2f} (n = {to_int(res.get('n'))})")
    if parts:
        return ("Rank agreement of each transferability measure with the best score the search found per "
                "candidate, backbone and readout (Kendall's τ): " + ", ".join(parts) + ".")
    return f"No rank agreement (Kendall's τ) of the transferability measures with the search: {why}." if why else None
