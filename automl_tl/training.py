"""What one trial is: its configuration, the context shared by all trials of a search, its
result; and the model parts every strategy uses (freezing, assembling). *How* a trial trains is
its strategy's business (:mod:`automl_tl.strategies`); :func:`run_trial` and :func:`train_final`
hand each configuration to the strategy it names."""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field
from typing import Any, Collection, Mapping

import keras
import numpy as np

from automl_tl.budget import NO_BUDGET, Budget
from automl_tl.errors import RefitStopped  # noqa: F401 - importable from here, as before
from automl_tl.metrics import metric_function

__all__ = ["TrialConfig", "TrialContext", "TrialResult", "RefitStopped", "nested_layers", "design_trainable",
           "set_trainable", "freeze", "assemble", "build_at", "run_trial", "train_final"]


@dataclass(frozen=True, kw_only=True)
class TrialConfig:
    """One configuration. ``head_units=0`` is the linear probe head (logistic regression, its
    strength chosen by the run's folds); ``head_units > 0`` a hidden layer trained with Keras
    (``head_lr``, ``dropout``, ``head_epochs``). ``extra`` holds the hyperparameters a strategy
    declares beyond these (layer-wise decay's ``lr_decay``, a plugin's own)."""

    backbone: str
    strategy: str
    head_units: int = 0
    head_lr: float | None = None
    dropout: float | None = None
    head_epochs: int | None = None
    unfreeze_blocks: int | None = None
    backbone_lr: float | None = None
    ft_epochs: int | None = None
    augment: bool = False
    options: Mapping[str, Any] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def linear_head(self) -> bool:
        return not self.head_units

    def to_dict(self) -> dict:
        return asdict(self) | {"options": dict(self.options), "extra": dict(self.extra)}


@dataclass(frozen=True, kw_only=True)
class TrialContext:
    """Everything fixed across trials of one search."""

    data: Any  # LabelledData
    plan: Any  # EvaluationPlan: folds over all items; plan.train / plan.val is the hold-out split
    y: np.ndarray  # integer labels for data.items
    n_classes: int
    input_configs: Mapping[str, Mapping]  # per backbone
    weights: Mapping[str, Any]  # per backbone: ResolvedWeights
    specs: Mapping[str, Any]  # per backbone: BackboneSpec
    modality: Any
    cache: Any
    metric: str = "accuracy"
    class_weight: Mapping[int, float] | None = None
    seed: int = 0
    #: the batch size of every pass (a whole number); None: chosen per backbone and device
    #: (:func:`batch_for`, :func:`automl_tl.accelerator.batch_size_for`)
    batch_size: int | None = 32
    #: the Keras dtype policy backbones are built with: "float32" or "mixed_bfloat16"
    #: (:func:`automl_tl.accelerator.resolve_precision`); heads stay in float32
    precision: str = "float32"
    progress: bool = False
    patience: int = 5
    budget: Budget = NO_BUDGET  # the time a running trial has: it stops when that is past
    probes: dict = field(default_factory=dict)  # (backbone, options) -> ProbeResult, shared
    #: name -> TransferStrategy (the plugin manager's registry); empty: the registered ones
    strategies: Mapping[str, Any] = field(default_factory=dict)
    #: for a sample's context (:meth:`subset`): (the whole data's fingerprint, the sample's positions)
    part_of: tuple[str, np.ndarray] | None = None

    def features(self, backbone: str, options: Mapping[str, Any]) -> np.ndarray:
        """Frozen features of every item (cached on disk and in memory). A sample's features
        are not computed again for the whole data."""
        return self.features_many(backbone, [options])[0]

    def features_many(self, backbone: str, options_list) -> list[np.ndarray]:
        """:meth:`features` of several option sets, those not cached yet computed in one pass
        (one forward pass for a backbone with ``readouts``)."""
        from automl_tl.accelerator import precision_scope

        with precision_scope(self.precision):  # the cache keys features by the dtype policy too
            return self.cache.get_or_compute_many(
                spec=self.specs[backbone], weights=self.weights.get(backbone), input_config=self.input_configs[backbone],
                options_list=[dict(o) for o in options_list], items=self.data.items,
                data_fingerprint=self.data.fingerprint(), batch_size=self.batch_for(backbone),
                progress=self.progress, part_of=self.part_of)

    def batch_for(self, backbone: str) -> int:
        """The batch size of ``backbone``'s passes: :attr:`batch_size`, or when that is None the
        one chosen for it on this device (a short probe on an accelerator, once per process)."""
        if self.batch_size is not None:
            return int(self.batch_size)
        from automl_tl.accelerator import batch_size_for, forward_runner

        spec, weights, config = self.specs[backbone], self.weights.get(backbone), self.input_configs[backbone]
        runner = None
        if spec.featurize is None and not getattr(spec, "sparse", False):  # a Keras model to probe
            # 64 items spread over the data, their rows repeated: padded to the longest of them
            # (text), so the probe's memory is near the real passes'
            items = self.data.items
            sample = [items[i] for i in np.unique(np.linspace(0, len(items) - 1, min(len(items), 64)).astype(int))]
            runner = forward_runner(spec, weights, config, sample, self.precision)
        return batch_size_for(backbone, config, runner, precision=self.precision, n_items=len(self.data.items))

    def train_batch_for(self, backbone: str) -> int:
        """The batch size fine-tuning trains ``backbone`` with: :attr:`batch_size`, or when that is
        None at most :data:`~automl_tl.accelerator.DEFAULT_BATCH` (the probe picks a forward
        pass's size; a larger training batch would take fewer steps per epoch than the searched
        learning rates and epochs assume)."""
        from automl_tl.accelerator import DEFAULT_BATCH

        size = self.batch_for(backbone)
        return size if self.batch_size is not None else min(size, DEFAULT_BATCH)

    def build_backbone(self, backbone: str, options: Mapping[str, Any]):
        """A fresh build of ``backbone`` with ``options`` at the run's precision."""
        return build_at(self.specs[backbone], self.weights.get(backbone), self.input_configs[backbone], options,
                        self.precision)

    def subset(self, index) -> "TrialContext":
        """This context over the items ``index`` only (the run's folds restricted to them), with
        probes of its own."""
        from dataclasses import replace

        index = np.asarray(index, dtype=np.int64)
        return replace(self, data=self.data.subset(index), plan=self.plan.restrict(index), y=self.y[index],
                       probes={}, part_of=(self.data.fingerprint(), index))

    def se(self, y_true, y_pred, index) -> float:
        """Standard error of the metric on these predictions (groups resampled whole)."""
        from automl_tl.evaluation import bootstrap_se

        groups = None if self.data.groups is None else np.asarray(self.data.groups)[index]
        return bootstrap_se(y_true, y_pred, metric_function(self.metric), groups=groups, seed=self.seed)

    def probe(self, backbone: str, options: Mapping[str, Any]):
        """The linear probe of (backbone, options) over the run's folds, computed once."""
        from automl_tl.probe import linear_probe

        key = (backbone, tuple(sorted(dict(options).items())))
        if key not in self.probes:
            feats = self.features(backbone, options)
            self.probes[key] = linear_probe(
                feats, self.y, self.plan.folds, metric=metric_function(self.metric),
                n_classes=self.n_classes, class_weight=self.class_weight,
                se_fn=lambda yt, yp, idx: self.se(yt, yp, idx))
        return self.probes[key]

    def strategy(self, name: str):
        """The strategy called ``name`` among those the run searches (``strategies``, passed in by
        whoever builds the context: the registry is handed down, never looked up from here)."""
        from automl_tl.errors import ConfigError

        if name not in self.strategies:
            raise ConfigError(f"unknown strategy {name!r}; registered: {', '.join(self.strategies) or 'none'}")
        return self.strategies[name]


@dataclass(kw_only=True)
class TrialResult:
    score: float
    se: float
    n_eval: int  # how many items the score was measured on
    evaluation: str  # "cv" or "holdout"
    history: list
    seconds: float
    head: Any  # the head trained on the hold-out split's training items (the search's model)
    val_probs: Any = None  # (n_eval, n_classes) probabilities on ``val_index`` (out of fold with CV)
    val_index: Any = None
    backbone: Any = None  # the fine-tuned backbone; None for feature extraction (frozen weights)
    epochs: dict = field(default_factory=dict)  # what a refit needs: {"head": n, "fine_tune": m}
    C: float | None = None  # the logistic-regression strength of a linear head
    stopped_early: str = ""  # why training stopped before its planned epochs (time budget)


def nested_layers(model) -> list:
    """Every layer inside ``model``, nested ones included. Keras 3 has no public API for this
    (``Model.layers`` lists direct children only, and layers held by a custom layer are not
    listed at all): this is the one place that uses the private ``_flatten_layers``."""
    return list(model._flatten_layers(include_self=False))


def design_trainable(backbone) -> set[int]:
    """Ids of the variables trainable by design (BatchNormalization's moving statistics are not),
    remembered on first call: later freezing must not change what "all" means."""
    originally = getattr(backbone, "_automl_tl_trainable_ids", None)
    if originally is None:
        backbone.trainable = True
        originally = {id(v) for v in backbone.trainable_weights}
        backbone._automl_tl_trainable_ids = originally
    return originally


def set_trainable(backbone, keep: Collection[int] | None) -> None:
    """Train exactly the variables whose ids are in ``keep`` (None: freeze the backbone).
    BatchNormalization layers always stay frozen (inference mode).

    Keras 3 notes: ``layer.trainable = True`` resets the layer's own originally-trainable
    variables recursively, and a frozen parent hides trainable children, so this freezes
    *variables* instead of toggling parents.
    """
    originally = design_trainable(backbone)
    backbone.trainable = True
    if keep is None:
        backbone.trainable = False
        return
    keep = set(keep)
    bns = [l for l in nested_layers(backbone) if isinstance(l, keras.layers.BatchNormalization)]
    bn_vars = {id(v) for l in bns for v in l.weights}
    for v in backbone.weights:
        if id(v) in originally:
            v.trainable = id(v) in keep and id(v) not in bn_vars
    for layer in bns:  # a frozen BN layer runs in inference mode (moving statistics)
        layer.trainable = False
        for v in layer.weights:
            v.trainable = False


def assemble(backbone, head, augmentation=None, name: str = "automl_tl_model"):
    """``inputs -> [augmentation] -> backbone -> head`` as one Keras model."""

    def make_input(t, key=None):
        return keras.Input(shape=tuple(t.shape[1:]), dtype=t.dtype, name=key or "inputs")

    spec_in = backbone.input
    if isinstance(spec_in, dict):
        inputs = {k: make_input(v, k) for k, v in spec_in.items()}
    else:
        inputs = make_input(spec_in)
    x = augmentation(inputs) if augmentation is not None else inputs
    return keras.Model(inputs, head(backbone(x)), name=name)


def classifier(spec, weights, input_config, options, head, backbone=None, *, precision: str = "float32"):
    """The trained classifier on the adapter's output: ``head`` alone for a featurizer outside
    Keras (``spec.featurize`` feeds it), else the backbone (``backbone`` when fine-tuned, a frozen
    build of ``spec`` at ``precision`` otherwise: the features its head was trained on) and
    ``head`` as one model."""
    if spec.featurize is not None:
        return head
    if backbone is not None:
        return assemble(backbone, head)
    from automl_tl.forward import kept_build

    # A run saves its best model during the search and again after its refit, each time on the
    # pretrained weights of one frozen build: built once (about 1 s of MobileNetV2's on 2 cores),
    # each classifier a model of its own around it (a Keras layer may be called by several models;
    # a saved model holds its own call only). The lock: one classifier assembled on it at a time.
    with _ASSEMBLE_LOCK:
        return assemble(kept_build(spec, weights, input_config, options, precision,
                                   lambda: build_at(spec, weights, input_config, options, precision)), head)


_ASSEMBLE_LOCK = threading.Lock()


def build_at(spec, weights, input_config, options: Mapping[str, Any], precision: str):
    """A fresh build of ``spec`` with ``options`` under the dtype policy ``precision``, its stem
    in float32 (why: :mod:`automl_tl.mixed_precision`); the policy in force is restored after."""
    from automl_tl.accelerator import float32_stem, precision_scope

    with precision_scope(precision):
        return float32_stem(spec, spec.build(weights, input_config, **options))


def run_trial(cfg: TrialConfig, ctx: TrialContext, trial=None, history: list | None = None) -> TrialResult:
    """Train and score one configuration with its strategy; ``history`` (if given) is filled
    epoch by epoch, so a caller still has it when the trial is pruned or fails."""
    return ctx.strategy(cfg.strategy).run(cfg, ctx, trial=trial, history=history if history is not None else [])


def train_final(cfg: TrialConfig, ctx: TrialContext, index, *, epochs: Mapping[str, Any] | None = None,
                budget: Budget = NO_BUDGET):
    """Train ``cfg`` on the items ``index`` (all labelled items for a refit) with the epochs its
    trial needed, no validation. Returns ``(head, fine-tuned backbone or None)``; raises
    :class:`~automl_tl.errors.RefitStopped` if ``budget`` is past first."""
    return ctx.strategy(cfg.strategy).refit(cfg, ctx, index, epochs=dict(epochs or {}), budget=budget)


def freeze(backbone, spec, strategy: str, unfreeze_blocks: int | None = None, *, strategies) -> None:
    """Set which variables of ``backbone`` train, as the registered ``strategy`` does in a trial
    (tests, benchmarks, notebooks). ``strategies``: name -> strategy, e.g.
    ``get_plugin_manager().strategies.as_dict()`` (handed in: the core looks no registry up)."""
    s = strategies[strategy]
    if not s.fine_tunes:
        set_trainable(backbone, None)
        return
    s.freeze(backbone, spec, TrialConfig(backbone=spec.name, strategy=strategy, unfreeze_blocks=unfreeze_blocks))
