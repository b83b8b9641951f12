"""Matplotlib figures (Agg canvas, no pyplot global state) rendered to PNG bytes."""

from __future__ import annotations

import io
import math
import warnings
from typing import Any

from automl_tl.report._fmt import mpl_text

__all__ = ["run_plots", "compare_plot", "confusion_png"]

_PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]
_DPI = 100


def _fig(w: float = 7.5, h: float = 4.2):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w, h), dpi=_DPI)
    FigureCanvasAgg(fig)
    return fig


def _png(fig) -> bytes:
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # missing glyphs for exotic class names
        try:
            fig.tight_layout()
        except Exception:
            pass
        fig.savefig(buf, format="png", dpi=_DPI, metadata={"Software": None})
    return buf.getvalue()


def _colors(strategies: list[str]) -> dict[str, str]:
    return {s: _PALETTE[i % len(_PALETTE)] for i, s in enumerate(strategies)}


def _log_seconds_axis(ax) -> None:
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _scatter(report: dict[str, Any]) -> bytes | None:
    lb = [r for r in report["leaderboard"] if r["score"] is not None and r["seconds"] is not None and r["state"] in ("COMPLETE", "PRUNED")]
    if not lb:
        return None
    colors = _colors(report["matrix"]["strategies"])
    fig = _fig(7.5, 4.4)
    ax = fig.add_subplot(111)
    for s in report["matrix"]["strategies"]:
        pts = [r for r in lb if (r["strategy"] or "?") == s and r["state"] == "COMPLETE"]
        if pts:
            ax.scatter([r["seconds"] for r in pts], [r["score"] for r in pts], s=36, color=colors[s], label=mpl_text(s), alpha=0.85, zorder=3)
            _error_bars(ax, [(r["seconds"], r["score"], r.get("score_se")) for r in pts], colors[s])
    pr = [r for r in lb if r["state"] == "PRUNED"]
    if pr:
        ax.scatter([r["seconds"] for r in pr], [r["score"] for r in pr], s=30, marker="x", color="#999999", label="pruned (last score)", zorder=2)
    front = sorted((r for r in lb if r["pareto"]), key=lambda r: r["seconds"])
    if front:
        xs, ys = [], []
        for r in front:
            if xs:
                xs.append(r["seconds"])
                ys.append(ys[-1])
            xs.append(r["seconds"])
            ys.append(r["score"])
        ax.plot(xs, ys, color="#222222", lw=1.2, ls="--", zorder=4, label="Pareto front")
        ax.scatter([r["seconds"] for r in front], [r["score"] for r in front], s=110, facecolors="none", edgecolors="#222222", lw=1.4, zorder=5)
        for r in front:
            ax.annotate(f"#{r['trial']}", (r["seconds"], r["score"]), textcoords="offset points", xytext=(5, -11), fontsize=8)
    best = report.get("best")
    if best and best.get("seconds") is not None:
        ax.scatter([best["seconds"]], [best["score"]], s=220, marker="*", color="gold", edgecolors="black", zorder=6, label="best")
    rec = [r for r in lb if r["recommended"] and r["state"] == "COMPLETE"]
    if rec:
        ax.scatter([r["seconds"] for r in rec], [r["score"] for r in rec], s=170, marker="s", facecolors="none", edgecolors="#d62728", lw=1.5, zorder=5, label="recommended")
    dlv = [r for r in lb if r.get("delivered") and r["state"] == "COMPLETE" and not (best and r["trial"] == best.get("trial"))]
    if dlv:
        ax.scatter([r["seconds"] for r in dlv], [r["score"] for r in dlv], s=150, marker="D", facecolors="none", edgecolors="#17612f", lw=1.6, zorder=6, label="delivered (one-SE rule)")
    secs = [r["seconds"] for r in lb if r["seconds"] > 0]
    if secs and max(secs) / max(min(secs), 1e-9) > 20:
        _log_seconds_axis(ax)
    ax.set_xlabel("compute per trial (seconds)")
    ax.set_ylabel(mpl_text(report["metric"]))
    ax.set_title("Accuracy vs cost (up-left is better)" if report["direction"] != "minimize" else "Score vs cost (down-left is better)", fontsize=11)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best", framealpha=0.85)
    return _png(fig)


def _error_bars(ax, pts: list[tuple[float, float, Any]], color: str) -> None:
    """± one standard error as thin vertical bars (points without a standard error get none)."""
    pts = [(x, y, se) for x, y, se in pts if isinstance(se, (int, float)) and se > 0 and math.isfinite(se)]
    if pts:
        ax.errorbar([p[0] for p in pts], [p[1] for p in pts], yerr=[p[2] for p in pts], fmt="none", ecolor=color, elinewidth=0.9, alpha=0.45, capsize=2, zorder=2)


def _history(report: dict[str, Any]) -> bytes | None:
    hist = report["optimisation_history"]
    if not any(h["score"] is not None for h in hist):
        return None
    colors = _colors(report["matrix"]["strategies"])
    fig = _fig(7.5, 3.8)
    ax = fig.add_subplot(111)
    for s in report["matrix"]["strategies"]:
        pts = [h for h in hist if (h["strategy"] or "?") == s and h["state"] == "COMPLETE" and h["score"] is not None]
        if pts:
            ax.scatter([h["trial"] for h in pts], [h["score"] for h in pts], s=28, color=colors[s], label=mpl_text(s), zorder=3)
    pr = [h for h in hist if h["state"] == "PRUNED" and h["score"] is not None]
    if pr:
        ax.scatter([h["trial"] for h in pr], [h["score"] for h in pr], s=24, marker="x", color="#999999", label="pruned", zorder=2)
    bsf = [h for h in hist if h["best_so_far"] is not None]
    if bsf:
        ax.step([h["trial"] for h in bsf], [h["best_so_far"] for h in bsf], where="post", color="#222222", lw=1.2, label="best so far")
    rec = [h for h in hist if h["recommended"] and h["score"] is not None]
    if rec:
        ax.scatter([h["trial"] for h in rec], [h["score"] for h in rec], s=150, marker="s", facecolors="none", edgecolors="#d62728", lw=1.5, label="recommended", zorder=4)
    fails = [h["trial"] for h in hist if h["state"] == "FAIL"]
    if fails:
        lo = min(h["score"] for h in hist if h["score"] is not None)
        ax.scatter(fails, [lo] * len(fails), marker="v", color="#d62728", s=24, label="failed (no score)", zorder=2)
    ax.set_xlabel("trial number")
    ax.set_ylabel(mpl_text(report["metric"]))
    ax.set_title("Optimisation history", fontsize=11)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best", framealpha=0.85)
    return _png(fig)


def _curves(report: dict[str, Any]) -> bytes | None:
    curves = [c for c in report["learning_curves"] if any(h["val_score"] is not None or h["loss"] is not None for h in c["history"])]
    if not curves:
        return None
    colors = _colors(report["matrix"]["strategies"])
    fig = _fig(9.0, 3.8)
    ax1 = fig.add_subplot(121)
    ax2 = fig.add_subplot(122)
    for c in curves:
        col = colors.get(c["strategy"], "#333333")
        xs = list(range(1, len(c["history"]) + 1))
        label = mpl_text(f"{c['strategy']} (#{c['trial']}, {c['backbone']})", 40)
        vs = [(x, h["val_score"]) for x, h in zip(xs, c["history"]) if h["val_score"] is not None]
        ls = [(x, h["loss"]) for x, h in zip(xs, c["history"]) if h["loss"] is not None]
        if vs:
            ax1.plot([p[0] for p in vs], [p[1] for p in vs], marker="o", ms=3, color=col, label=label)
        if ls:
            ax2.plot([p[0] for p in ls], [p[1] for p in ls], marker="o", ms=3, color=col, label=label)
        ft = next((x for x, h in zip(xs, c["history"]) if h["phase"] == "fine_tune"), None)
        if ft is not None:
            for ax in (ax1, ax2):
                ax.axvline(ft - 0.5, color=col, ls=":", lw=1)
    ax1.set_title(mpl_text(f"validation {report['metric']}"), fontsize=11)
    ax2.set_title("training loss", fontsize=11)
    for ax in (ax1, ax2):
        ax.set_xlabel("epoch (head, then fine-tune after the dotted line)")
        ax.grid(alpha=0.3)
        ax.xaxis.label.set_fontsize(8)
    ax1.legend(fontsize=7, loc="best", framealpha=0.85)
    return _png(fig)


def _importances(report: dict[str, Any]) -> bytes | None:
    imp = report["importances"]
    if not imp.get("available") or not imp.get("values"):
        return None
    items = sorted(imp["values"].items(), key=lambda kv: kv[1])
    fig = _fig(7.0, max(2.0, 0.35 * len(items) + 1.0))
    ax = fig.add_subplot(111)
    ax.barh([mpl_text(k) for k, _ in items], [v for _, v in items], color="#1f77b4")
    for i, (_, v) in enumerate(items):
        ax.text(v, i, f" {v:.2f}", va="center", fontsize=8)
    ax.set_xlabel("importance (fANOVA, share of score variance)")
    ax.set_title("Hyperparameter importances", fontsize=11)
    ax.set_xlim(0, max(v for _, v in items) * 1.18 or 1)
    return _png(fig)


def _confusion(report: dict[str, Any]) -> bytes | None:
    pc = report["per_class"]
    if not pc.get("available"):
        return None
    return confusion_png(pc["labels"], pc["confusion"], "Confusion matrix (validation; colour = share of the true class)")


def confusion_png(labels: list[str], cm: list[list[int]], title: str) -> bytes | None:
    """The confusion matrix ``cm`` (rows: true class) as a picture, coloured by the share of each
    true class; None above 60 classes."""
    k = len(labels)
    if k == 0 or k > 60:
        return None
    import numpy as np

    arr = np.asarray(cm, dtype=float)
    rows = arr.sum(axis=1, keepdims=True)
    norm = np.divide(arr, rows, out=np.zeros_like(arr), where=rows > 0)
    side = min(11.0, max(4.0, 0.32 * k + 2.5))
    fig = _fig(side + 1.0, side)
    ax = fig.add_subplot(111)
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    fs = 8 if k <= 15 else 6 if k <= 30 else 5
    ax.set_xticks(range(k))
    ax.set_yticks(range(k))
    ax.set_xticklabels([mpl_text(x, 18) for x in labels], rotation=60, ha="right", fontsize=fs)
    ax.set_yticklabels([mpl_text(x, 18) for x in labels], fontsize=fs)
    if k <= 20:
        for i in range(k):
            for j in range(k):
                if cm[i][j]:
                    ax.text(j, i, str(cm[i][j]), ha="center", va="center", fontsize=fs, color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=ax, fraction=0.04)
    return _png(fig)


def _reliability(report: dict[str, Any]) -> bytes | None:
    """Accuracy against confidence per bin of the delivered model's out-of-fold probabilities,
    before and after calibration (a calibrated model sits on the diagonal)."""
    bins = ((report.get("on_new_data") or {}).get("reliability")) or {}
    if not bins:
        return None
    fig = _fig(5.2, 4.4)
    ax = fig.add_subplot(111)
    ax.plot([0, 1], [0, 1], color="#999", linestyle="--", linewidth=1, label="calibrated")
    for (key, label), color in zip((("bins_before", "before"), ("bins_after", "after scaling")), _PALETTE):
        b = bins.get(key)
        if not b:
            continue
        pts = [(c, a, n) for c, a, n in zip(b["confidence"], b["accuracy"], b["count"]) if n and c is not None and a is not None]
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", color=color, label=label)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence (top class probability)")
    ax.set_ylabel("accuracy")
    ax.set_title("Reliability (out-of-fold items)", fontsize=10)
    ax.legend(fontsize=8, loc="upper left")
    return _png(fig)


def run_plots(report: dict[str, Any]) -> dict[str, bytes]:
    """name -> PNG bytes for every figure the report can draw; a figure that fails is skipped (noted)."""
    out: dict[str, bytes] = {}
    for name, fn in (
        ("pareto", _scatter),
        ("history", _history),
        ("curves", _curves),
        ("importances", _importances),
        ("confusion", _confusion),
        ("reliability", _reliability),
    ):
        try:
            png = fn(report)
        except Exception as exc:  # a plot must never sink the report
            report.setdefault("warnings", []).append(f"plot {name!r} failed: {type(exc).__name__}: {exc}")
            continue
        if png:
            out[name] = png
    return out


def compare_plot(cmp: dict[str, Any]) -> bytes | None:
    runs = [r for r in cmp["runs"] if r["n_samples"] is not None]
    if not runs:
        return None
    strategies = cmp["strategies"]
    colors = _colors(strategies)
    fig = _fig(8.0, 4.4)
    ax = fig.add_subplot(111)
    for s in strategies:
        pts = [(r["n_samples"], r["strategy_scores"].get(s)) for r in runs if r["strategy_scores"].get(s) is not None]
        if pts:
            pts.sort()
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", color=colors[s], label=mpl_text(s))
            _error_bars(ax, [(r["n_samples"], r["strategy_scores"][s], (r.get("strategy_ses") or {}).get(s)) for r in runs if r["strategy_scores"].get(s) is not None], colors[s])
    for r in runs:
        if r["winner_strategy"] is not None and r["best_score"] is not None:
            ax.scatter([r["n_samples"]], [r["best_score"]], marker="*", s=240, color=colors.get(r["winner_strategy"], "gold"), edgecolors="black", zorder=5)
            if r["agrees"] is False:
                ax.annotate("rec. disagreed", (r["n_samples"], r["best_score"]), textcoords="offset points", xytext=(6, 8), fontsize=8, color="#d62728")
    bl = sorted((r["n_samples"], r["baseline_score"]) for r in runs if r["baseline_score"] is not None)
    if bl:
        ax.plot([p[0] for p in bl], [p[1] for p in bl], ls="--", color="#555555", marker="s", ms=4, label="classical baseline")
    sizes = [r["n_samples"] for r in runs if r["n_samples"] > 0]
    if sizes and max(sizes) / max(min(sizes), 1) >= 8:
        _log_seconds_axis(ax)
    ax.set_xlabel("dataset size (samples)")
    ax.set_ylabel(mpl_text(cmp["metric"]))
    ax.set_title("Best score per strategy vs dataset size (star = winner)", fontsize=11)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best", framealpha=0.85)
    if not math.isfinite(ax.get_ylim()[0]):  # pragma: no cover
        return None
    return _png(fig)
