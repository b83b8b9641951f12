"""The strategy table, as data (the strategies themselves: :mod:`automl_tl.strategies`).

| scenario                        | strategy                          |
|---------------------------------|-----------------------------------|
| small dataset, similar task     | feature extraction                |
| medium dataset, similar task    | fine-tune the top blocks          |
| large dataset, similar task     | fine-tune all blocks              |
| different task (any size)       | feature extraction + a new head   |

Size is measured in examples per class (median over classes), with thresholds
``small < 150 <= medium < 1000 <= large`` (see docs/strategy.md for the measurements behind them),
which a modality may set for itself (the text plugin: ``small < 500``);
"similar" means the profile's measured similarity to the backbone's pretraining domain is at or
above the modality's threshold. Plugins may change thresholds, replace rules or add rules through
``automl_tl_adjust_strategy_table``; the table is validated so that every (size, similarity)
pair matches exactly one rule.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Mapping, Sequence

from automl_tl.errors import PluginError

__all__ = ["StrategyRule", "StrategyTable", "Recommendation", "SIZES",
           "FEATURE_EXTRACTION", "FINE_TUNE_TOP", "LP_FT"]

# the built-in strategies the default table names (any registered strategy may be named)
FEATURE_EXTRACTION = "feature_extraction"
FINE_TUNE_TOP = "fine_tune_top"
LP_FT = "lp_ft"
SIZES = ("small", "medium", "large")


@dataclass(frozen=True, kw_only=True)
class StrategyRule:
    """One row: which profiles it covers, the strategy, the configuration to try first, why."""

    name: str
    sizes: frozenset[str]
    similar: bool | None  # None: either
    strategy: str
    params: Mapping[str, Any] = field(default_factory=dict)
    reason: str = ""

    def matches(self, size: str, similar: bool) -> bool:
        return size in self.sizes and (self.similar is None or self.similar == similar)


@dataclass(frozen=True, kw_only=True)
class Recommendation:
    rule: str
    strategy: str
    backbone: str
    params: dict
    reason: str

    def to_dict(self) -> dict:
        return asdict(self)


_BASE = {"head_lr": 1e-3, "dropout": 0.2, "head_epochs": 30}
_FT = {"backbone_lr": 1e-4, "ft_epochs": 3, "augment": True}


class StrategyTable:
    def __init__(self, rules=(), *, small_below: int = 150, large_from: int = 1000) -> None:
        self._rules: list[StrategyRule] = list(rules)
        self.small_below = small_below
        self.large_from = large_from
        #: modality -> the thresholds it sets for itself (the others are the table's)
        self._by_modality: dict[str, dict[str, int]] = {}
        self._current_plugin: str | None = None
        #: what the registered strategies declare (:meth:`bind`): the names of those that do not
        #: fine-tune, and of the one whose linear head is the probe (``probe_equivalent``). An
        #: unbound table (tests) knows the built-in feature extraction only.
        self.frozen: frozenset[str] = frozenset({FEATURE_EXTRACTION})
        self.probe: str = FEATURE_EXTRACTION

    @classmethod
    def default(cls) -> "StrategyTable":
        return cls([
            StrategyRule(
                name="small_similar", sizes=frozenset({"small"}), similar=True,
                strategy=FEATURE_EXTRACTION, params=_BASE | {"head_units": 0},
                reason="{per_class:.0f} examples per class is small and the data resembles the "
                       "backbone's pretraining data (similarity {similarity:.2f}): its features "
                       "already fit, and fine-tuning this little data would overfit. Train a "
                       "linear head on frozen features."),
            StrategyRule(
                name="medium_similar", sizes=frozenset({"medium"}), similar=True,
                strategy=FINE_TUNE_TOP, params=_BASE | _FT | {"head_units": 0, "unfreeze_blocks": 2},
                reason="{per_class:.0f} examples per class is enough to adapt the most "
                       "task-specific (top) blocks of a backbone whose pretraining data resembles "
                       "yours (similarity {similarity:.2f}), not enough to retrain all of it."),
            StrategyRule(
                name="large_similar", sizes=frozenset({"large"}), similar=True,
                strategy=LP_FT, params=_BASE | _FT | {"head_units": 0, "backbone_lr": 3e-5},
                reason="{per_class:.0f} examples per class is large: fine-tuning every block at a "
                       "low learning rate adapts the whole network without overfitting "
                       "(similarity {similarity:.2f}); it starts from the linear probe (LP-FT), so "
                       "the pretrained features are adapted rather than distorted."),
            StrategyRule(
                name="different", sizes=frozenset(SIZES), similar=False,
                strategy=FEATURE_EXTRACTION,
                params=_BASE | {"head_units": 256, "dropout": 0.3, "features": "mid"},
                reason="the data differs from the backbone's pretraining domain (similarity "
                       "{similarity:.2f} < {threshold:.2f}): start from frozen, more generic "
                       "mid-level features (where the backbone offers them) and learn a new, "
                       "non-linear head on them; the search then tries fine-tuning too."),
        ])

    # ------------------------------------------------------------------ editing (plugin API)
    def add(self, rule: StrategyRule) -> None:
        if any(r.name == rule.name for r in self._rules):
            raise PluginError(f"plugin {self._current_plugin!r}: strategy rule {rule.name!r} exists; "
                              f"use table.replace()")
        self._rules.insert(0, rule)

    def replace(self, name: str, rule: StrategyRule) -> None:
        for i, r in enumerate(self._rules):
            if r.name == name:
                self._rules[i] = rule
                return
        raise PluginError(f"plugin {self._current_plugin!r}: no strategy rule named {name!r}")

    def remove(self, name: str) -> None:
        self._rules = [r for r in self._rules if r.name != name]

    def set_thresholds(self, *, small_below: int | None = None, large_from: int | None = None,
                       modality: str | None = None) -> None:
        """Set the size thresholds (examples per class); with ``modality``, for that modality's
        data only (a threshold it does not set stays the table's)."""
        if modality is not None:
            own = self._by_modality.setdefault(modality, {})
            own |= {k: int(v) for k, v in (("small_below", small_below), ("large_from", large_from)) if v is not None}
            return
        self.small_below = small_below if small_below is not None else self.small_below
        self.large_from = large_from if large_from is not None else self.large_from

    def thresholds(self, modality: str | None = None) -> tuple[int, int]:
        """``(small_below, large_from)`` for data of ``modality``."""
        own = self._by_modality.get(modality, {}) if modality else {}
        return own.get("small_below", self.small_below), own.get("large_from", self.large_from)

    @property
    def rules(self) -> tuple[StrategyRule, ...]:
        return tuple(self._rules)

    def validate(self, strategies: Sequence[str] = (FEATURE_EXTRACTION, FINE_TUNE_TOP, LP_FT)) -> None:
        """Thresholds ordered, every rule names a registered strategy (``strategies``), and every
        (size, similarity) pair matches exactly one rule."""
        for modality in (None, *self._by_modality):
            small, large = self.thresholds(modality)
            if not 0 < small < large:
                raise PluginError(f"strategy table thresholds{f' for {modality}' if modality else ''} must "
                                  f"satisfy 0 < small_below ({small}) < large_from ({large})")
        for r in self._rules:
            if r.strategy not in strategies:
                raise PluginError(f"strategy rule {r.name!r}: unknown strategy {r.strategy!r} "
                                  f"(registered: {', '.join(strategies)})")
        for size in SIZES:
            for similar in (True, False):
                hits = [r.name for r in self._rules if r.matches(size, similar)]
                if len(hits) != 1:
                    raise PluginError(f"strategy table: a {size} dataset with similar={similar} "
                                      f"matches {len(hits)} rules ({hits}); each case needs exactly one")

    def bind(self, registry) -> None:
        """Take what the registered strategies (a :class:`~automl_tl.strategies.StrategyRegistry`)
        declare: which do not fine-tune, and which is the probe's."""
        self.frozen = frozenset(s.name for s in registry if not s.fine_tunes)
        probe = registry.probe()
        self.probe = probe.name if probe is not None else self.probe

    # ------------------------------------------------------------------ lookup
    def size_category(self, per_class: float, modality: str | None = None) -> str:
        small, large = self.thresholds(modality)
        if per_class < small:
            return "small"
        return "medium" if per_class < large else "large"

    def rule_for(self, size: str, similar: bool) -> StrategyRule:
        for r in self._rules:
            if r.matches(size, similar):
                return r
        raise PluginError(f"strategy table has no rule for size={size}, similar={similar}")

    def recommend(self, profile, *, backbone: str, fine_tunable: bool = True) -> Recommendation:
        info = profile.backbones.get(backbone, {})
        similarity = float(info.get("similarity") or 0.0)
        similar = bool(info.get("similar", False))
        rule = self.rule_for(profile.size_category, similar)
        params = dict(rule.params)
        strategy = rule.strategy
        note = ""
        if not fine_tunable and strategy not in self.frozen:  # the rule's strategy fine-tunes
            strategy, note = self.probe, f" ({backbone} can only extract features.)"
            params = {k: v for k, v in params.items() if k not in _FT and k != "unfreeze_blocks"}
        reason = rule.reason.format(per_class=profile.median_per_class, similarity=similarity,
                                    threshold=profile.similarity_threshold, n=profile.n_samples)
        counts = dict(getattr(profile, "class_counts", {}) or {})
        if counts and getattr(profile, "imbalanced", False):
            # "150 examples per class" of 285 + 15 is the median; the user should see the minority
            # class's size (training uses class weights for it)
            smallest = min(counts, key=counts.get)
            reason += (f" (Examples per class is the median over classes; the smallest, "
                       f"{smallest!r}, has {counts[smallest]}: class weights balance it in training.)")
        return Recommendation(rule=rule.name, strategy=strategy, backbone=backbone, params=params,
                              reason=f"{reason} Backbone: {backbone}.{note}")

    def to_dict(self) -> dict:
        return {"small_below": self.small_below, "large_from": self.large_from,
                "by_modality": {m: dict(t) for m, t in sorted(self._by_modality.items())},
                "rules": [asdict(r) | {"sizes": sorted(r.sizes)} for r in self._rules]}
