"""The time budget (``--time-budget``, ``AutoTransfer(time_budget=)``): read once from what the
user wrote, then passed as one :class:`Budget` object through the probe, the search, the trials,
the heads' training loops and the refit.

A budget's clock starts where the caller says (the command line: when its process started, so a
slow start-up is inside the budget); its deadline is a ``time.monotonic()`` value. "No time
budget" is :data:`NO_BUDGET`, whose :meth:`~Budget.left` is infinite: code asks how much time is
left, never whether there is a budget at all.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, replace

from automl_tl.errors import ConfigError

__all__ = ["Budget", "NO_BUDGET", "seconds", "given", "require_a_budget"]

_PART = r"(\d+(?:\.\d+)?)\s*(h|hours?|m|min|mins|minutes?|s|sec|secs|seconds?)?"


def seconds(value) -> float:
    """Seconds of a duration: a number (seconds) or a string such as ``90s``, ``20m``, ``1.5h``,
    ``1h30m`` or ``2 min``. Raises :class:`ConfigError` for anything else, or for 0 or less.

    (Hand-written: the standard library reads ISO 8601 durations only through third-party
    packages, and ``pandas.Timedelta`` refuses ``1h30`` and ``2 min`` differently.)"""
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


@dataclass(frozen=True)
class Budget:
    """``seconds`` of wall time from ``started`` (``time.monotonic()``), of which the last
    ``reserve`` seconds are kept for something after the work at hand (the refit, saving).
    ``seconds`` is infinite for no time budget."""

    seconds: float = math.inf
    started: float = 0.0
    reserve: float = 0.0

    @classmethod
    def of(cls, value, *, started: float | None = None) -> "Budget":
        """The budget of what a user wrote (``600``, ``"10m"``, ``"1h30m"``: :func:`seconds`), its
        clock started at ``started`` (default now); :data:`NO_BUDGET` for None."""
        if value is None:
            return NO_BUDGET
        total = seconds(value)
        return cls(seconds=total, started=time.monotonic() if started is None else started)

    @property
    def limited(self) -> bool:
        """Whether there is a time budget at all."""
        return math.isfinite(self.seconds)

    @property
    def deadline(self) -> float:
        """When the budget ends (``time.monotonic()``; infinite without one), reserve included."""
        return self.started + self.seconds

    def left(self) -> float:
        """Seconds left before the reserve (negative once into it; infinite without a budget)."""
        if not self.limited:
            return math.inf
        return self.deadline - time.monotonic() - self.reserve

    def past(self) -> bool:
        """Whether the time before the reserve is used up."""
        return self.left() <= 0

    def keeping(self, reserve: float) -> "Budget":
        """The same budget with its last ``reserve`` seconds kept back (replacing any reserve)."""
        return replace(self, reserve=float(reserve))

    def share(self, fraction: float) -> "Budget":
        """The first ``fraction`` of this budget (the probe's part of a run's)."""
        return self if not self.limited else replace(self, seconds=fraction * self.seconds)


#: no time budget: :meth:`Budget.left` is infinite, :meth:`Budget.past` never true
NO_BUDGET = Budget()


def given(time_budget) -> bool:
    """Whether ``time_budget`` (what the user gave, None for nothing, or a :class:`Budget`) limits
    the time."""
    return time_budget.limited if isinstance(time_budget, Budget) else time_budget is not None


def require_a_budget(trials: int | None, time_budget, *, trials_word: str = "--trials",
                     time_word: str = "--time-budget") -> None:
    """A search needs a trial budget, a time budget or both. ``time_budget``: what the user gave
    (None: nothing) or a :class:`Budget`; the words name the two settings as the caller's user
    writes them."""
    if trials is None and not given(time_budget):
        raise ConfigError(f"give a trial budget ({trials_word}) or a time budget ({time_word})")
