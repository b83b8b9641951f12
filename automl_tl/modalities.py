"""Input modalities: how raw inputs of one kind are checked, described and compared.

A plugin registers a :class:`Modality` for each kind of input it brings (the vision plugin adds
``"image"``, the text plugin ``"text"``, the audio plugin ``"audio"``). The core never touches
pixels, strings or samples itself: it asks the modality.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from automl_tl.errors import ConfigError, PluginError

__all__ = ["Modality", "ModalityRegistry", "Skip", "CheckResult"]


@dataclass(frozen=True, kw_only=True)
class Skip:
    """One input left out, and why (always counted and reported, never silent)."""

    item: str
    reason: str

    def to_dict(self) -> dict:
        return {"item": self.item, "reason": self.reason}


@dataclass(frozen=True, kw_only=True)
class CheckResult:
    """What :meth:`Modality.check` found: the usable inputs (possibly cleaned) and the skips."""

    keep: tuple[int, ...]
    items: tuple[Any, ...]
    skips: tuple[Skip, ...]


class Modality:
    """Base class for a modality. Subclasses set ``name`` and implement the methods below.

    ``extensions``: file suffixes (lower case, with dot) that identify this modality's files in a
    folder dataset. ``inline``: True when a table cell holds the input itself (text) rather than a
    path to a file.
    """

    name: str = ""
    extensions: tuple[str, ...] = ()
    inline: bool = False

    def check(self, items: Sequence[Any], *, progress: bool = False) -> CheckResult:
        """Validate raw inputs; return the indices kept, the (cleaned) kept items and the skips."""
        raise NotImplementedError

    def describe(self, items: Sequence[Any]) -> dict:
        """Input statistics for the profile (JSON-able)."""
        raise NotImplementedError

    def analyse(self, items: Sequence[Any], stats: dict, spec, weights) -> dict:
        """What the profile records per candidate backbone, measured on (a sample of) ``items``.

        Returns ``{"similarity": float in [0, 1], "input_config": dict, "stats": dict}``:
        a measured similarity of the data to ``spec``'s pretraining domain (method described in
        ``similarity_method``), the backbone input settings suited to this data (image size,
        sequence length, clip duration), and backbone-specific statistics (e.g. token lengths).
        ``weights`` is a :class:`automl_tl.weights.ResolvedWeights`. Should take seconds.
        """
        raise NotImplementedError

    #: one paragraph: how ``analyse`` measures similarity, and what the numbers mean
    similarity_method: str = ""
    #: similarity at or above this counts as "similar task" in the strategy table
    similarity_threshold: float = 0.5

    def augmentation(self, input_config: dict):
        """A Keras layer applied to the adapter output in training only, or None."""
        return None


class ModalityRegistry:
    def __init__(self) -> None:
        self._items: dict[str, Modality] = {}
        self._owner: dict[str, str] = {}
        self._current_plugin: str | None = None

    def add(self, modality: Modality) -> None:
        plugin = self._current_plugin or "<direct>"
        if not isinstance(modality, Modality) or not modality.name:
            raise PluginError(f"plugin {plugin!r} registered {modality!r}: not a named Modality")
        if modality.name in self._items:
            raise PluginError(f"plugin {plugin!r}: modality {modality.name!r} is already registered "
                              f"by plugin {self._owner[modality.name]!r}")
        self._items[modality.name] = modality
        self._owner[modality.name] = plugin

    def __contains__(self, name: str) -> bool:
        return name in self._items

    def names(self) -> list[str]:
        return sorted(self._items)

    def get(self, name: str) -> Modality:
        if name not in self._items:
            raise ConfigError(f"no plugin handles modality {name!r} (installed: "
                              f"{', '.join(self.names()) or 'none'}); install automl-tl[{name}]")
        return self._items[name]

    def for_extension(self, suffix: str) -> Modality | None:
        for m in self._items.values():
            if suffix.lower() in m.extensions:
                return m
        return None
