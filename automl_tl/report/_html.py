"""HTML building blocks of the report pages: the page itself (its content-security policy and style
sheet), tables, embedded images, lists, key-value tables and state badges. Everything is escaped."""

from __future__ import annotations

import base64
from typing import Any

from automl_tl.report._fmt import esc
from automl_tl.report._rows import short_text

__all__ = ["CSP", "CSS", "page", "img", "html_table", "text_table", "html_list", "kv_html",
           "state_badge"]


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


def html_table(headers: list[tuple[str, bool]], rows: list[tuple[list[str], str]], scroll: bool = False) -> str:
    """headers: (escaped label, numeric); rows: (already-escaped cells, tr class)."""
    h = "".join(f'<th class="num">{x}</th>' if num else f"<th>{x}</th>" for x, num in headers)
    body = []
    for cells, cls in rows:
        tds = "".join(f'<td class="num">{c}</td>' if headers[i][1] else f"<td>{c}</td>" for i, c in enumerate(cells))
        body.append(f'<tr class="{cls}">{tds}</tr>' if cls else f"<tr>{tds}</tr>")
    t = f"<table><thead><tr>{h}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    return f'<div class="scroll">{t}</div>' if scroll else f'<div class="wide">{t}</div>'


def text_table(head: list[tuple[str, bool]], rows: list[list[str]], scroll: bool = False) -> str:
    """An HTML table of plain-text headers and cells (all escaped here)."""
    return html_table([(esc(h), num) for h, num in head], [([esc(c) for c in row], "") for row in rows], scroll=scroll)


def html_list(items: list[Any], cls: str | None = None) -> str:
    """A bulleted list of escaped sentences."""
    return (f'<ul class="{cls}">' if cls else "<ul>") + "".join(f"<li>{esc(s)}</li>" for s in items) + "</ul>"


def kv_html(rows: list[tuple[str, Any]]) -> str:
    out = []
    for k, v in rows:
        text = short_text(v)
        if len(text) > 400:
            cell = f"<details><summary>{esc(text[:160])}…</summary>{esc(text)}</details>"
        else:
            cell = esc(text)
        out.append(f"<tr><th>{esc(k)}</th><td>{cell}</td></tr>")
    return '<table class="kv">' + "".join(out) + "</table>"


def state_badge(state: str) -> str:
    cls = {"COMPLETE": "ok", "PRUNED": "warn", "RUNNING": "warn", "FAIL": "bad"}.get(state, "muted")
    return f'<span class="badge {cls}">{esc(state)}</span>'
