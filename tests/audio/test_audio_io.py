"""Reading clips: formats, resampling, downmix, pad/crop, bounded memory on a 2-hour file."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from automl_tl_audio._io import AudioReadError, probe, read_clip, scan_peak

from audio_helpers import sine, write_audio


def _peak_freq(x, sr):
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return np.fft.rfftfreq(len(x), 1 / sr)[np.argmax(spec)]


@pytest.mark.parametrize("suffix,kw", [(".wav", {}), (".flac", {}), (".ogg", {"format": "OGG", "subtype": "VORBIS"})])
def test_formats_read_and_resampled(tmp_path, suffix, kw):
    path = write_audio(tmp_path / f"a{suffix}", sine(440, 22050, 1.2), 22050, **kw)
    x = read_clip(path, 16000, 1.0)
    assert x.shape == (16000,) and x.dtype == np.float32
    assert abs(_peak_freq(x, 16000) - 440) < 5


def test_mp3_is_a_clip_where_libsndfile_reads_it(tmp_path):
    """MP3 (what phones and downloads give) is read like WAV when the installed libsndfile can,
    and a folder dataset counts .mp3 files as audio then."""
    import soundfile as sf

    from automl_tl_audio._io import AUDIO_EXTENSIONS

    if "MP3" not in sf.available_formats():
        assert ".mp3" not in AUDIO_EXTENSIONS
        pytest.skip("this libsndfile has no MP3")
    assert ".mp3" in AUDIO_EXTENSIONS
    path = write_audio(tmp_path / "a.mp3", 0.5 * sine(440, 22050, 1.2), 22050, format="MP3")
    x = read_clip(path, 16000, 1.0)
    assert x.shape == (16000,) and abs(_peak_freq(x, 16000) - 440) < 5


@pytest.mark.parametrize("sr", [8000, 11025, 44100, 48000])
def test_any_sample_rate_resampled(tmp_path, sr):
    path = write_audio(tmp_path / f"s{sr}.wav", sine(1000, sr, 1.0), sr)
    x = read_clip(path, 16000, 1.0)
    assert x.shape == (16000,)
    assert abs(_peak_freq(x, 16000) - 1000) < 5
    assert 0.4 < np.abs(x[100:-100]).max() < 0.6


def test_multichannel_downmixed(tmp_path):
    left, right = sine(440, 16000, 1.0, 0.4), np.zeros(16000, np.float32)
    path = write_audio(tmp_path / "st.wav", np.stack([left, right, right, right], axis=1), 16000)
    assert probe(path).channels == 4
    x = read_clip(path, 16000, 1.0)
    np.testing.assert_allclose(x, left / 4, atol=1e-4)


def test_pad_and_crop(tmp_path):
    path = write_audio(tmp_path / "short.wav", sine(440, 16000, 0.3), 16000)
    x = read_clip(path, 16000, 1.0)
    assert x.shape == (16000,) and np.all(x[4900:] == 0) and np.abs(x[:4700]).max() > 0.4
    path = write_audio(tmp_path / "long.wav", np.linspace(-1, 1, 48000, dtype=np.float32), 16000)
    assert read_clip(path, 16000, 0.5)[-1] < -0.6  # first half second only
    mid = read_clip(path, 16000, 0.5, crop="center")
    assert abs(float(mid.mean())) < 0.05


def test_in_memory_arrays_accepted():
    x = read_clip(np.ones(100, np.float32), 16000, 0.01)
    assert x.shape == (160,) and x[:100].sum() == 100 and x[100:].sum() == 0


def test_unreadable_files_raise_with_reason(tmp_path):
    empty = tmp_path / "e.wav"
    empty.write_bytes(b"")
    with pytest.raises(AudioReadError, match="zero-length"):
        probe(empty)
    bad = tmp_path / "b.wav"
    bad.write_bytes(b"RIFF\x00\x00garbage" * 10)
    with pytest.raises(AudioReadError, match="corrupt"):
        probe(bad)
    txt = tmp_path / "n.txt"
    txt.write_text("not audio")
    with pytest.raises(AudioReadError, match="unsupported format"):
        probe(txt)


def _write_two_hours(path, sr=8000):
    import soundfile as sf

    block = (0.1 * np.sin(2 * np.pi * 300 * np.arange(sr * 60) / sr)).astype(np.float32)
    with sf.SoundFile(str(path), "w", sr, 1, subtype="PCM_16") as f:
        for _ in range(120):  # 120 one-minute blocks, never the whole file in memory
            f.write(block)
    return str(path)


def test_two_hour_file_is_read_memory_bounded(tmp_path):
    from automl_tl_audio._modality import AudioModality

    path = _write_two_hours(tmp_path / "two_hours.wav")
    info = probe(path)
    assert info.duration == pytest.approx(7200.0) and (tmp_path / "two_hours.wav").stat().st_size > 110e6
    tracemalloc.start()
    try:
        x = read_clip(path, 16000, 10.0, info=info)
        scan_peak(path, info)
        mod = AudioModality()
        res = mod.check([path])
        stats = mod.describe([path])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert x.shape == (160000,)
    assert res.keep == (0,) and not res.skips
    assert stats["duration_seconds"]["max"] == pytest.approx(7200.0)
    assert peak < 50e6, f"peak traced memory {peak / 1e6:.1f} MB"
    with pytest.raises(AudioReadError, match="too long"):
        read_clip(path, 16000, None, info=info)
