"""HTML (one self-contained file) and Markdown renderings of a report dict. Everything is escaped.

The sections themselves: :mod:`automl_tl.report._render_html` and :mod:`automl_tl.report._render_md`;
the rows both share: :mod:`automl_tl.report._rows`; the HTML page and tables: :mod:`automl_tl.report._html`.
"""

from __future__ import annotations

from typing import Any, Callable

from automl_tl.report._html import CSP, CSS, page
from automl_tl.report._render_html import (html_baseline, html_cost, html_curves, html_delivered, html_failures, html_footer,
                                           html_leaderboard, html_matrix, html_nav, html_new_data, html_notes,
                                           html_per_class, html_profile, html_search, html_title, html_verdict)
from automl_tl.report._render_md import (md_baseline, md_cost, md_curves, md_delivered, md_failures, md_leaderboard,
                                         md_matrix, md_new_data, md_notes, md_per_class, md_profile, md_search, md_title,
                                         md_verdict)
from automl_tl.report._rows import flatten

__all__ = ["render_html", "render_markdown", "CSS", "CSP", "page", "flatten"]


# The report's sections in the order both renderers lay them out: (HTML builder, Markdown builder),
# None where one rendering has no such section. HTML builders take (report, PNG bytes per figure) and
# return "" for a section that is absent; Markdown builders take (report, image path per figure) and
# return their lines, each section ending with a blank one (none for an absent section).
_SECTIONS: list[tuple[Callable[[dict, dict], str] | None, Callable[[dict, dict], list[str]] | None]] = [
    (html_title, md_title),
    (html_nav, None),
    (html_verdict, md_verdict),
    (html_delivered, md_delivered),
    (html_new_data, md_new_data),
    (html_profile, md_profile),
    (html_leaderboard, md_leaderboard),
    (html_matrix, md_matrix),
    (html_cost, md_cost),
    (html_curves, md_curves),
    (html_search, md_search),
    (html_baseline, md_baseline),
    (html_per_class, md_per_class),
    (html_failures, md_failures),
    (html_notes, md_notes),
    (html_footer, None),
]


def render_html(report: dict[str, Any], pngs: dict[str, bytes]) -> str:
    """The report as one self-contained HTML page: its sections in order (the optional ones only when present)."""
    parts = [html(report, pngs) for html, _ in _SECTIONS if html is not None]
    return page(f"automl-tl report — {report['run_name']}", "\n".join(p for p in parts if p))


def render_markdown(report: dict[str, Any], images: dict[str, str]) -> str:
    """``images``: figure name -> relative path of its PNG (figures without a file are left out)."""
    lines = [line for _, markdown in _SECTIONS if markdown is not None for line in markdown(report, images)]
    return "\n".join(lines) + "\n"
