"""The device Keras computes on, the precision it runs well, and the batch size a backbone gets there.

* :func:`device`: cpu, gpu or tpu, asked of the backend Keras uses (``jax.devices()``,
  TensorFlow's logical devices, ``torch.cuda``), and whether it computes bfloat16 well (a CUDA
  GPU of compute capability 8.0 or more, a TPU; not a CPU).
* :func:`resolve_precision`: ``auto`` is ``mixed_bfloat16`` where the device supports it and
  ``float32`` elsewhere; ``bfloat16`` asks for ``mixed_bfloat16`` anywhere (on a CPU it is correct
  but gains nothing: see docs/benchmarks.md "Batch size and precision").
* :func:`precision_scope`: the Keras dtype policy for the layers built inside it, the previous
  one restored after (Keras keeps it per thread; nothing leaks out of a fit).
* :func:`~automl_tl.mixed_precision.float32_stem` (re-exported): a backbone built under
  ``mixed_bfloat16`` with its stem (its first block) back in float32, which keeps its
  predictions within 1 % of float32's.
* :func:`batch_size_for`: the batch size of a backbone's passes, chosen once per process by a
  short probe on an accelerator (doubled from 32 while images/s grows by more than 10 % and the
  memory holds); 32 on a CPU, without a probe.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from automl_tl.errors import ConfigError
from automl_tl.mixed_precision import FLOAT32_BLOCKS, float32_stem  # noqa: F401 - re-exported

__all__ = ["Device", "device", "PRECISIONS", "resolve_precision", "precision_scope", "float32_stem",
           "FLOAT32_BLOCKS", "float32_copy", "requested_batch",
           "DEFAULT_BATCH", "MAX_BATCH", "batch_size_for", "probe_batch_size", "forward_runner",
           "predict_batch", "steps_per_execution", "record"]

log = logging.getLogger("automl_tl")

#: the batch size on a CPU, and where the probe starts on an accelerator. A CPU's throughput has
#: plateaued by then: MobileNetV2 at 96 px (the 2-core development machine, TensorFlow backend,
#: predict_on_batch; benchmarks/bench_batch_size.py --only plateau, best of 3 rounds) ran 185 /
#: 196 / 201 / 139 images/s at batch 16 / 32 / 64 / 128: 64 within 3 % of 32, 128 slower (its
#: activations outgrow the caches). A probe there would cost its time and change nothing
DEFAULT_BATCH = 32
#: the largest batch the probe tries (a forward pass; the decode workers feed at most this many)
MAX_BATCH = 1024
#: a doubling is kept only when images/s grows by more than this factor
GAIN = 1.10
#: what ``precision`` may be: ``auto`` (bfloat16 where the device supports it), ``float32``, ``bfloat16``
PRECISIONS = ("auto", "float32", "bfloat16")


@dataclass(frozen=True, kw_only=True)
class Device:
    kind: str  # "cpu", "gpu" or "tpu"
    name: str = ""
    bf16: bool = False  # computes bfloat16 well (tensor cores of compute capability >= 8.0, a TPU)

    @property
    def accelerator(self) -> bool:
        return self.kind != "cpu"


def _capable(capability) -> bool:
    """Whether a CUDA compute capability (``"8.0"``, ``(8, 0)``) is Ampere or newer: bfloat16
    tensor cores (A100, H100, H200, RTX 30xx and later). Unknown: no."""
    try:
        major = int(capability[0]) if isinstance(capability, (tuple, list)) else int(str(capability).split(".")[0])
    except (TypeError, ValueError, IndexError):
        return False
    return major >= 8


def _jax_device() -> Device:
    import jax

    d = jax.devices()[0]
    kind = {"cuda": "gpu", "rocm": "gpu"}.get(d.platform, d.platform)
    if kind == "tpu":
        return Device(kind="tpu", name=str(getattr(d, "device_kind", "tpu")), bf16=True)
    if kind == "gpu":
        return Device(kind="gpu", name=str(getattr(d, "device_kind", "gpu")),
                      bf16=_capable(getattr(d, "compute_capability", None)))
    return Device(kind="cpu", name=str(getattr(d, "device_kind", "cpu")))


def _tensorflow_device() -> Device:
    import tensorflow as tf

    if tf.config.list_logical_devices("TPU"):
        return Device(kind="tpu", name="tpu", bf16=True)
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        return Device(kind="gpu", name=str(details.get("device_name", "gpu")),
                      bf16=_capable(details.get("compute_capability")))
    return Device(kind="cpu", name="cpu")


def _torch_device() -> Device:
    import torch

    if torch.cuda.is_available():
        return Device(kind="gpu", name=torch.cuda.get_device_name(0), bf16=_capable(torch.cuda.get_device_capability(0)))
    return Device(kind="cpu", name="cpu")


@functools.cache
def device() -> Device:
    """The device the Keras backend computes on (the first one it lists). Only the backend in use
    is asked: TensorFlow is not imported under JAX."""
    import keras

    backend = keras.backend.backend()
    probe = {"jax": _jax_device, "tensorflow": _tensorflow_device, "torch": _torch_device}.get(backend)
    return probe() if probe is not None else Device(kind="cpu", name=backend)


# ---------------------------------------------------------------------------------- precision
def resolve_precision(requested: str | None, dev: Device | None = None) -> str:
    """The Keras dtype policy for ``requested`` (one of :data:`PRECISIONS`; None is ``auto``):
    ``"float32"`` or ``"mixed_bfloat16"`` (variables in float32, computation in bfloat16)."""
    requested = "auto" if requested is None else str(requested).lower()
    if requested == "auto":
        return "mixed_bfloat16" if (dev or device()).bf16 else "float32"
    if requested == "float32":
        return "float32"
    if requested in ("bfloat16", "mixed_bfloat16"):
        return "mixed_bfloat16"
    raise ConfigError(f"unknown precision {requested!r}: choose one of {', '.join(PRECISIONS)} "
                      f"(auto: bfloat16 on a GPU or TPU that supports it, float32 elsewhere)")


@contextlib.contextmanager
def precision_scope(policy: str | None):
    """Layers built inside take the dtype policy ``policy`` (None: the one set now); the previous
    policy is restored after, also when building fails. Keras keeps the policy per thread."""
    if policy is None:
        yield
        return
    import keras

    before = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(before)


def _as_float32(config):
    """``config`` (a serialized Keras object) with every dtype policy float32; ``(config, changed)``."""
    if isinstance(config, list):
        parts = [_as_float32(c) for c in config]
        return [c for c, _ in parts], any(ch for _, ch in parts)
    if not isinstance(config, dict):
        return config, False
    if config.get("class_name") == "DTypePolicy" and isinstance(config.get("config"), dict):
        name = config["config"].get("name")
        return config | {"config": config["config"] | {"name": "float32"}}, name != "float32"
    out, changed = {}, False
    for key, value in config.items():
        if key == "dtype" and isinstance(value, str) and value.startswith("mixed_"):
            out[key], ch = "float32", True
        else:
            out[key], ch = _as_float32(value)
        changed = changed or ch
    return out, changed


def float32_copy(model):
    """``model`` computing in float32 throughout, with the same weights (a mixed-precision model's
    variables are float32 already): what a runtime without bfloat16 kernels runs (ONNX Runtime and
    TFLite on a CPU). ``model`` itself when every layer computes in float32."""
    import keras

    # every layer, nested ones included (training.nested_layers' private Keras call; not imported
    # from there: training imports this module)
    if all(layer.dtype_policy.name == "float32" for layer in model._flatten_layers(include_self=True)):
        return model  # nothing serialized: a float32 model is returned as it is
    config, _ = _as_float32(keras.saving.serialize_keras_object(model))
    copy = keras.saving.deserialize_keras_object(config)
    copy.set_weights(model.get_weights())
    return copy


# ---------------------------------------------------------------------------------- batch size
def requested_batch(value) -> int | None:
    """A batch-size setting: a whole number of 1 or more, or ``None`` / ``"auto"`` (chosen per
    backbone and device)."""
    if value is None or (isinstance(value, str) and value.strip().lower() == "auto"):
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).strip().isdigit() \
            or int(value) < 1:
        raise ConfigError(f"batch_size must be a whole number of 1 or more, or 'auto', not {value!r}")
    return int(value)


#: (backbone, input configuration, precision, device) -> the batch size chosen in this process
_CHOSEN: dict[tuple, int] = {}


def _out_of_memory(exc: BaseException) -> bool:
    from automl_tl.fates import Fate, fate_of

    if fate_of(exc)[1] is Fate.RETRY_SMALLER_BATCH:
        return True
    # JAX has no out-of-memory type (XlaRuntimeError for every runtime failure): its status says it
    text = str(exc)
    return "RESOURCE_EXHAUSTED" in text or "out of memory" in text.lower()


def _images_per_s(run_batch: Callable[[int], Any], size: int, *, seconds: float = 0.1, most: int = 50) -> float:
    """Rows per second of ``run_batch(size)``: one untimed call (tracing, compiling), then calls
    until ``seconds`` have passed (at least three, at most ``most``), rated by the fastest: a
    pause of the host (another process, a collection) lengthens a call, never shortens one."""
    run_batch(size)
    times: list[float] = []
    t_end = time.perf_counter() + seconds
    while len(times) < 3 or (len(times) < most and time.perf_counter() < t_end):
        t0 = time.perf_counter()
        run_batch(size)
        times.append(time.perf_counter() - t0)
    return size / max(min(times), 1e-9)


def probe_batch_size(run_batch: Callable[[int], Any], *, start: int = DEFAULT_BATCH, cap: int = MAX_BATCH) -> int:
    """The batch size for ``run_batch(size)`` (one pass over ``size`` rows, returning once the
    device has finished it): doubled from ``start`` while rows/s grows by more than 10 %, up to
    ``cap``. Running out of memory ends the doubling at the last size that ran (below ``start``
    it halves until one runs). Any other error ends it too: the work itself will meet it, with
    the fates table to say what it means."""
    best, best_rate, size = None, 0.0, start
    while size <= max(cap, start):
        try:
            rate = _images_per_s(run_batch, size)
        except Exception as exc:  # noqa: BLE001 - out of memory, or a failure the real pass reports
            if best is None and _out_of_memory(exc) and size > 1:
                size //= 2  # not even ``start`` fits: smaller until one runs
                cap = size
                continue
            log.debug("batch-size probe stopped at %d: %s: %s", size, type(exc).__name__, exc)
            break
        if best is not None and rate <= best_rate * GAIN:
            break
        best, best_rate = size, rate
        if size * 2 > cap:
            break
        size *= 2
    return best if best is not None else max(1, size)


def batch_size_for(backbone: str, input_config: Mapping, run_batch: Callable[[], Callable[[int], Any]] | None, *,
                   precision: str = "float32", dev: Device | None = None, n_items: int | None = None) -> int:
    """The batch size of ``backbone``'s passes on ``dev`` (default: :func:`device`), memoized per
    process by (backbone, input configuration, precision, device).

    On a CPU: :data:`DEFAULT_BATCH`, no probe (its throughput has plateaued there). On an
    accelerator: :func:`probe_batch_size` of ``run_batch()`` (a factory, called only when a
    probe runs; None: no probe possible, the default), up to :data:`MAX_BATCH` or the power of two
    that covers ``n_items``. A GPU needs large batches to be busy: on an H200, MobileNetV2 at
    224 px ran 2 290 images/s at batch 32 and 5 843 at 256 through ``predict_on_batch``.
    """
    dev = dev or device()
    key = (backbone, json.dumps(dict(input_config), sort_keys=True, default=str), precision, dev.kind, dev.name)
    if key not in _CHOSEN:
        if not dev.accelerator or run_batch is None:
            _CHOSEN[key] = DEFAULT_BATCH
        else:
            cap = MAX_BATCH
            if n_items:
                cap = max(DEFAULT_BATCH, min(MAX_BATCH, 1 << max(0, int(n_items) - 1).bit_length()))
            t0 = time.perf_counter()
            _CHOSEN[key] = probe_batch_size(run_batch(), cap=cap)
            log.info("batch size %d for %s on %s (%s), probed in %.1f s", _CHOSEN[key], backbone, dev.name or dev.kind,
                     precision, time.perf_counter() - t0)
    return _CHOSEN[key]


def predict_batch(requested, backbone: str | None = None) -> int:
    """The batch size of predictions: ``requested`` if a number; under ``auto`` the size chosen
    for ``backbone`` in this process (its fit), else :data:`DEFAULT_BATCH`."""
    value = requested_batch(requested)
    if value is not None:
        return value
    chosen = [b for key, b in _CHOSEN.items() if key[0] == backbone]
    return min(chosen) if chosen else DEFAULT_BATCH


def _take_rows(batch, size: int):
    import numpy as np

    if isinstance(batch, dict):
        return {k: _take_rows(v, size) for k, v in batch.items()}
    batch = np.asarray(batch)
    return np.take(batch, np.arange(size) % len(batch), axis=0)


def forward_runner(spec, weights, input_config: Mapping, items: Sequence[Any], precision: str = "float32"):
    """A factory of ``run(size)`` for :func:`probe_batch_size`: one forward pass of ``spec``
    (frozen, its first options, built at ``precision`` on first call) over ``size`` rows repeated
    from ``items``. Its compiled forward returns host arrays, so each call waits for the device."""
    def factory():
        state: dict = {}

        def run(size: int):
            if "model" not in state:
                from automl_tl.forward import compiled_forward, frozen_backbone

                with precision_scope(precision):  # the frozen build the probe's pass then reuses
                    state["model"] = compiled_forward(frozen_backbone(spec, weights, dict(input_config)))
                state["x"] = spec.make_adapter(dict(input_config), weights, None)(list(items))
            return state["model"](_take_rows(state["x"], size))

        return run

    return factory


# ---------------------------------------------------------------------------------- fine-tuning
def steps_per_execution(n_batches: int, most: int = 8) -> int:
    """Training steps per compiled call: up to ``most`` (8), never more than an epoch has batches.
    Keras then calls the batch-end callbacks (the time budget, Ctrl-C) once per call, and the
    epoch-end ones (validation, pruning, the learning curve) exactly as before. Fewer host round
    trips per step: on a GPU a small model's step is shorter than the host's dispatch."""
    return int(max(1, min(most, n_batches)))


# ---------------------------------------------------------------------------------- the record
def record(requested_batch_size, requested_precision, precision: str, batch_sizes: Mapping[str, int]) -> dict:
    """What summary.json says of the device: the device, the precision and the batch size per
    backbone, each with what was asked; logged once."""
    import keras

    dev = device()
    sizes = sorted(set(batch_sizes.values()))
    asked = "auto" if requested_batch(requested_batch_size) is None else int(requested_batch_size)
    out = {"device": dev.kind, "device_name": dev.name, "backend": keras.backend.backend(),
           "precision": precision, "precision_requested": str(requested_precision or "auto"),
           "batch_size": dict(batch_sizes), "batch_size_requested": asked}
    log.info("device %s (%s): precision %s (%s), batch size %s (%s)", dev.kind, dev.name or dev.kind, precision,
             out["precision_requested"], "/".join(map(str, sizes)) or DEFAULT_BATCH, asked)
    return out
