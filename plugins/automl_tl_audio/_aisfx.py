"""The aiSFX sound-effects CNN (Ma & Lerch, ISMIR 2022) in pure Keras 3, its log-mel front end
inside the model, and a converter from the ``checkpoint.pth`` the ``aisfx`` package ships.

Network (``aisfx.models.cnn2d.EmbeddingNet('max', 3, 1, 64)``, the DCASE cross-task baseline
CNN): four blocks of two 3x3 convolutions (no bias) + batch norm + ReLU, 2x2 max pooling after
the first three; then the mean over mel bands and the max over time give 512 values.

Front end (``aisfx.inference``: 44.1 kHz, 2048-sample frames every 1024, 96 HTK mel bands from
0 to 22.05 kHz with unit-sum filters, power, ``log10(1e4 x + 1)``, min-max scaled by the
"original" range 0 .. 9.4578). It follows the package's librosa path: the clip is scaled to a
peak of 1 first, the Hann window is periodic; frames are zero padded at both ends (centred, as
Essentia's FrameCutter does). The model maps ``(B, T)`` 44.1 kHz waveforms to ``(B, 512)``; a
layer named ``aisfx_log_mel`` gives the ``(B, frames, 96)`` network input. Parity with the
package's torch module on the real checkpoint: ``tests/audio/test_aisfx.py``.
"""

from __future__ import annotations

import collections
import pickle
import zipfile

import numpy as np

from automl_tl.errors import WeightsUnavailableError

from ._common import blocks_by_name

__all__ = ["SAMPLE_RATE", "N_MELS", "build_aisfx", "load_aisfx_weights", "aisfx_blocks",
           "read_aisfx_checkpoint", "log_mel_filters"]

SAMPLE_RATE = 44100
N_FFT, HOP, N_MELS = 2048, 1024, 96
SPEC_MAX = 9.457798957824707  # aisfx.preprocessing.spectrogram_normalize(spec_norm="original")
WIDTHS = (64, 128, 256, 512)


def log_mel_filters() -> np.ndarray:
    """``(N_FFT // 2 + 1, N_MELS)`` HTK triangles, each band summing to 1 (librosa ``htk=True,
    norm=1``; Essentia ``normalize="unit_sum"``)."""
    from ._features import mel_filterbank

    fb = mel_filterbank(N_MELS, N_FFT, SAMPLE_RATE, fmin=0.0, fmax=SAMPLE_RATE / 2.0)
    fb = fb / np.maximum(fb.sum(axis=1, keepdims=True), 1e-12)
    return fb.T.astype(np.float32)


def _front_end(x, num_samples: int):
    """``(B, T)`` waveform -> ``(B, frames, 96)`` scaled log-mel. Standard layers and keras.ops
    only (``keras.ops.stft`` cannot be saved in ``model.keras``: frames are cut by reshaping into
    hops and joining neighbours, then ``keras.ops.rfft``); no variables, so fine-tuning never
    trains the front end."""
    from keras import layers, ops

    peak = ops.max(ops.abs(x), axis=1, keepdims=True)
    x = x / ops.where(peak > 0, peak, ops.ones_like(peak))
    n = num_samples // HOP + 1  # frames centred every HOP samples, as STFT(center=True) gives
    x = layers.Reshape((num_samples, 1), name="aisfx_samples")(x)
    x = layers.ZeroPadding1D((N_FFT // 2, (n + 1) * HOP - num_samples - N_FFT // 2), name="aisfx_pad")(x)
    hops = layers.Reshape((n + 1, HOP), name="aisfx_hops")(x)
    frames = layers.Concatenate(name="aisfx_frames")([layers.Cropping1D((0, 1), name="aisfx_first")(hops),
                                                      layers.Cropping1D((1, 0), name="aisfx_second")(hops)])
    window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)
    re, im = ops.rfft(frames * window, N_FFT)
    mel = ops.matmul(re * re + im * im, log_mel_filters())
    return ops.log10(mel * 1e4 + 1.0) / SPEC_MAX


def build_aisfx(num_samples: int = SAMPLE_RATE, *, name: str = "aisfx-cnn"):
    """Keras model ``(B, num_samples)`` 44.1 kHz float32 -> ``(B, 512)`` (random weights)."""
    import keras
    from keras import layers, ops

    if num_samples // HOP + 1 < 8:  # three 2x2 poolings need 8 frames
        raise ValueError(f"{num_samples} samples are too short for the aiSFX CNN (at least "
                         f"{7 * HOP}: 8 frames, one every 1024 samples)")
    inp = keras.Input((num_samples,), dtype="float32", name="audio")
    x = layers.Identity(name="aisfx_log_mel")(_front_end(inp, int(num_samples)))
    x = ops.expand_dims(x, -1)  # (B, frames, mels, 1): torch's (B, 1, frames, mels), channels last
    for i, width in enumerate(WIDTHS):
        for j in (1, 2):
            x = layers.Conv2D(width, 3, padding="same", use_bias=False, name=f"sfx_l{i}_conv{j}")(x)
            x = layers.BatchNormalization(epsilon=1e-5, momentum=0.9, name=f"sfx_l{i}_bn{j}")(x)
            x = layers.ReLU(name=f"sfx_l{i}_relu{j}")(x)
        if i < len(WIDTHS) - 1:
            x = layers.MaxPooling2D(2, name=f"sfx_l{i}_pool")(x)
    x = ops.mean(x, axis=2)  # over mel bands
    out = layers.GlobalMaxPooling1D(name="max_pool")(x)  # over time
    return keras.Model(inp, out, name=name)


# The package pickles a tuple (state_dict, {dataset: (numpy int64 index, classes)}); neither
# automl_tl_vision's state-dict reader nor torch.load(weights_only=True) takes its numpy scalars,
# and PyTorch is no dependency. So this small restricted unpickler: it resolves the state dict's
# few globals, reads the numpy scalars of the dataset dict as None (unused), refuses the rest.
class _Storage:
    def __init__(self, dtype):
        self.dtype, self.array = np.dtype(dtype), None


def _rebuild_tensor(storage, offset, size, stride, *unused):
    item = storage.array.dtype.itemsize
    if not size:
        return storage.array[offset].copy()
    return np.ascontiguousarray(np.lib.stride_tricks.as_strided(
        storage.array[offset:], shape=tuple(size), strides=[s * item for s in stride]))


_GLOBALS = {("collections", "OrderedDict"): collections.OrderedDict,
            ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
            ("torch", "FloatStorage"): np.float32, ("torch", "LongStorage"): np.int64}
_IGNORED = {("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
            ("numpy", "dtype"), ("_codecs", "encode")}


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, zf: zipfile.ZipFile, root: str):
        super().__init__(file)
        self.zf, self.root, self.storages = zf, root, {}

    def find_class(self, module, name):
        if (module, name) in _GLOBALS:
            return _GLOBALS[(module, name)]
        if (module, name) in _IGNORED:
            return _ignored
        raise pickle.UnpicklingError(f"{module}.{name} is not part of the aiSFX checkpoint")

    def persistent_load(self, pid):  # ('storage', dtype, key, device, numel)
        key = str(pid[2])
        if key not in self.storages:
            storage = self.storages[key] = _Storage(pid[1])
            raw = self.zf.read(f"{self.root}data/{key}")
            storage.array = np.frombuffer(raw, dtype=storage.dtype)[: int(pid[4])]
        return self.storages[key]


class _Ignored:
    def __setstate__(self, state):
        pass


def _ignored(*args):
    return _Ignored()


def read_aisfx_checkpoint(path: str) -> dict[str, np.ndarray]:
    """``{key: array}`` of the CNN (``embedding_net.*``) in the package's ``checkpoint.pth``."""
    try:
        with zipfile.ZipFile(path) as zf:
            pkl = next(n for n in zf.namelist() if n.endswith("data.pkl"))
            with zf.open(pkl) as f:
                obj = _Unpickler(f, zf, pkl[: -len("data.pkl")]).load()
    except (OSError, zipfile.BadZipFile, pickle.UnpicklingError, StopIteration, KeyError) as exc:
        raise WeightsUnavailableError(f"cannot read {path} as the aiSFX checkpoint "
                                      f"({type(exc).__name__}: {exc})") from None
    sd = obj[0] if isinstance(obj, tuple) else obj
    if not isinstance(sd, dict):
        raise WeightsUnavailableError(f"{path} holds no state dict")
    prefix = "embedding_net."
    return {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}


def load_aisfx_weights(model, path: str) -> None:
    """Set the checkpoint's CNN weights on a model from :func:`build_aisfx` (the dataset heads
    ``fc.*`` of the checkpoint are left out: the backbone is headless)."""
    sd = read_aisfx_checkpoint(path)
    need = [f"conv_block{i + 1}.{part}" for i in range(len(WIDTHS))
            for part in ("conv1.weight", "conv2.weight", "bn1.weight", "bn2.weight")]
    missing = [k for k in need if k not in sd]
    if missing:
        raise WeightsUnavailableError(f"{path} is not an aiSFX checkpoint: it lacks {missing[:4]}")
    for i in range(len(WIDTHS)):
        for j in (1, 2):
            pre = f"conv_block{i + 1}."
            conv, bn = model.get_layer(f"sfx_l{i}_conv{j}"), model.get_layer(f"sfx_l{i}_bn{j}")
            kernel = sd[f"{pre}conv{j}.weight"].transpose(2, 3, 1, 0)  # OIHW -> HWIO
            stats = [sd[f"{pre}bn{j}.{n}"] for n in ("weight", "bias", "running_mean", "running_var")]
            for layer, arrays in ((conv, [kernel]), (bn, stats)):
                if [tuple(w.shape) for w in layer.weights] != [a.shape for a in arrays]:
                    raise WeightsUnavailableError(f"{path}: {pre} does not fit {layer.name}")
                layer.set_weights([np.asarray(a, np.float32) for a in arrays])


def aisfx_blocks(model) -> list[list]:
    """The four conv blocks, bottom to top (the front end has no weights)."""
    return blocks_by_name(model, "sfx", len(WIDTHS))[1:]
