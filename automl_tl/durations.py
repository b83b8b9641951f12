"""Durations as people write them (``90``, ``90s``, ``20m``, ``1.5h``, ``1h30m``, ``2 min``), read
the same way by the command line's ``--time-budget`` and the Python API's ``time_budget``.

(Hand-written: the standard library reads ISO 8601 durations only through third-party packages,
and ``pandas.Timedelta`` refuses ``1h30`` and ``2 min`` differently; this is a dozen lines.)
"""

from __future__ import annotations

import re

from automl_tl.errors import ConfigError

__all__ = ["seconds"]

_PART = r"(\d+(?:\.\d+)?)\s*(h|hours?|m|min|mins|minutes?|s|sec|secs|seconds?)?"


def seconds(value) -> float:
    """Seconds of a duration: a number (seconds) or a string such as ``90s``, ``20m``, ``1.5h``,
    ``1h30m`` or ``2 min``. Raises :class:`ConfigError` for anything else, or for 0 or less."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not value > 0:
            raise ConfigError(f"the time budget must be more than 0 seconds, not {value}")
        return float(value)
    text = str(value)
    spec = text.strip().lower().replace(" ", "")
    parts = re.findall(_PART, spec)
    if not spec or not re.fullmatch(f"(?:{_PART})+", spec) or (len(parts) > 1 and not all(u for _, u in parts)):
        raise ConfigError(f"{text!r} is not a duration: use e.g. 90s, 20m, 1.5h or 1h30m")
    total = sum(float(v) * {"h": 3600, "m": 60, "s": 1}[(u or "s")[0]] for v, u in parts)
    if total <= 0:
        raise ConfigError(f"{text!r}: the time budget must be more than 0")
    return total
