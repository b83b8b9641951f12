"""Input adapters: file paths -> fixed-length 16 kHz waveforms (or Whisper log-mel features)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from automl_tl.backbones import InputAdapter
from automl_tl.errors import DataError

from ._io import AudioReadError, read_clip

__all__ = ["AudioAdapter", "SpeechEmbeddingAdapter", "ONNX_ASSET"]

ONNX_ASSET = "speech-embedding.onnx"


class AudioAdapter(InputAdapter):
    """``adapter(items)`` -> float32 array.

    ``frontend="raw"``: ``(B, T)`` waveform, ``T = sample_rate * duration``, mono (channels
    averaged), resampled to ``sample_rate``, cropped or zero-padded.
    ``frontend="log-mel"``: ``(B, frames, n_mels)`` Whisper log-mel features (frames = 100 per
    second), computed in numpy exactly as ``transformers.WhisperFeatureExtractor`` does
    (tested to 1e-4), on the same waveform.
    """

    def __init__(self, sample_rate: int = 16000, duration: float = 1.0, *, frontend: str = "raw",
                 n_mels: int = 80, crop: str = "start") -> None:
        if frontend not in ("raw", "log-mel"):
            raise ValueError(f"unknown audio frontend {frontend!r}")
        self.sample_rate = int(sample_rate)
        self.duration = float(duration)
        self.frontend = frontend
        self.n_mels = int(n_mels)
        self.crop = crop

    # ------------------------------------------------------------------ reading
    def waveforms(self, items: Sequence[Any]) -> np.ndarray:
        out = np.zeros((len(items), int(round(self.sample_rate * self.duration))), np.float32)
        for i, item in enumerate(items):
            try:
                out[i] = read_clip(item, self.sample_rate, self.duration, crop=self.crop)
            except AudioReadError as exc:
                raise DataError(f"cannot read audio {item!r}: {exc}. Check the file or remove it "
                                f"from the inputs.") from None
        return out

    def __call__(self, items: Sequence[Any]) -> np.ndarray:
        wav = self.waveforms(items)
        if self.frontend == "raw":
            return wav
        return self.log_mel(wav)

    def log_mel(self, wav: np.ndarray) -> np.ndarray:
        from ._features import whisper_log_mel

        return whisper_log_mel(wav, self.n_mels, self.sample_rate)

    def config(self) -> dict:
        return {"sample_rate": self.sample_rate, "duration": self.duration,
                "frontend": self.frontend, "n_mels": self.n_mels, "crop": self.crop}

    @property
    def output_shape(self) -> tuple:
        n = int(round(self.sample_rate * self.duration))
        if self.frontend == "raw":
            return (n,)
        return (n // 160, self.n_mels)


class SpeechEmbeddingAdapter(AudioAdapter):
    """Raw 16 kHz waveform adapter that also carries the ONNX speech-embedding model file, so a
    saved run can featurize on another machine (``save_assets`` copies the ``.onnx``)."""

    def __init__(self, sample_rate: int = 16000, duration: float = 1.0, *, onnx_path: str | None = None,
                 crop: str = "start") -> None:
        super().__init__(sample_rate, duration, frontend="raw", crop=crop)
        self.onnx_path = onnx_path

    def save_assets(self, folder: str) -> None:
        if not self.onnx_path or not Path(self.onnx_path).is_file():
            raise DataError(f"speech-embedding model file not found ({self.onnx_path!r}); cannot "
                            f"save the adapter assets")
        Path(folder).mkdir(parents=True, exist_ok=True)
        dest = Path(folder) / ONNX_ASSET
        if dest.resolve() != Path(self.onnx_path).resolve():
            tmp = dest.with_suffix(".onnx.tmp")
            shutil.copyfile(self.onnx_path, tmp)
            tmp.replace(dest)

    def config(self) -> dict:
        cfg = super().config()
        cfg["asset"] = ONNX_ASSET
        return cfg
