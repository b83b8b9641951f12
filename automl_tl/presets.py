"""Presets: ``fast``, ``balanced`` (the default) and ``best``, each a budget, a candidate set and
a strategy set (``automl-tl fit --preset NAME``, ``AutoTransfer(preset=NAME)``).

A preset fills the settings it names that the user left unset (``None``); a setting given
explicitly wins. The budget is one setting: ``--trials`` or ``--time-budget`` given replaces the
preset's budget whole (its trial count and its time), so ``--preset fast --trials 30`` runs 30
trials with no time limit, as ``--trials 30`` alone does. Measured times and accuracies of each
preset are in docs/benchmarks.md ("Presets").

Like AutoGluon's ``medium_quality`` / ``best_quality``, a preset is data, not code: a frozen
record here, read by the estimator in one place (:func:`settings`).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Sequence

from automl_tl import budget
from automl_tl.errors import ConfigError

#: the preset used when none is given: today's defaults, unchanged
DEFAULT_PRESET = "balanced"


@dataclass(frozen=True)
class Preset:
    """:param trials: the trial budget when the user gives no budget (None: no trial limit).
    :param time_budget: the time budget when the user gives no budget (None: none).
    :param strategies: the strategies searched (None: every registered one).
    :param compare_strategies: try every strategy once on one backbone (the report compares them).
    :param patience: stop after this many trials without progress (0: never early).
    :param ensemble: average the selected model with linear probes when that helps on validation.
    :param pretrained: how many pretrained candidates, the smallest first (None: all of those
        whose weights are here); classical featurizers (pixels, TF-IDF, MFCC) are always kept.
    :param opt_in: the opt-in backbones too (``BackboneSpec.opt_in``), which are otherwise
        searched only when named.
    :param slow: the slow backbones (``BackboneSpec.slow``, e.g. MPNet): True always, False never
        (unless named), None when the fit has a time budget (the probe then times them and leaves
        out what the budget cannot hold).
    """

    name: str
    description: str
    trials: int | None
    time_budget: str | None
    strategies: tuple[str, ...] | None
    compare_strategies: bool
    patience: int
    ensemble: bool
    pretrained: int | None
    opt_in: bool = False
    slow: bool | None = None


PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset("fast", "about two minutes: feature extraction on the two smallest pretrained backbones and "
                   "the classical baseline, 8 trials at most, stop after 4 without progress",
           trials=8, time_budget="2m", strategies=("feature_extraction",), compare_strategies=False,
           patience=4, ensemble=True, pretrained=2, slow=False),
    Preset("balanced", "the defaults: 20 trials over every backbone whose weights are here (the slow "
                       "ones, e.g. mpnet-base, only under a --time-budget) and every strategy, stop "
                       "after 15 without progress",
           trials=20, time_budget=None, strategies=None, compare_strategies=False, patience=15,
           ensemble=True, pretrained=None),
    Preset("best", "up to 20 minutes: 100 trials at most over every backbone (the slow and the "
                   "opt-in ones too, e.g. mpnet-base) and every strategy, each strategy tried once on the "
                   "recommended backbone first, stop after 30 without progress",
           trials=100, time_budget="20m", strategies=None, compare_strategies=True, patience=30,
           ensemble=True, pretrained=None, opt_in=True, slow=True),
)}


def get(name: str | None) -> Preset:
    """The preset ``name`` (None: :data:`DEFAULT_PRESET`); an unknown name is a ConfigError
    (exit 2) listing the presets."""
    name = DEFAULT_PRESET if name is None else str(name).strip().lower()
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}: choose one of {', '.join(PRESETS)} "
                          f"(`automl-tl fit --help` says what each one does)")
    return PRESETS[name]


@dataclass(frozen=True)
class Settings:
    """What a fit runs with once the preset has filled what the user left unset."""

    preset: str
    trials: int | None
    time_budget: Any
    strategies: Sequence[str] | None
    compare_strategies: bool
    patience: int
    ensemble: bool
    pretrained: int | None
    opt_in: bool
    slow: bool

    def to_dict(self) -> dict:
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v) for f in fields(self)}


def settings(est) -> Settings:
    """The settings of estimator ``est`` (an :class:`~automl_tl.estimator.AutoTransfer`): each
    one it leaves ``None`` taken from its preset; its trials and time budget, when either is
    given, replace the preset's budget whole."""
    preset = get(getattr(est, "preset", None))
    own_budget = est.trials is not None or est.time_budget is not None
    time_budget = est.time_budget if own_budget else preset.time_budget
    return Settings(
        preset=preset.name,
        trials=est.trials if own_budget else preset.trials,
        time_budget=time_budget,
        strategies=est.strategies if est.strategies is not None else preset.strategies,
        compare_strategies=_given(est.compare_strategies, preset.compare_strategies),
        patience=_given(est.patience, preset.patience),
        ensemble=_given(est.ensemble, preset.ensemble),
        # backbones named by the user are the candidates, whatever the preset says
        pretrained=None if est.backbones else preset.pretrained,
        opt_in=preset.opt_in,
        slow=budget.given(time_budget) if preset.slow is None else preset.slow,
    )


def _given(value, default):
    return default if value is None else value


def candidates(specs: Sequence, pretrained: int | None) -> list:
    """The candidates a preset keeps of ``specs`` (those whose weights are here): every classical
    featurizer, and the ``pretrained`` smallest pretrained backbones (by parameter count; all of
    them when None)."""
    if pretrained is None:
        return list(specs)
    smallest = sorted((s for s in specs if not s.classical), key=lambda s: s.n_params)[:pretrained]
    keep = {s.name for s in smallest}
    return [s for s in specs if s.classical or s.name in keep]
