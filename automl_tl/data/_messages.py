"""How names are listed in a one-line message: a table's columns, classes, splits."""

from __future__ import annotations

from typing import Sequence


#: names listed in a one-line message (a table's columns, classes); the rest are counted
NAMES_SHOWN = 8


def listed(names: Sequence[str], shown: int = NAMES_SHOWN) -> str:
    """``a, b, c and 5 more``: 785 pixel columns made a 7 000-character error line, 174
    single-example classes a 3 000-character one."""
    head = ", ".join(names[:shown])
    return head + (f" and {len(names) - shown} more" if len(names) > shown else "")
