"""The registry of transfer strategies, filled through ``automl_tl_register_strategies``."""

from __future__ import annotations

import difflib
import re

from automl_tl.errors import ConfigError, PluginError
from automl_tl.strategies._base import TransferStrategy

__all__ = ["StrategyRegistry"]

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class StrategyRegistry:
    """``add(strategy)`` validates at once and names the plugin that added it; ``get(name)``
    answers an unknown name with the closest matches."""

    def __init__(self) -> None:
        self._strategies: dict[str, TransferStrategy] = {}
        self._plugins: dict[str, str] = {}
        self._current_plugin: str | None = None

    def add(self, strategy: TransferStrategy) -> None:
        who = f"plugin {self._current_plugin!r}" if self._current_plugin else "a strategy"
        if not isinstance(strategy, TransferStrategy):
            raise PluginError(f"{who} registered {strategy!r}, which is not a TransferStrategy instance")
        name = getattr(strategy, "name", "")
        if not isinstance(name, str) or not _NAME.match(name):
            raise PluginError(f"{who}: strategy name {name!r} must be lower-case letters, digits and _")
        if not str(getattr(strategy, "description", "")).strip():
            raise PluginError(f"{who}: strategy {name!r} needs a one-line description")
        if name in self._strategies:
            raise PluginError(f"{who}: strategy {name!r} is already registered by plugin "
                              f"{self._plugins[name]!r}")
        if getattr(strategy, "probe_equivalent", False):
            if strategy.fine_tunes:
                raise PluginError(f"{who}: strategy {name!r} declares probe_equivalent but fine-tunes: "
                                  f"the linear probe's features are frozen")
            other = self.probe()
            if other is not None:
                raise PluginError(f"{who}: strategy {name!r} declares probe_equivalent, and so does "
                                  f"{other.name!r} (plugin {self._plugins[other.name]!r}): the engine's "
                                  f"linear probe is one strategy")
        self._strategies[name] = strategy
        self._plugins[name] = self._current_plugin or "local"

    def get(self, name: str) -> TransferStrategy:
        if name not in self._strategies:
            close = difflib.get_close_matches(name, list(self._strategies), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ConfigError(f"unknown strategy {name!r}{hint} Registered: {', '.join(self._strategies)}. "
                              f"`automl-tl strategies` lists them.")
        return self._strategies[name]

    def probe(self) -> TransferStrategy | None:
        """The registered strategy whose linear-head trial is the engine's linear probe (the one
        that declares :attr:`~automl_tl.strategies.TransferStrategy.probe_equivalent`), or None."""
        return next((s for s in self._strategies.values() if s.probe_equivalent), None)

    def plugin_of(self, name: str) -> str:
        return self._plugins[name]

    def names(self) -> tuple[str, ...]:
        return tuple(self._strategies)

    def as_dict(self) -> dict[str, TransferStrategy]:
        return dict(self._strategies)

    def __contains__(self, name: object) -> bool:
        return name in self._strategies

    def __iter__(self):
        return iter(self._strategies.values())

    def __len__(self) -> int:
        return len(self._strategies)
