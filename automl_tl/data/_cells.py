"""One table cell as it is read: empty or not, a path written on Windows, a column's first values."""

from __future__ import annotations

import math
import os


def _missing(value) -> bool:
    """An empty table cell as pandas gives it: None or NaN."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def _native(value):
    """A relative path written on Windows (``images\\cat\\1.jpg``) as this system writes it; other
    values as they are."""
    if os.sep == "/" and isinstance(value, str) and "\\" in value and "://" not in value:
        return value.replace("\\", "/")
    return value


def _first_values(values, n: int = 20) -> list[str]:
    """The first ``n`` non-empty cells of a column, as stripped strings (ids read as numbers too)."""
    return [str(v).strip() for v in values if not _missing(v)][:n]
