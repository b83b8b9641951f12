"""What the strategies of a run declare about themselves, and the order the report shows them in.

A report knows no strategy by name: a built-in strategy and one a plugin registers are told apart
only by what each declares on its :class:`~automl_tl.strategies.TransferStrategy` (its class
attributes): its simplicity ``rank`` (the one-standard-error rule's tie-break: 0 frozen, 1 part of
the network, 2 all of it), whether it ``fine_tunes``, its one-line ``description``, and the
``plugin`` that registered it.

Those come from the run's record first: summary.json ``"strategies"``, one entry per searched
strategy, ``{"name", "rank", "fine_tunes", "description", "plugin"}`` (as its ``candidates`` describe
the backbones), so that a report needs no plugin installed where it is written. Strategies the
record does not describe are looked up in the registry a caller passes (the strategies registered
in this process). A strategy neither describes is undeclared: it is shown after the declared ones.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping

__all__ = ["DECLARED", "declared_strategies", "order_strategies", "first_trials"]

#: what the report reads of a strategy's declarations
DECLARED = ("rank", "fine_tunes", "description", "plugin")


def _facts(get) -> dict[str, Any]:
    """The declarations ``get(key)`` answers, as plain JSON values (None where it answers nothing usable)."""
    rank, fine_tunes, description, plugin = (get(k) for k in DECLARED)
    return {
        "rank": int(rank) if isinstance(rank, (int, float)) and not isinstance(rank, bool) and math.isfinite(rank) else None,
        "fine_tunes": fine_tunes if isinstance(fine_tunes, bool) else None,
        "description": (str(description).strip() or None) if description is not None else None,
        "plugin": str(plugin) if plugin else None,
    }


def declared_strategies(summary: Mapping[str, Any], registry: Iterable[Any] | None = None) -> dict[str, dict[str, Any]]:
    """Strategy name -> its declarations (:data:`DECLARED`): the run's record (summary.json
    ``"strategies"``), then ``registry`` for the strategies the record does not describe.

    ``registry``: a :class:`~automl_tl.strategies.StrategyRegistry` (which also says each one's
    plugin) or any iterable of strategy objects; None: the record only."""
    out: dict[str, dict[str, Any]] = {}
    recorded = summary.get("strategies")
    for entry in recorded if isinstance(recorded, list) else ():
        if isinstance(entry, dict) and entry.get("name"):
            out[str(entry["name"])] = _facts(entry.get)
    plugin_of = getattr(registry, "plugin_of", None)
    for strategy in registry or ():
        name = getattr(strategy, "name", None)
        if not name or name in out:
            continue
        facts = _facts(lambda key, s=strategy: getattr(s, key, None))
        if plugin_of is not None:
            facts["plugin"] = str(plugin_of(name))
        out[str(name)] = facts
    return out


def first_trials(trials: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Strategy name ("?" when unrecorded) -> the number of its first trial in the run."""
    first: dict[str, int] = {}
    for t in trials:
        s = t.get("strategy") or "?"
        first[s] = min(first.get(s, t["trial"]), t["trial"])
    return first


def order_strategies(names: Iterable[str], declared: Mapping[str, Mapping[str, Any]], first: Mapping[str, float]) -> list[str]:
    """``names`` simplest first, by their declared ``rank``; on equal ranks (and among undeclared
    strategies, shown last) in the order the run first tried them (``first``: name -> position),
    then by name."""
    def key(s: str) -> tuple:
        rank = (declared.get(s) or {}).get("rank")
        return (rank is None, rank or 0, first.get(s, math.inf), str(s))

    return sorted(set(names), key=key)
