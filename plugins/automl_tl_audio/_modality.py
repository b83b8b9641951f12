"""The ``audio`` modality: checks, statistics, similarity, classical baseline, augmentation."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any, Sequence

import numpy as np

from automl_tl.modalities import CheckResult, Modality, Skip

from ._io import AUDIO_EXTENSIONS, AudioReadError, probe, read_clip, scan_peak

__all__ = ["AudioModality", "SILENCE_PEAK"]

#: a clip whose peak absolute sample (full scale = 1.0) stays below this is "pure silence"
#: (-60 dBFS; a 16-bit file of digital zeros or dither noise only)
SILENCE_PEAK = 1e-3
_SAMPLE_SEED = 0
#: backbones pretrained on non-speech sounds: their similarity is one minus the speech-likeness
SOUND_EFFECT_BACKBONES = ("aisfx-cnn",)


def _sample(n: int, k: int) -> np.ndarray:
    if n <= k:
        return np.arange(n)
    return np.sort(np.random.default_rng(_SAMPLE_SEED).choice(n, size=k, replace=False))


def _quantiles(values: Sequence[float]) -> dict:
    if not len(values):
        return {}
    a = np.asarray(values, dtype=np.float64)
    return {"min": float(a.min()), "p10": float(np.percentile(a, 10)),
            "median": float(np.median(a)), "mean": float(a.mean()),
            "p90": float(np.percentile(a, 90)), "max": float(a.max())}


class AudioModality(Modality):
    name = "audio"
    extensions = AUDIO_EXTENSIONS
    inline = False

    similarity_method = (
        "Speech-likeness of the data for the backbones pretrained on speech "
        "(speech-embedding: Google's keyword/speech corpus; Wav2Vec2: LibriSpeech; Whisper: 680k h "
        "of web speech), one minus it for aisfx-cnn (pretrained on sound effects). Up to 64 clips (seeded sample) are read at 16 kHz (first 10 s); each "
        "25 ms frame (10 ms hop) within 40 dB of the clip's loudest frame is 'active', and an "
        "active frame counts as speech-like when >= 60 % of its energy lies in 250-4000 Hz and its "
        "spectral flatness there is <= 0.35 (band-limited, formant/harmonic structure rather than "
        "broadband noise). similarity = mean over clips of the share of speech-like active frames. "
        "Clean speech scores ~0.7-1.0, white noise ~0, tonal music can score in between (the "
        "measure cannot tell singing or mid-band instruments from speech)."
    )
    similarity_threshold = 0.5

    def __init__(self, *, silence_peak: float = SILENCE_PEAK, silence_scan_seconds: float = 60.0,
                 similarity_clips: int = 64, describe_max_files: int = 5000,
                 silence_sample: int = 200) -> None:
        self.silence_peak = silence_peak
        self.silence_scan_seconds = silence_scan_seconds
        self.similarity_clips = similarity_clips
        self.describe_max_files = describe_max_files
        self.silence_sample = silence_sample

    # ------------------------------------------------------------------ check
    def check(self, items: Sequence[Any], *, progress: bool = False) -> CheckResult:
        """Keep clips that decode and are not silent. Skips (counted, with reasons): file not
        found, zero-length file, unsupported format, corrupt file, pure silence (peak of the
        first ``silence_scan_seconds`` below -60 dBFS). Only headers plus at most one minute of
        each file are decoded, in 5 s blocks (bounded memory for very long recordings)."""
        keep, kept, skips = [], [], []
        it = enumerate(items)
        if progress:
            try:
                from tqdm.auto import tqdm

                it = tqdm(it, total=len(items), desc="checking audio")
            except ImportError:  # pragma: no cover
                pass
        for i, item in it:
            path = str(item)
            try:
                info = probe(path)
                peak = scan_peak(path, info, self.silence_scan_seconds)
                if peak < self.silence_peak:
                    raise AudioReadError(
                        f"pure silence (peak {20 * np.log10(max(peak, 1e-12)):.0f} dBFS in the first "
                        f"{min(info.duration, self.silence_scan_seconds):.0f} s)")
            except AudioReadError as exc:
                skips.append(Skip(item=path, reason=exc.reason))
                continue
            keep.append(i)
            kept.append(item)
        return CheckResult(keep=tuple(keep), items=tuple(kept), skips=tuple(skips))

    # ------------------------------------------------------------------ describe
    def describe(self, items: Sequence[Any]) -> dict:
        """Header statistics (``sf.info``, no decoding) of up to ``describe_max_files`` files plus
        the silence share measured on a sample of ``silence_sample`` clips (first 10 s)."""
        idx = _sample(len(items), self.describe_max_files)
        durations, rates, channels, formats, unreadable = [], Counter(), Counter(), Counter(), 0
        infos = []
        for i in idx:
            try:
                info = probe(str(items[i]))
            except AudioReadError:
                unreadable += 1
                continue
            infos.append(info)
            durations.append(info.duration)
            rates[info.sample_rate] += 1
            channels[info.channels] += 1
            formats[info.format] += 1
        from ._features import speech_likeness

        silent = []
        for j in _sample(len(infos), self.silence_sample):
            info = infos[j]
            try:
                x = read_clip(info.path, 16000, min(info.duration, 10.0), info=info)
            except AudioReadError:
                continue
            silent.append(speech_likeness(x, 16000)[1])
        return {
            "n_files": len(items),
            "n_described": len(infos),
            "unreadable": unreadable,
            "duration_seconds": _quantiles(durations),
            "total_hours": float(np.sum(durations) / 3600.0) if durations else 0.0,
            "sample_rates": {str(k): v for k, v in sorted(rates.items())},
            "mixed_sample_rates": len(rates) > 1,
            "channels": {str(k): v for k, v in sorted(channels.items())},
            "formats": dict(formats),
            "silence_share": float(np.mean(silent)) if silent else None,
        }

    # ------------------------------------------------------------------ analyse
    @staticmethod
    def suggested_duration(stats: dict, spec=None) -> float:
        d = (stats or {}).get("duration_seconds", {}).get("p90")
        if d is None:
            d = float((getattr(spec, "default_input_config", None) or {}).get("duration", 1.0))
        lo, hi = 0.5, 10.0
        if spec is not None and spec.name == "speech-embedding":
            lo = 0.8  # the ONNX model needs >= 12400 samples (0.775 s)
        return float(np.round(np.clip(d, lo, hi), 1))

    def analyse(self, items: Sequence[Any], stats: dict, spec, weights) -> dict:
        from ._features import speech_likeness

        t0 = time.perf_counter()
        idx = _sample(len(items), self.similarity_clips)
        scores, silent = [], []
        for i in idx:
            try:
                info = probe(str(items[i]))
                x = read_clip(info.path, 16000, min(info.duration, 10.0), info=info)
            except AudioReadError:
                continue
            s, q = speech_likeness(x, 16000)
            scores.append(s)
            silent.append(q)
        similarity = float(np.clip(np.mean(scores), 0.0, 1.0)) if scores else 0.0
        if spec is not None and spec.name in SOUND_EFFECT_BACKBONES and scores:
            similarity = 1.0 - similarity  # pretrained on sounds: the less speech, the closer
        defaults = dict(getattr(spec, "default_input_config", None) or {})
        sample_rate = int(defaults.get("sample_rate", 16000))
        input_config = {**defaults, "sample_rate": sample_rate,
                        "duration": self.suggested_duration(stats, spec)}
        return {
            "similarity": similarity,
            "input_config": input_config,
            "stats": {
                "clips_measured": len(scores),
                "speech_like_share": _quantiles(scores),
                "silence_share": float(np.mean(silent)) if silent else None,
                "resampled_from": sorted(int(k) for k in (stats or {}).get("sample_rates", {})
                                         if int(k) != sample_rate),
                "seconds": round(time.perf_counter() - t0, 3),
            },
        }

    # ------------------------------------------------------------------ augmentation
    def augmentation(self, input_config: dict):
        """Small additive Gaussian noise in training only (about -46 dBFS on raw waveforms,
        0.05 on Whisper log-mel features)."""
        import keras

        std = 0.05 if (input_config or {}).get("frontend") == "log-mel" else 0.005
        return keras.layers.GaussianNoise(std, name="audio_noise")
