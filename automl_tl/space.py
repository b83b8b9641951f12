"""The search space (keras-tuner's hypermodel): backbone x strategy x head x each strategy's own
hyperparameters, and the recommendation as one point of it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from automl_tl.training import TrialConfig

__all__ = ["SearchSpace"]


class _Point:
    """A stand-in for an Optuna trial that answers every ``suggest_*`` from ``values`` (clipped
    into the range; the first choice, or the range's middle, where ``values`` says nothing). Run
    through :meth:`SearchSpace.suggest`, it turns a recommendation into one point of the declared
    space: the space is encoded once, in ``suggest``, and the recommendation cannot drift from it.
    A value is looked up by the parameter's name, then by its name without the ``backbone:``
    prefix (a rule says ``features="mid"``, the space asks ``mobilenetv2:features``)."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self.values = dict(values)
        self.params: dict[str, Any] = {}

    def _given(self, name: str):
        return self.values.get(name, self.values.get(name.split(":", 1)[-1]))

    def suggest_categorical(self, name, choices):
        v = self._given(name)
        self.params[name] = v if v in list(choices) else list(choices)[0]
        return self.params[name]

    def suggest_float(self, name, low, high, *, log=False, step=None):
        v = self._given(name)
        if v is None:
            v = math.sqrt(low * high) if log else (low + high) / 2
        v = min(max(float(v), low), high)
        if step:
            v = round(low + round((v - low) / step) * step, 10)
        self.params[name] = v
        return v

    def suggest_int(self, name, low, high, *, step=1, log=False):
        v = self._given(name)
        v = (low + high) // 2 if v is None else int(round(float(v)))
        v = min(max(low + (v - low) // step * step, low), high)
        self.params[name] = v
        return v


@dataclass(frozen=True, kw_only=True)
class SearchSpace:
    """The searched hyperparameters: backbone x strategy x head x the strategy's own (its
    :meth:`~automl_tl.strategies.TransferStrategy.suggest`, with its own ranges). The ranges here
    are keyword configuration, so variants are cheap: the head's, shared by every strategy, and
    the fine-tuning family's (``backbone_lr``, ``ft_epochs``: every
    :class:`~automl_tl.strategies.FineTuning` strategy asks them, and the pruner's horizon is
    ``ft_epochs``' top).

    ``strategies``: name -> registered strategy searched (order kept); names alone, or None for
    every registered strategy, are looked up in the plugins' registry.
    ``fine_tune_backbones``: the backbones fine-tuning may use (the best-ranked by the linear
    probe); the others are searched with frozen features only. None: all.
    ``probe``: the name of the strategy whose linear-head trial is the linear probe (the one that
    declares :attr:`~automl_tl.strategies.TransferStrategy.probe_equivalent`); None: the searched
    one that declares it, else the plugins' registry's (looked up only when needed).
    """

    specs: Mapping[str, Any]
    strategies: Mapping[str, Any] | Sequence[str] | None = None
    augmentable: Mapping[str, bool] = field(default_factory=dict)
    head_units: tuple[int, ...] = (0, 128, 256, 512)
    head_lr: tuple[float, float] = (1e-4, 1e-2)
    backbone_lr: tuple[float, float] = (1e-6, 3e-4)  # above ~3e-4 Adam wrecks pretrained weights
    dropout: tuple[float, float] = (0.0, 0.5)
    head_epochs: tuple[int, int] = (10, 60)
    ft_epochs: tuple[int, int] = (1, 4)
    fine_tune_backbones: tuple[str, ...] | None = None
    probe: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.strategies, Mapping):
            from automl_tl.plugin_manager import get_plugin_manager

            reg = get_plugin_manager().strategies
            object.__setattr__(self, "strategies", {n: reg.get(n) for n in (self.strategies or reg.names())})

    # ------------------------------------------------------------------ the probe strategy
    def probe_strategy(self) -> str:
        """The name of the strategy whose linear-head trial is the linear probe: ``probe``, else
        the searched strategy that declares ``probe_equivalent``, else the registered one (the
        space searches it, unasked, on a backbone no searched strategy applies to)."""
        if self.probe is None:
            name = next((n for n, s in self.strategies.items() if getattr(s, "probe_equivalent", False)), None)
            if name is None:
                from automl_tl.plugin_manager import get_plugin_manager

                name = get_plugin_manager().strategies.probe().name
            object.__setattr__(self, "probe", name)
        return self.probe

    def is_probe_strategy(self, name: str) -> bool:
        """Whether the strategy ``name`` is the probe's (a linear head on it is the linear probe)."""
        s = self.strategies.get(name)
        return bool(getattr(s, "probe_equivalent", False)) if s is not None else name == self.probe_strategy()

    def is_probe(self, cfg: TrialConfig) -> bool:
        """Whether ``cfg`` (a configuration of this space) is a linear probe: the probe strategy
        with the linear head, a deterministic function of (backbone, options) and the folds."""
        return bool(cfg.linear_head) and self.is_probe_strategy(cfg.strategy)

    # ------------------------------------------------------------------ the space
    def strategies_for(self, spec) -> list[str]:
        """The strategies searched on ``spec``: fine-tuning ones only where it may fine-tune;
        the probe strategy where none of them applies."""
        tunable = bool(spec.fine_tunable) and (self.fine_tune_backbones is None
                                               or spec.name in self.fine_tune_backbones)
        names = [n for n, s in self.strategies.items() if (tunable or not s.fine_tunes) and s.applies_to(spec)]
        return names or [self.probe_strategy()]

    def strategy_tour(self, recommendation, probes: Sequence[Mapping] = ()) -> list[dict]:
        """One point for every strategy that applies to one backbone, with the recommendation's
        values where they apply (``compare_strategies``): so that a search compares strategies
        on the same features. The backbone is the recommended one, or where that one cannot be
        fine-tuned the best-probed one that can (``probes``: best first); none: no point."""
        def fine_tunable(name):
            spec = self.specs.get(name)
            return spec is not None and any(self.strategies[s].fine_tunes for s in self.strategies_for(spec)
                                            if s in self.strategies)

        backbone = next((b for b in [recommendation.backbone, *(p["backbone"] for p in probes)]
                         if fine_tunable(b)), None)
        if backbone is None:
            return []
        return [self.point(dict(recommendation.params) | {"backbone": backbone, "strategy": name})
                for name in self.strategies_for(self.specs[backbone])]

    def suggest(self, trial) -> TrialConfig:
        backbone = trial.suggest_categorical("backbone", sorted(self.specs))
        spec = self.specs[backbone]
        names = self.strategies_for(spec)
        # one distribution per parameter name: "strategy" is asked only where there is a choice
        # (Optuna refuses one name with two sets of choices in one study)
        strategy = trial.suggest_categorical("strategy", names) if len(names) > 1 else names[0]
        strat = self.strategies.get(strategy)
        options = {k: trial.suggest_categorical(f"{backbone}:{k}", list(v)) for k, v in spec.options.items()}
        cfg: dict[str, Any] = dict(backbone=backbone, strategy=strategy, options=options)
        cfg["head_units"] = (trial.suggest_categorical("head_units", list(self.head_units))
                             if strat is None or strat.hidden_heads else 0)
        if cfg["head_units"]:
            cfg["dropout"] = round(trial.suggest_float("dropout", *self.dropout, step=0.1), 2)
            cfg["head_lr"] = trial.suggest_float("head_lr", *self.head_lr, log=True)
            cfg["head_epochs"] = trial.suggest_int("head_epochs", *self.head_epochs, step=10)
        own = strat.suggest(trial, spec, self) if strat is not None else {}
        fields = set(TrialConfig.__dataclass_fields__)
        cfg |= {k: v for k, v in own.items() if k in fields}
        cfg["extra"] = {k: v for k, v in own.items() if k not in fields}
        return TrialConfig(**cfg)

    def config(self, params: Mapping[str, Any]) -> TrialConfig:
        """The configuration that ``params`` (a trial's) describe."""
        import optuna

        return self.suggest(optuna.trial.FixedTrial(dict(params)))

    def point(self, values: Mapping[str, Any]) -> dict:
        """Optuna params of the point of this space nearest to ``values`` (see :class:`_Point`)."""
        p = _Point(values)
        self.suggest(p)
        return p.params

    def enqueue_params(self, recommendation, options: Mapping[str, Any] | None = None) -> dict:
        """The recommendation as one point of this space; ``options`` (e.g. the probe's best
        pooling) take precedence over the rule's."""
        return self.point(dict(recommendation.params) | dict(options or {})
                          | {"backbone": recommendation.backbone, "strategy": recommendation.strategy})

    def probe_params(self, backbone: str, options: Mapping[str, Any]) -> dict:
        """A trial of the probe strategy with the linear head: the probe of (backbone, options)."""
        return self.point(dict(options) | {"backbone": backbone, "strategy": self.probe_strategy(), "head_units": 0})
