"""PyTorch state dicts -> Keras layers: read a ``.pth`` and set it on a Keras model by layer name.

Public helpers (for this plugin and third-party ones, see docs/plugins.md):

* :func:`read_torch_state_dict` — ``{key: numpy array}`` from a ``.pth`` / ``.pt`` file. A small
  restricted reader (below) reads both of PyTorch's formats (the zip archive and the older
  single-stream "legacy" one) for plain state dicts of float/int tensors; what it cannot read goes
  to ``torch.load(path, map_location="cpu", weights_only=True)`` when PyTorch is installed (it is
  not a dependency of automl-tl, and importing it into a Keras process is costly).
* :func:`apply_state_dict` — set the arrays on the Keras layers named in a layer map
  ``[(keras_layer_name, torch_module_prefix), ...]``, transposing by layer type: Conv2D kernels
  OIHW -> HWIO, DepthwiseConv2D (C, 1, H, W) -> (H, W, C, 1), Dense ``(out, in)`` -> ``(in, out)``,
  BatchNormalization weight / bias / running_mean / running_var -> gamma / beta / moving_mean /
  moving_variance. Keys the map does not use and ``ignore`` does not cover, or keys it needs
  that the file lacks, or a shape that does not fit, raise :class:`WeightsUnavailableError`
  naming them (a checkpoint of another architecture is a user error, not a traceback).
* :func:`torch_checkpoint_loader` — a weight-source ``loader(model, path)`` built from the two.
* :class:`TorchUserPath` — a ``UserPath`` that checks a user's ``.pth`` against the layer map when
  the weights are resolved, so a checkpoint of another architecture is refused before any model is
  built (the backbone is left out with the reason; the CLI exits 2 when none is left).

Padding: PyTorch convolutions pad symmetrically (``padding=k // 2``), Keras ``"same"`` pads like
TensorFlow (the extra row/column at the bottom/right for stride 2 on even sizes). A model that
receives converted weights must use the padding its checkpoint was trained with; that is the
backbone's job (see ``_backbones.py`` for MobileNetV2), not this module's.
"""

from __future__ import annotations

import collections
import pickle
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from automl_tl.errors import WeightsUnavailableError
from automl_tl.weights import UserPath

__all__ = ["read_torch_state_dict", "apply_state_dict", "torch_checkpoint_loader", "TorchUserPath",
           "TORCH_SUFFIXES"]

#: a user-given weights file ending in one of these is read as a PyTorch checkpoint
TORCH_SUFFIXES = (".pth", ".pt")


# ------------------------------------------------------------------------------------ reading
def read_torch_state_dict(path: str) -> dict[str, np.ndarray]:
    """The state dict in ``path`` as ``{key: float32/int numpy array}`` (CPU, no gradients)."""
    # The restricted reader first, PyTorch only for what it cannot read: importing PyTorch into a
    # Keras process costs seconds and a few hundred MB of memory, for every run that builds a
    # converted backbone (tests/core/test_torch_converter.py checks both give the same arrays).
    torch = None
    try:
        obj = _read_without_torch(str(path))
    except Exception as first:  # noqa: BLE001 - a format or object the small reader does not take
        try:
            import torch
        except ImportError:
            pass
        try:
            if torch is None:
                raise first  # the small reader's own error is the one to report
            obj = torch.load(str(path), map_location="cpu", weights_only=True)
        except WeightsUnavailableError:
            raise
        except Exception as exc:  # a corrupt file, a full pickled model (refused by weights_only) ...
            hint = "" if torch is not None else (
                " PyTorch is not installed; `pip install torch` (the CPU wheel is enough) reads every "
                "PyTorch checkpoint format.")
            raise WeightsUnavailableError(
                f"cannot read {path} as a PyTorch state dict ({type(exc).__name__}: {exc}).{hint}") from exc
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]  # training checkpoints often wrap it
    if not isinstance(obj, dict):
        raise WeightsUnavailableError(f"{path} holds a {type(obj).__name__}, not a state dict")
    out = {}
    for key, value in obj.items():
        arr = value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)
        out[str(key)] = arr
    return out


# PyTorch's own formats, read with a restricted unpickler. Why hand-written: PyTorch is the only
# library that reads them, and it is a ~200 MB install this product does not otherwise need. The
# unpickler resolves only the handful of globals a state dict pickles (OrderedDict, the tensor
# rebuild function, the typed storage classes); anything else (arbitrary code) is refused.
_STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}


class _Storage:
    """One storage's raw bytes, filled in when read (legacy files store them after the pickle)."""

    def __init__(self, dtype):
        self.dtype = np.dtype(dtype)
        self.array: np.ndarray | None = None


class _Tensor:
    """A tensor view on a storage, made into an array once the storage is read."""

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def numpy(self) -> np.ndarray:
        flat = self.storage.array
        if not self.size:
            return flat[self.offset].copy()
        item = flat.dtype.itemsize
        view = np.lib.stride_tricks.as_strided(
            flat[self.offset:], shape=self.size, strides=[s * item for s in self.stride])
        return np.ascontiguousarray(view)


def _rebuild_tensor(storage, offset, size, stride, *unused):  # torch._utils._rebuild_tensor_v2
    return _Tensor(storage, offset, size, stride)


def _rebuild_parameter(data, *unused):  # torch._utils._rebuild_parameter: a Parameter is its data
    return data


class _StateDictUnpickler(pickle.Unpickler):
    def __init__(self, file, storages: dict, load_storage: Callable[[str, _Storage, int], None] | None):
        super().__init__(file)
        self.storages, self.load_storage = storages, load_storage

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if (module, name) == ("torch._utils", "_rebuild_parameter"):
            return _rebuild_parameter
        if module == "torch" and name in _STORAGE_DTYPES:
            return _STORAGE_DTYPES[name]
        raise pickle.UnpicklingError(
            f"{module}.{name} is not part of a plain state dict; install PyTorch to read this file")

    def persistent_load(self, pid):
        # ('storage', storage class, key, device, numel[, view metadata])
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unknown persistent id {pid!r}")
        dtype, key, numel = pid[1], str(pid[2]), int(pid[4])
        if key not in self.storages:
            self.storages[key] = _Storage(dtype)
            if self.load_storage is not None:
                self.load_storage(key, self.storages[key], numel)
        return self.storages[key]


def _materialise(obj):
    return collections.OrderedDict((k, v.numpy() if isinstance(v, _Tensor) else v) for k, v in obj.items())


def _read_without_torch(path: str):
    if zipfile.is_zipfile(path):  # torch >= 1.6: <root>/data.pkl + <root>/data/<key> raw storages
        with zipfile.ZipFile(path) as zf:
            pkl = next(n for n in zf.namelist() if n.endswith("data.pkl"))
            root = pkl[: -len("data.pkl")]

            def load(key, storage, numel):
                storage.array = np.frombuffer(zf.read(f"{root}data/{key}"), dtype=storage.dtype)[:numel]

            with zf.open(pkl) as f:
                obj = _StateDictUnpickler(f, {}, load).load()
            return _materialise(obj)
    with open(path, "rb") as f:  # legacy: magic, protocol, sys info, object, keys, storages
        storages: dict[str, _Storage] = {}
        restricted = lambda: _StateDictUnpickler(f, storages, None).load()  # noqa: E731 - every pickle
        if restricted() != 0x1950A86A20F9469CFC6C:
            raise WeightsUnavailableError(f"{path} is neither a PyTorch zip archive nor a legacy torch.save file")
        restricted(), restricted()  # protocol version, sys info (little-endian on every CPU we run)
        obj = restricted()
        keys = restricted()
        for key in keys:  # each: int64 element count, then the raw little-endian elements
            storage = storages[str(key)]
            numel = int(np.frombuffer(f.read(8), dtype="<i8")[0])
            storage.array = np.frombuffer(f.read(numel * storage.dtype.itemsize), dtype=storage.dtype)
    return _materialise(obj)


# ------------------------------------------------------------------------------------ applying
def _layer_arrays(layer, prefix: str, sd: dict, used: set, missing: list, bad: list):
    """The Keras weight list for ``layer`` from ``sd[prefix.*]`` (None when something lacks)."""
    import keras

    def take(name, transform=lambda a: a):
        key = f"{prefix}.{name}"
        if key not in sd:
            missing.append(key)
            return None
        used.add(key)
        return transform(np.asarray(sd[key], dtype="float32"))

    if isinstance(layer, keras.layers.BatchNormalization):
        used.add(f"{prefix}.num_batches_tracked")
        arrays = [take(n) for n in ("weight", "bias", "running_mean", "running_var")]
        if not layer.scale:
            arrays.pop(0)
        if not layer.center:
            arrays.pop(1 if layer.scale else 0)
    elif isinstance(layer, keras.layers.DepthwiseConv2D):  # (C*m, 1, H, W) -> (H, W, C, m)
        mult = layer.depth_multiplier
        arrays = [take("weight", lambda w: w.reshape(-1, mult, *w.shape[2:]).transpose(2, 3, 0, 1))]
        if layer.use_bias:
            arrays.append(take("bias"))
    elif isinstance(layer, keras.layers.Conv2D):  # (O, I, H, W) -> (H, W, I, O)
        arrays = [take("weight", lambda w: w.transpose(2, 3, 1, 0))]
        if layer.use_bias:
            arrays.append(take("bias"))
    elif isinstance(layer, keras.layers.Dense):  # (out, in) -> (in, out)
        arrays = [take("weight", lambda w: w.T)]
        if layer.use_bias:
            arrays.append(take("bias"))
    else:
        raise TypeError(f"no PyTorch conversion for {type(layer).__name__} layer {layer.name!r}")
    if any(a is None for a in arrays):
        return None
    for var, value in zip(layer.weights, arrays):
        if tuple(var.shape) != tuple(value.shape):
            bad.append(f"{prefix} -> {layer.name}: {tuple(value.shape)} vs {tuple(var.shape)}")
            return None
    return arrays


def _listing(keys: Sequence[str], n: int = 8) -> str:
    keys = list(keys)
    return ", ".join(keys[:n]) + (f" ... ({len(keys)} in all)" if len(keys) > n else "")


def apply_state_dict(model, layer_map: Iterable[tuple[str, str]], state_dict: dict, *,
                     ignore: Sequence[str] = (), source: str = "the checkpoint") -> None:
    """Set ``state_dict`` on ``model``'s layers named in ``layer_map`` (Keras name, PyTorch prefix).

    Every key of the state dict must be used by the map or start with one of ``ignore`` (e.g. the
    classifier of a headless backbone), and every weight the map names must be there with the
    right shape; otherwise nothing is assigned and :class:`WeightsUnavailableError` lists the
    missing / unexpected keys and mismatched shapes.
    """
    used: set[str] = set()
    missing: list[str] = []
    bad: list[str] = []
    planned = []
    for layer_name, prefix in layer_map:
        layer = model.get_layer(layer_name)
        arrays = _layer_arrays(layer, prefix, state_dict, used, missing, bad)
        if arrays is not None:
            planned.append((layer, arrays))
    unexpected = [k for k in state_dict if k not in used and not k.startswith(tuple(ignore))]
    if missing or unexpected or bad:
        parts = []
        if missing:
            parts.append(f"missing keys: {_listing(missing)}")
        if unexpected:
            parts.append(f"unexpected keys: {_listing(unexpected)}")
        if bad:
            parts.append(f"shape mismatches: {_listing(bad, 4)}")
        raise WeightsUnavailableError(
            f"{source} is not a state dict of this architecture ({model.name}): " + "; ".join(parts))
    for layer, arrays in planned:
        layer.set_weights(arrays)


def torch_checkpoint_loader(layer_map: Callable[[object], Iterable[tuple[str, str]]], *,
                            ignore: Sequence[str] = ()) -> Callable[[object, str], None]:
    """A weight-source loader ``loader(model, path)``: read the ``.pth`` and apply it through
    ``layer_map(model)`` (a function, so the map can follow the built model's layers)."""

    def load(model, path):
        sd = read_torch_state_dict(path)
        apply_state_dict(model, list(layer_map(model)), sd, ignore=ignore, source=Path(path).name)

    return load


def _key_mismatch(keys: Iterable[str], layer_map: Iterable[tuple[str, str]], ignore: Sequence[str]) -> str:
    """What a state dict's keys lack or have beyond the layer map's modules ("" when they fit)."""
    keys = list(keys)
    prefixes = list(dict.fromkeys(prefix for _, prefix in layer_map))  # the map's order: stem first
    missing = [f"{p}.weight" for p in prefixes if f"{p}.weight" not in set(keys)]
    unexpected = [k for k in keys if k.rsplit(".", 1)[0] not in prefixes and not k.startswith(tuple(ignore))]
    parts = ([f"missing keys: {_listing(missing)}"] if missing else []) + (
        [f"unexpected keys: {_listing(unexpected)}"] if unexpected else [])
    return "; ".join(parts)


@dataclass(frozen=True, kw_only=True)
class TorchUserPath(UserPath):
    """``--weights NAME=PATH`` / ``$AUTOML_TL_WEIGHTS_DIR`` where a ``.pth`` / ``.pt`` file is a
    PyTorch state dict checked when resolved. ``layer_map(None)`` gives the (Keras layer, PyTorch
    module) pairs; other files (``.h5``) go to ``loader`` unchecked."""

    layer_map: Callable[[object], Iterable[tuple[str, str]]] | None = field(default=None, compare=False)
    ignore: tuple[str, ...] = ()
    converted_suffixes: tuple[str, ...] = TORCH_SUFFIXES

    def locate(self, backbone, overrides):
        location = super().locate(backbone, overrides)
        if location and self.layer_map is not None and location.lower().endswith(TORCH_SUFFIXES):
            problem = _key_mismatch(read_torch_state_dict(location), self.layer_map(None), self.ignore)
            if problem:
                raise WeightsUnavailableError(
                    f"{Path(location).name} is not a {backbone} state dict: {problem}")
        return location
