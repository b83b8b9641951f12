"""Backbone specs and the registry that plugins fill.

A :class:`BackboneSpec` is everything the engine needs to know about one pretrained network:
how to build it without its top, how raw inputs become its input tensors, its unfreezable blocks
in order, where its weights come from, how big it is and whether it can be fine-tuned.
"""

from __future__ import annotations

import difflib
import fnmatch
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from automl_tl.errors import ConfigError, PluginError, WeightsUnavailableError
from automl_tl.weights import ResolvedWeights, WeightSource, resolve_weights

__all__ = ["BackboneSpec", "BackboneRegistry", "InputAdapter"]


class InputAdapter:
    """Turns raw inputs (file paths, strings) into the arrays a backbone takes.

    Subclasses implement ``__call__(items) -> array or dict of arrays`` and ``config() -> dict``
    (JSON-able; together with the saved assets it rebuilds the adapter at predict time).
    ``save_assets(folder)`` writes anything else needed (a tokenizer, for instance).

    An adapter whose output length varies with the input (text: tokens) may define
    ``length(item) -> int``, a cheap size estimate, and pad each batch only as far as its longest
    item: batches are then formed from items of similar length (:mod:`automl_tl.batching`), and
    the arrays' non-batch dimensions are dynamic.
    """

    def __call__(self, items: Sequence[Any]):  # pragma: no cover - interface
        raise NotImplementedError

    def config(self) -> dict:  # pragma: no cover - interface
        raise NotImplementedError

    def save_assets(self, folder: str) -> None:
        """Write assets needed at predict time into ``folder`` (default: none)."""


@dataclass(frozen=True, kw_only=True)
class BackboneSpec:
    """One registered backbone.

    :param name: unique registry name, lower case (``"mobilenetv2"``).
    :param modality: name of a registered modality (``"image"``, ``"text"``, ``"audio"``).
    :param build: ``build(weights, input_config, **options) -> keras.Model`` mapping the adapter's
        output to pooled features of shape ``(batch, feature_dim)``; input preprocessing (scaling,
        normalisation) is inside the model. ``weights`` is a :class:`ResolvedWeights` or None
        (random initialisation, used by shape tests).
    :param make_adapter: ``make_adapter(input_config, weights, assets_dir) -> InputAdapter``.
    :param blocks: ``blocks(model) -> list[list[layer]]``, the unfreezable blocks bottom to top
        (embeddings / stem first), so "fine-tune the top N blocks" means the same everywhere.
    :param n_blocks: how many blocks ``blocks`` returns (the search space needs it before building).
    :param weight_sources: tried in order, see :mod:`automl_tl.weights`.
    :param n_params: parameter count of the headless backbone.
    :param fine_tunable: False for backbones that can only extract features (e.g. ONNX models).
    :param options: searched build options, name -> choices (e.g. ``{"pooling": ("mean", "cls")}``).
    :param default_input_config: input settings when the profile suggests none.
    :param pretrained_on: the pretraining data, in words (``"ImageNet-1k"``).
    :param featurize: for backbones that are not Keras models (e.g. ONNX run with onnxruntime):
        ``featurize(weights, input_config, **options) -> fn`` where ``fn(adapter_batch)`` returns a
        numpy array ``(B, D)``. Such a backbone must set ``fine_tunable=False`` and may set
        ``build=None``; the saved model is then the head alone, and predict runs adapter ->
        featurize -> head (the adapter's ``save_assets`` must copy what featurize needs).
    :param classical: a classical featurizer with nothing pretrained (pixels, MFCC statistics,
        TF-IDF). It is searched like any backbone (frozen features only) and is the run's
        classical baseline: delivered when it wins, never recommended by the strategy table, and
        in a tie a pretrained backbone is preferred.
    :param readouts: optional, ``readouts(weights, input_config, option_sets) -> keras.Model``: one
        model with one output per option set (in order), the features ``build(weights,
        input_config, **option_set)`` gives, in one forward pass. For options that only change
        the readout (which layer is pooled, how): ranking them then costs one pass, not one each.
    :param sparse: the features are mostly zeros (TF-IDF, counts): the embedding cache keeps them
        as a sparse matrix (:mod:`automl_tl.sparse_features`), so that their disk and memory grow
        with the non-zeros, not with items x dimensions.
    :param opt_in: searched only when named (``--backbones NAME``) or under ``--preset best``,
        never among the default candidates: for a backbone that lost on every benchmark task.
    :param slow: much slower than the others of its modality (a 110 M encoder beside a 22 M one):
        a default candidate only when the fit has a time budget, where the probe times its first
        batches and leaves it out if the budget cannot hold it (and the cost model keeps its
        fine-tuning trials out of a budget they would overrun); without a budget, only when named
        or under ``--preset best``, so that a fit with no time limit does not silently take hours.
    :param fit_weights: ``fit_weights(items, folder)`` for featurizers that learn something from
        the inputs themselves, without labels (a TF-IDF vocabulary): called once per dataset, it
        writes its state into ``folder``, which is then passed as the weights' location.
    """

    name: str
    modality: str
    build: Callable[..., Any] | None
    make_adapter: Callable[..., InputAdapter]
    blocks: Callable[[Any], list]
    n_blocks: int
    weight_sources: tuple[WeightSource, ...]
    n_params: int
    fine_tunable: bool = True
    options: Mapping[str, tuple] = field(default_factory=dict)
    default_input_config: Mapping[str, Any] = field(default_factory=dict)
    pretrained_on: str = ""
    description: str = ""
    featurize: Callable[..., Callable[[Any], Any]] | None = None
    classical: bool = False
    fit_weights: Callable[[Any, str], None] | None = None
    readouts: Callable[..., Any] | None = None
    sparse: bool = False
    opt_in: bool = False
    slow: bool = False
    plugin: str = ""

    def resolve_weights(self, overrides: Mapping[str, str] | None = None) -> ResolvedWeights:
        return resolve_weights(self.name, self.weight_sources, overrides)

    def summary(self) -> dict:
        return {
            "name": self.name,
            "modality": self.modality,
            "plugin": self.plugin,
            "n_params": self.n_params,
            "n_blocks": self.n_blocks,
            "fine_tunable": self.fine_tunable,
            "classical": self.classical,
            "pretrained_on": self.pretrained_on,
            "options": {k: list(v) for k, v in self.options.items()},
            "weight_sources": [s.kind for s in self.weight_sources],
        }


class BackboneRegistry:
    """Holds every registered backbone; plugins call :meth:`add` from their hook."""

    def __init__(self, modalities=None) -> None:
        self._specs: dict[str, BackboneSpec] = {}
        self._modalities = modalities
        self._current_plugin: str | None = None

    # ------------------------------------------------------------------ registration
    def add(self, spec: BackboneSpec) -> None:
        plugin = self._current_plugin or spec.plugin or "<direct>"
        where = f"plugin {plugin!r}"
        if not isinstance(spec, BackboneSpec):
            raise PluginError(f"{where} registered {spec!r}, which is not a BackboneSpec")
        problems = []
        if not spec.name or spec.name != spec.name.lower() or " " in spec.name:
            problems.append("name must be a non-empty lower-case word")
        if self._modalities is not None and spec.modality not in self._modalities:
            problems.append(f"modality {spec.modality!r} is not registered "
                            f"(known: {', '.join(self._modalities.names()) or 'none'})")
        for attr in ("make_adapter", "blocks"):
            if not callable(getattr(spec, attr)):
                problems.append(f"{attr} must be callable")
        if spec.featurize is None and not callable(spec.build):
            problems.append("build must be callable (or featurize given)")
        if spec.featurize is not None and spec.fine_tunable:
            problems.append("a featurize-only backbone cannot be fine_tunable")
        if spec.n_blocks < 1 and spec.fine_tunable:
            problems.append("a fine-tunable backbone needs n_blocks >= 1")
        if spec.n_params < 0 or (spec.n_params == 0 and not spec.classical):
            problems.append("n_params must be positive")
        if spec.classical and spec.fine_tunable:
            problems.append("a classical featurizer cannot be fine_tunable")
        if not spec.weight_sources:
            problems.append("weight_sources is empty")
        for key, choices in spec.options.items():
            if not choices:
                problems.append(f"option {key!r} has no choices")
        if problems:
            raise PluginError(f"{where}: backbone {spec.name!r} is invalid: " + "; ".join(problems))
        if spec.name in self._specs:
            other = self._specs[spec.name].plugin
            raise PluginError(f"{where}: backbone {spec.name!r} is already registered by plugin {other!r}")
        from dataclasses import replace

        self._specs[spec.name] = replace(spec, plugin=plugin)

    # ------------------------------------------------------------------ queries
    def __contains__(self, name: str) -> bool:
        return name in self._specs

    def __len__(self) -> int:
        return len(self._specs)

    def __iter__(self):
        return iter(self._specs.values())

    def get(self, name: str) -> BackboneSpec:
        try:
            return self._specs[name]
        except KeyError:
            close = difflib.get_close_matches(name, list(self._specs), n=3, cutoff=0.5)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise ConfigError(
                f"unknown backbone {name!r}.{hint} Run `automl-tl backbones` to list them."
            ) from None

    def list(self, filter: str = "*", *, modality: str | None = None, plugin: str | None = None,
             pretrained: bool | None = None, overrides: Mapping[str, str] | None = None) -> list[BackboneSpec]:
        """Backbones matching a glob ``filter``, a modality, a plugin, and weight availability."""
        out = []
        for spec in self._specs.values():
            if not fnmatch.fnmatch(spec.name, filter):
                continue
            if modality is not None and spec.modality != modality:
                continue
            if plugin is not None and spec.plugin != plugin:
                continue
            if pretrained is not None:
                try:
                    spec.resolve_weights(overrides)
                    has = True
                except WeightsUnavailableError:
                    has = False
                if has != pretrained:
                    continue
            out.append(spec)
        return sorted(out, key=lambda s: (s.modality, s.n_params, s.name))
