"""Classical audio features in numpy/scipy: power spectrogram, mel filterbank, MFCC, and the
spectral measurements behind the audio modality's similarity score. No librosa."""

from __future__ import annotations

import functools

import numpy as np

__all__ = ["power_spectrogram", "mel_filterbank", "mfcc", "mfcc_statistics", "speech_likeness",
           "whisper_mel_filters", "whisper_log_mel"]


def _frames(x: np.ndarray, frame: int, hop: int) -> np.ndarray:
    if x.shape[0] < frame:
        x = np.pad(x, (0, frame - x.shape[0]))
    n = 1 + (x.shape[0] - frame) // hop
    idx = np.arange(frame)[None, :] + hop * np.arange(n)[:, None]
    return x[idx]


def power_spectrogram(x: np.ndarray, sample_rate: int = 16000, n_fft: int = 512,
                      frame_seconds: float = 0.025, hop_seconds: float = 0.010) -> np.ndarray:
    """|STFT|^2 of Hamming-windowed frames, shape (frames, n_fft // 2 + 1)."""
    frame = int(frame_seconds * sample_rate)
    hop = int(hop_seconds * sample_rate)
    fr = _frames(x.astype(np.float64), frame, hop) * np.hamming(frame)[None, :]
    return np.abs(np.fft.rfft(fr, n=n_fft, axis=1)) ** 2


def _hz_to_mel(f):
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def _mel_to_hz(m):
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


def mel_filterbank(n_mels: int = 40, n_fft: int = 512, sample_rate: int = 16000,
                   fmin: float = 20.0, fmax: float | None = None) -> np.ndarray:
    """HTK-style triangular mel filters, shape (n_mels, n_fft // 2 + 1)."""
    fmax = fmax or sample_rate / 2.0
    mels = np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n_mels + 2)
    hz = _mel_to_hz(mels)
    bins = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    fb = np.zeros((n_mels, bins.shape[0]))
    for i in range(n_mels):
        lo, c, hi = hz[i], hz[i + 1], hz[i + 2]
        up = (bins - lo) / max(c - lo, 1e-9)
        down = (hi - bins) / max(hi - c, 1e-9)
        fb[i] = np.maximum(0.0, np.minimum(up, down))
    return fb


def _dct_matrix(n_out: int, n_in: int) -> np.ndarray:
    """Orthonormal DCT-II basis, shape (n_out, n_in)."""
    k = np.arange(n_out)[:, None]
    n = np.arange(n_in)[None, :]
    m = np.cos(np.pi / n_in * (n + 0.5) * k) * np.sqrt(2.0 / n_in)
    m[0] /= np.sqrt(2.0)
    return m


def mfcc(x: np.ndarray, sample_rate: int = 16000, n_mfcc: int = 13, n_mels: int = 40) -> np.ndarray:
    """MFCCs, shape (frames, n_mfcc): 25 ms Hamming frames every 10 ms, 40 mel bands, log, DCT."""
    spec = power_spectrogram(x, sample_rate)
    fb = mel_filterbank(n_mels, 512, sample_rate)
    mel = np.log(spec @ fb.T + 1e-10)
    return mel @ _dct_matrix(n_mfcc, n_mels).T


@functools.lru_cache(maxsize=8)
def _silent_energy(sample_rate: int) -> float:
    """The energy coefficient (MFCC 0) of a frame of zeros: a padded frame's."""
    return float(mfcc(np.zeros(int(0.025 * sample_rate)), sample_rate, 1)[0, 0])


def mfcc_statistics(x: np.ndarray, sample_rate: int = 16000, n_mfcc: int = 13, *,
                    length: int | None = None) -> np.ndarray:
    """Fixed-size clip descriptor: mean and std of MFCCs and of their deltas (4 * n_mfcc values),
    computed over the non-silent frames when there are enough of them.

    ``length``: the statistics of ``x`` zero-padded to ``length`` samples, computed on ``x``
    alone where the padding cannot count (padded frames are silent, left out: enough frames are
    active and a frame of zeros is not); else on the padded clip. A clip batched by duration
    (padded less) gets exactly its fixed-length features."""
    c = mfcc(x, sample_rate, n_mfcc)
    energy = c[:, 0]
    active = energy > energy.max() - 12.0  # ~ frames within 50 dB of the loudest
    if length is not None and x.shape[0] < length and (
            active.sum() < 5 or _silent_energy(sample_rate) > energy.max() - 12.0):
        return mfcc_statistics(np.pad(x, (0, length - x.shape[0])), sample_rate, n_mfcc)
    if active.sum() >= 5:
        c = c[active]
    d = np.diff(c, axis=0) if c.shape[0] > 1 else np.zeros_like(c)
    return np.concatenate([c.mean(0), c.std(0), d.mean(0), d.std(0)]).astype(np.float32)


def speech_likeness(x: np.ndarray, sample_rate: int = 16000) -> tuple[float, float]:
    """(share of active frames that look like speech, share of silent frames) for one clip.

    A 25 ms frame is *active* when its energy is within 40 dB of the clip's loudest frame and
    above -60 dBFS. An active frame *looks like speech* when at least 60 % of its energy lies in
    the speech band 250-4000 Hz and its spectral flatness (geometric / arithmetic mean of the
    power spectrum in 250-4000 Hz) is at most 0.35, i.e. it is band-limited and harmonic/formant
    structured rather than broadband noise.
    """
    spec = power_spectrogram(x, sample_rate)
    energy = spec.sum(axis=1)
    n_fft = 512
    if energy.size == 0 or energy.max() <= 0:
        return 0.0, 1.0
    ref = energy.max()
    # -60 dBFS for a full-scale sine in this framing: window power * n_fft scale
    floor = (0.001 ** 2) * (np.hamming(int(0.025 * sample_rate)) ** 2).sum() * n_fft / 2
    active = (energy > ref * 1e-4) & (energy > floor)
    silent_share = 1.0 - float(active.mean())
    if not active.any():
        return 0.0, 1.0
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    band = (freqs >= 250) & (freqs <= 4000)
    s = spec[active]
    band_ratio = s[:, band].sum(1) / (s.sum(1) + 1e-20)
    sb = s[:, band] + 1e-20
    flatness = np.exp(np.mean(np.log(sb), axis=1)) / np.mean(sb, axis=1)
    speechy = (band_ratio >= 0.6) & (flatness <= 0.35)
    return float(speechy.mean()), silent_share


# ---------------------------------------------------------------------------- Whisper log-mel
def _hz_to_mel_slaney(f):
    f = np.asarray(f, dtype=np.float64)
    mel = 3.0 * f / 200.0
    logstep = 27.0 / np.log(6.4)
    return np.where(f >= 1000.0, 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) * logstep, mel)


def _mel_to_hz_slaney(m):
    m = np.asarray(m, dtype=np.float64)
    f = 200.0 * m / 3.0
    logstep = np.log(6.4) / 27.0
    return np.where(m >= 15.0, 1000.0 * np.exp(logstep * (m - 15.0)), f)


def whisper_mel_filters(n_mels: int = 80, n_fft: int = 400, sample_rate: int = 16000) -> np.ndarray:
    """Slaney-scale, Slaney-normalised triangular filters, shape (n_fft // 2 + 1, n_mels) — the
    filters of Whisper's feature extractor (0 Hz to 8 kHz)."""
    n_bins = n_fft // 2 + 1
    mels = np.linspace(_hz_to_mel_slaney(0.0), _hz_to_mel_slaney(8000.0), n_mels + 2)
    hz = _mel_to_hz_slaney(mels)
    fft_freqs = np.linspace(0, sample_rate // 2, n_bins)
    diff = np.diff(hz)
    slopes = hz[None, :] - fft_freqs[:, None]
    down = -slopes[:, :-2] / diff[:-1]
    up = slopes[:, 2:] / diff[1:]
    fb = np.maximum(0.0, np.minimum(down, up))
    return fb * (2.0 / (hz[2:n_mels + 2] - hz[:n_mels]))[None, :]


@functools.lru_cache(maxsize=8)
def _whisper_constants(n_mels: int, sample_rate: int):
    n_fft = 400
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)  # periodic Hann
    return window, whisper_mel_filters(n_mels, n_fft, sample_rate)


def whisper_log_mel(wav: np.ndarray, n_mels: int = 80, sample_rate: int = 16000) -> np.ndarray:
    """Whisper's log-mel features of a batch of waveforms ``(B, T)`` -> ``(B, T // 160, n_mels)``.

    Same computation as ``transformers.WhisperFeatureExtractor`` (25 ms periodic-Hann STFT,
    10 ms hop, centred with reflect padding, power spectrum, Slaney mel filters, log10 floored at
    1e-10, dynamic range limited to 8 (i.e. 80 dB) below each clip's maximum, then
    ``(x + 4) / 4``), without the fixed 30 s padding. Tested against it to 1e-5.
    """
    n_fft, hop = 400, 160
    window, filters = _whisper_constants(int(n_mels), int(sample_rate))
    wav = np.atleast_2d(np.asarray(wav, dtype=np.float64))
    out = np.empty((wav.shape[0], wav.shape[1] // hop, n_mels), np.float32)
    for i, x in enumerate(wav):
        x = np.pad(x, n_fft // 2, mode="reflect")
        n = 1 + (x.shape[0] - n_fft) // hop
        idx = np.arange(n_fft)[None, :] + hop * np.arange(n)[:, None]
        power = np.abs(np.fft.rfft(x[idx] * window, axis=1)) ** 2
        mel = np.log10(np.maximum(power @ filters, 1e-10))[:-1]
        mel = np.maximum(mel, mel.max() - 8.0)
        out[i] = ((mel + 4.0) / 4.0)[: out.shape[1]]
    return out
