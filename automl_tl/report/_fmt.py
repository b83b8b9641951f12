"""Number and label formatting shared by the JSON sentences, HTML and Markdown."""

from __future__ import annotations

import html
import math
import re
from typing import Any

__all__ = ["fmt_score", "fmt_interval", "fmt_seconds", "fmt_points", "fmt_value", "describe_config", "esc", "md", "mpl_text"]


def fmt_score(x: Any) -> str:
    if x is None:
        return "—"
    try:
        return f"{float(x):.4f}"
    except (TypeError, ValueError):
        return str(x)


def fmt_interval(x: Any, se: Any) -> str:
    """A score with its interval, "0.9125 ± 0.0250" (one standard error); the bare score when the SE is unknown."""
    if x is None:
        return "—"
    try:
        s = float(se) if se is not None and not isinstance(se, bool) else None
    except (TypeError, ValueError):
        s = None
    if s is None or not math.isfinite(s):
        return fmt_score(x)
    return f"{fmt_score(x)} ± {s:.4f}"


def fmt_seconds(x: Any) -> str:
    if x is None:
        return "—"
    s = float(x)
    if s < 60:
        return f"{s:.1f} s"
    if s < 3600:
        m, sec = divmod(int(round(s)), 60)
        return f"{m} min {sec:02d} s"
    h, rem = divmod(int(round(s)), 3600)
    return f"{h} h {rem // 60:02d} min"


def fmt_points(x: float | None, point: float) -> str:
    if x is None:
        return "—"
    p = x / point
    unit = "point" if abs(round(p, 1)) == 1 else "points"
    return f"{p:.1f} {unit}"


def fmt_value(x: Any) -> str:
    """A hyperparameter value for a table cell."""
    if x is None:
        return "—"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, float):
        if x != 0 and (abs(x) < 1e-3 or abs(x) >= 1e5):
            return f"{x:.2e}"
        return f"{x:.4g}"
    return str(x)


def describe_config(t: dict[str, Any]) -> str:
    """"backbone with strategy", and how many blocks it unfroze where the trial searched that
    (whichever strategy it is: only a strategy that suggests ``unfreeze_blocks`` records it)."""
    bb = t.get("backbone") or "?"
    st = t.get("strategy") or "?"
    out = f"{bb} with {st}"
    if t.get("unfreeze_blocks") not in (None, "", 0):
        out += f" ({t['unfreeze_blocks']} blocks unfrozen)"
    return out


def esc(x: Any) -> str:
    """HTML-escape anything (quotes too, so it is safe inside attributes)."""
    return html.escape("" if x is None else str(x), quote=True)


def md(x: Any) -> str:
    """Escape for a Markdown table cell / paragraph: no raw HTML, no broken tables."""
    s = html.escape("" if x is None else str(x), quote=False)
    s = s.replace("\\", "\\\\").replace("|", "\\|").replace("`", "\\`").replace("*", "\\*")
    s = re.sub(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])", r"\\_", s)  # intraword _ is no emphasis in GFM
    s = s.replace("[", "\\[").replace("]", "\\]")
    return " ".join(s.split())


def mpl_text(x: Any, limit: int = 28) -> str:
    """Plain text for matplotlib: no mathtext ($ escaped), shortened."""
    s = " ".join(("" if x is None else str(x)).split())
    if len(s) > limit:
        s = s[: limit - 1] + "…"
    return s.replace("$", r"\$")
