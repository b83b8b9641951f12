"""Writing a run's report files (atomic) next to its results."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

from automl_tl.killpoints import kill_point
from automl_tl.report._build import build_report
from automl_tl.report._io import atomic_write_bytes, atomic_write_text
from automl_tl.report._plots import run_plots
from automl_tl.report._render import render_html, render_markdown

__all__ = ["write_report", "write_files"]


def write_files(out_dir: Path, stem: str, report: dict[str, Any], pngs: dict[str, bytes], html: str, markdown_fn) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    img_dir = out_dir / f"{stem}_files"
    images: dict[str, str] = {}
    for name, png in pngs.items():
        atomic_write_bytes(img_dir / f"{name}.png", png)
        images[name] = f"{stem}_files/{name}.png"
    if img_dir.is_dir():  # figures from an earlier report that this one no longer draws
        for old in img_dir.glob("*.png"):
            if old.stem not in pngs:
                try:
                    old.unlink()
                except OSError:
                    pass
    json_path = atomic_write_text(out_dir / f"{stem}.json", json.dumps(report, indent=2, ensure_ascii=False, allow_nan=False) + "\n")
    md_path = atomic_write_text(out_dir / f"{stem}.md", markdown_fn(report, images))
    kill_point("report")
    html_path = atomic_write_text(out_dir / f"{stem}.html", html)  # last: its presence means the set is complete
    return {"html": html_path, "md": md_path, "json": json_path}


def write_report(run_dir: str | Path, out_dir: str | Path | None = None, *, storage: str | None = None,
                 strategies: Iterable[Any] | None = None) -> dict[str, Path]:
    """Write report.html (self-contained), report.md (+ report_files/*.png) and report.json.

    ``out_dir`` defaults to ``run_dir``; ``storage``, a SQLAlchemy URL, reads the trials from that
    study instead of the run's ``study.db``; ``strategies``, the registered strategies, describes those
    the run did not record (:mod:`automl_tl.report._declared`). Returns ``{"html": ..., "md": ..., "json": ...}``.
    """
    run_dir = Path(run_dir)
    out = Path(out_dir) if out_dir is not None else run_dir
    report = build_report(run_dir, storage=storage, strategies=strategies)
    pngs = run_plots(report)  # may append plot failures to report["warnings"]
    html = render_html(report, pngs)
    return write_files(out, "report", report, pngs, html, render_markdown)
