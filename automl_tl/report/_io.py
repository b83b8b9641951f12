"""Small I/O helpers: atomic writes and tolerant readers (a run may still be going)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

from automl_tl.atomic import atomic_write_bytes, atomic_write_text  # noqa: F401 - the report's writers

__all__ = ["atomic_write_bytes", "atomic_write_text", "read_json", "read_csv", "to_float", "to_int", "to_bool", "jsonable"]


def read_json(path: Path, warnings: list[str] | None = None) -> Any:
    """The parsed JSON at ``path``, or None when it is missing or unreadable (noted in ``warnings``)."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        if warnings is not None:
            warnings.append(f"{path.name} could not be read ({type(exc).__name__}: {exc}); ignored.")
        return None


def read_csv(path: Path, warnings: list[str] | None = None) -> list[dict[str, str]] | None:
    path = Path(path)
    if not path.is_file():
        return None
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            return [dict(row) for row in csv.DictReader(fh)]
    except (OSError, csv.Error, UnicodeDecodeError) as exc:
        if warnings is not None:
            warnings.append(f"{path.name} could not be read ({type(exc).__name__}: {exc}); ignored.")
        return None


def to_float(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        value = value.strip()
        if not value:
            return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def to_int(value: Any) -> int | None:
    f = to_float(value)
    if f is None or f != int(f):
        return None
    return int(f)


def to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    if isinstance(value, (int, float)):
        return bool(value)
    return str(value).strip().lower() in {"true", "1", "yes", "y", "t"}


def jsonable(obj: Any) -> Any:
    """Plain JSON types only: NaN/inf become None, paths and unknown objects become strings."""
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    try:  # numpy scalars
        import numpy as np

        if isinstance(obj, np.generic):
            return jsonable(obj.item())
        if isinstance(obj, np.ndarray):
            return jsonable(obj.tolist())
    except ImportError:  # pragma: no cover
        pass
    return str(obj)
