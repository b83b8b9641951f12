"""Input adapters: file paths -> fixed-length 16 kHz waveforms (or Whisper log-mel features)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from automl_tl.backbones import InputAdapter
from automl_tl.errors import DataError

from ._io import AudioReadError, clip_samples, read_clip

__all__ = ["AudioAdapter", "DurationAudioAdapter", "SpeechEmbeddingAdapter", "ONNX_ASSET", "DURATION_BUCKETS"]

#: a batch of :class:`DurationAudioAdapter` is padded to the first multiple of 1/8 of the fixed
#: length that holds its longest clip: 8 shapes at most (a compiled function traces each once),
#: and at most an eighth of the fixed length padded beyond the longest clip
DURATION_BUCKETS = 8

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


class DurationAudioAdapter(AudioAdapter):
    """A raw-waveform :class:`AudioAdapter` for featurizers that take clips of any length and
    pool only their real frames (the MFCC statistics): ``length(item)`` is the clip's duration in
    samples, read from its header (capped at the fixed length), so the batching groups clips of
    similar duration, and a batch is zero-padded only to the bucket of its longest clip plus
    ``margin`` samples (:data:`DURATION_BUCKETS`), not always to ``duration`` seconds. Each clip's samples are
    those :class:`AudioAdapter` gives (cropped to ``duration``), followed by fewer zeros.

    Backbones whose features depend on the padding keep the fixed length (see docs/audio.md):
    Wav2Vec2 normalises the whole padded waveform and averages every frame, Whisper and the
    speech embedding average every frame, the aiSFX CNN's front end is built for a fixed number
    of samples."""

    def __init__(self, sample_rate: int = 16000, duration: float = 1.0, *, crop: str = "start",
                 margin: int = 0) -> None:
        super().__init__(sample_rate, duration, frontend="raw", crop=crop)
        self.margin = int(margin)  # zeros kept after the longest clip (a featurizer's frame)

    @property
    def fixed_samples(self) -> int:
        return int(round(self.sample_rate * self.duration))

    def length(self, item: Any) -> int:
        return min(clip_samples(item, self.sample_rate), self.fixed_samples)

    def padded_samples(self, longest: int) -> int:
        n = self.fixed_samples
        step = -(-n // DURATION_BUCKETS)
        return min(n, max(1, -(-(int(longest) + self.margin) // step)) * step)

    def __call__(self, items: Sequence[Any]) -> np.ndarray:
        wav = self.waveforms(items)
        if not len(items):
            return wav
        # a clip's samples end where its header says (resampled), or earlier: every column past
        # the longest is padding; the header is checked against the samples read, never trusted
        last = np.flatnonzero(np.abs(wav).max(axis=0) > 0)
        longest = max([self.length(x) for x in items] + [int(last[-1]) + 1 if len(last) else 1])
        return np.ascontiguousarray(wav[:, :self.padded_samples(longest)])


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
