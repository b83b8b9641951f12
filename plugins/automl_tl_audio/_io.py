"""Reading audio clips: soundfile decoding, bounded memory, downmix, resampling, pad/crop.

Everything here works on one file at a time and never holds more than the requested window
(plus a small resampling margin) in memory: a two-hour recording is opened, the first
``duration`` seconds (or a window at ``offset``) are read with ``soundfile.read(start=,
frames=)``, and the rest of the file is never decoded.
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "AUDIO_EXTENSIONS",
    "DECODABLE_EXTENSIONS",
    "ClipInfo",
    "AudioReadError",
    "probe",
    "clip_samples",
    "read_clip",
    "resample",
    "scan_peak",
    "frame_rms",
]

#: suffixes libsndfile may decode; anything else that fails to open is "unsupported format"
DECODABLE_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".aif", ".aiff", ".au", ".w64", ".rf64",
                        ".caf", ".mp3")


def _readable_extensions() -> tuple[str, ...]:
    """The suffixes a folder dataset recognises as audio: WAV, FLAC and Ogg always, MP3 and AIFF
    where the installed libsndfile reads them (MP3 since libsndfile 1.1, which the soundfile
    wheels bundle); a clip in an unreadable format is a counted skip, not a crash."""
    base = (".wav", ".flac", ".ogg", ".oga", ".opus")
    try:
        import soundfile as sf

        formats = set(sf.available_formats())
    except Exception:  # noqa: BLE001 - no libsndfile: reading fails later, with its own message
        return base
    return base + ((".mp3",) if "MP3" in formats else ()) + ((".aif", ".aiff") if "AIFF" in formats else ())


#: suffixes a folder dataset recognises as audio
AUDIO_EXTENSIONS = _readable_extensions()


class AudioReadError(Exception):
    """A file could not be used; ``reason`` is the short, user-facing skip reason."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class ClipInfo:
    path: str
    sample_rate: int
    channels: int
    frames: int
    format: str

    @property
    def duration(self) -> float:
        return self.frames / float(self.sample_rate) if self.sample_rate else 0.0


def probe(path: str | os.PathLike) -> ClipInfo:
    """Header information (no audio decoded). Raises :class:`AudioReadError` with a skip reason."""
    import soundfile as sf

    p = Path(path)
    suffix = p.suffix.lower()
    if not p.exists():
        raise AudioReadError("file not found", str(p))
    if p.is_dir():
        raise AudioReadError("not a file", str(p))
    if p.stat().st_size == 0:
        raise AudioReadError("zero-length file", str(p))
    try:
        info = sf.info(str(p))
    except Exception as exc:  # soundfile raises LibsndfileError / RuntimeError / TypeError
        if suffix not in DECODABLE_EXTENSIONS:
            raise AudioReadError(f"unsupported format {suffix or '(no suffix)'!r} "
                                 f"(readable: {', '.join(AUDIO_EXTENSIONS)})", str(exc)) from None
        raise AudioReadError("corrupt or unreadable audio file", str(exc)) from None
    frames = int(info.frames)
    if frames <= 0 or info.samplerate <= 0:
        raise AudioReadError("zero-length audio (no samples)", str(p))
    return ClipInfo(path=str(p), sample_rate=int(info.samplerate), channels=int(info.channels),
                    frames=frames, format=str(info.format))


@functools.lru_cache(maxsize=65536)
def _probe_cached(path: str, mtime_ns: int, size: int) -> ClipInfo:
    return probe(path)


def clip_samples(item: Any, sample_rate: int) -> int:
    """How many samples at ``sample_rate`` the clip ``item`` (a path or a 1-D/2-D array) gives,
    from its header only (``soundfile.info``: nothing decoded); the number
    :func:`resample` gives, ``ceil(frames * sample_rate / source rate)``. Headers are kept per
    (path, modification time, size), 65 536 at most (~200 bytes each): a data set's batching,
    pass after pass, opens each file's header once. An unreadable file counts 0: reading it
    fails later with its own message."""
    if isinstance(item, np.ndarray):
        return int(item.shape[0] if item.ndim == 1 or item.shape[1] <= 8 else item.shape[1])
    try:
        st = os.stat(str(item))
        info = _probe_cached(str(item), st.st_mtime_ns, st.st_size)
    except (OSError, AudioReadError):
        return 0
    return int(math.ceil(info.frames * int(sample_rate) / info.sample_rate))


def resample(x: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Polyphase resampling (``scipy.signal.resample_poly``) along axis 0."""
    if orig_sr == target_sr:
        return x
    from scipy.signal import resample_poly

    g = math.gcd(int(orig_sr), int(target_sr))
    return resample_poly(x, int(target_sr) // g, int(orig_sr) // g, axis=0).astype(np.float32)


def _read_window(path: str, info: ClipInfo, start: int, frames: int) -> np.ndarray:
    import soundfile as sf

    try:
        data, _ = sf.read(path, frames=frames, start=start, dtype="float32", always_2d=True)
    except Exception as exc:
        raise AudioReadError("corrupt or unreadable audio file", str(exc)) from None
    if data.shape[1] > 1:  # downmix: mean of the channels
        data = data.mean(axis=1, dtype=np.float32)
    else:
        data = data[:, 0]
    return np.ascontiguousarray(data, dtype=np.float32)


def read_clip(item: Any, sample_rate: int = 16000, duration: float | None = 1.0, *,
              crop: str = "start", info: ClipInfo | None = None) -> np.ndarray:
    """One clip as mono float32 at ``sample_rate``, exactly ``duration`` seconds long.

    Longer files are cropped *before* decoding (``crop="start"`` keeps the first ``duration``
    seconds, ``"center"`` the middle ones), shorter ones are zero-padded at the end. Only the
    needed window is decoded, so memory is bounded by ``duration`` whatever the file length.
    ``duration=None`` reads the whole file (only for short files; 10 minutes at most).
    ``item`` may also be a 1-D numpy array, taken as mono audio already at ``sample_rate``.
    """
    if isinstance(item, np.ndarray):
        x = np.asarray(item, dtype=np.float32)
        if x.ndim == 2:
            x = x.mean(axis=1) if x.shape[1] <= 8 else x.mean(axis=0)
        return _fit(x, sample_rate, duration)
    path = str(item)
    info = info or probe(path)
    src_sr = info.sample_rate
    if duration is None:
        if info.duration > 600:
            raise AudioReadError("file too long to read whole", f"{path}: {info.duration:.0f} s")
        need = info.frames
    else:
        # a few extra source frames so the resampled window is complete
        need = int(math.ceil(duration * src_sr)) + 8
    start = 0
    if crop == "center" and info.frames > need:
        start = (info.frames - need) // 2
    x = _read_window(path, info, start, min(need, info.frames - start))
    x = resample(x, src_sr, sample_rate)
    return _fit(x, sample_rate, duration)


def _fit(x: np.ndarray, sample_rate: int, duration: float | None) -> np.ndarray:
    if duration is None:
        return x.astype(np.float32, copy=False)
    n = int(round(duration * sample_rate))
    if x.shape[0] >= n:
        return np.ascontiguousarray(x[:n], dtype=np.float32)
    out = np.zeros(n, dtype=np.float32)
    out[: x.shape[0]] = x
    return out


def scan_peak(path: str, info: ClipInfo, max_seconds: float = 60.0, block_seconds: float = 5.0) -> float:
    """Peak absolute sample value of the first ``max_seconds``, read in blocks (bounded memory)."""
    import soundfile as sf

    block = max(1, int(block_seconds * info.sample_rate))
    limit = min(info.frames, int(max_seconds * info.sample_rate))
    peak = 0.0
    done = 0
    try:
        with sf.SoundFile(path) as f:
            while done < limit:
                data = f.read(min(block, limit - done), dtype="float32", always_2d=True)
                if data.shape[0] == 0:
                    break
                done += data.shape[0]
                peak = max(peak, float(np.max(np.abs(data))))
    except Exception as exc:
        raise AudioReadError("corrupt or unreadable audio file", str(exc)) from None
    if done == 0:
        raise AudioReadError("zero-length audio (no samples decoded)", path)
    if not np.isfinite(peak):
        raise AudioReadError("corrupt audio (non-finite samples)", path)
    return peak


def frame_rms(x: np.ndarray, sample_rate: int, frame_seconds: float = 0.025,
              hop_seconds: float = 0.010) -> np.ndarray:
    """RMS of each analysis frame of a mono signal."""
    frame = max(1, int(frame_seconds * sample_rate))
    hop = max(1, int(hop_seconds * sample_rate))
    if x.shape[0] < frame:
        x = np.pad(x, (0, frame - x.shape[0]))
    n = 1 + (x.shape[0] - frame) // hop
    idx = np.arange(frame)[None, :] + hop * np.arange(n)[:, None]
    frames = x[idx]
    return np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))
