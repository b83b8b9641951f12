"""AudioModality: counted skips, describe statistics, similarity, baseline, augmentation."""

from __future__ import annotations

import numpy as np
import pytest

from automl_tl.modalities import CheckResult
from automl_tl_audio._modality import AudioModality

from audio_helpers import sine, write_audio


@pytest.fixture()
def bad_and_good(tmp_path, digit_files):
    good = digit_files[0][:3]
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF" + bytes(range(256)) * 4)
    truncated = tmp_path / "truncated.flac"
    truncated.write_bytes(open(good[0], "rb").read()[:30])  # header cut inside: unreadable
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    silent = write_audio(tmp_path / "silent.wav", np.zeros(16000), 16000)
    dither = write_audio(tmp_path / "dither.wav", np.random.default_rng(0).normal(0, 1e-4, 16000), 16000)
    mp3 = tmp_path / "song.mp3"
    mp3.write_bytes(b"ID3" + b"\x00" * 200)
    txt = tmp_path / "notes.txt"
    txt.write_text("hello")
    missing = tmp_path / "missing.wav"
    items = [good[0], str(corrupt), str(truncated), str(empty), silent, good[1], dither, str(mp3),
             str(txt), str(missing), good[2]]
    return items, good


def test_check_counts_every_skip_with_a_reason(bad_and_good):
    items, good = bad_and_good
    res = AudioModality().check(items)
    assert isinstance(res, CheckResult)
    assert res.keep == (0, 5, 10) and list(res.items) == good
    reasons = {s.item.rsplit("/", 1)[-1]: s.reason for s in res.skips}
    assert len(res.skips) == 8
    assert "corrupt" in reasons["corrupt.wav"]
    assert "corrupt" in reasons["truncated.flac"]
    assert "zero-length" in reasons["empty.wav"]
    assert "silence" in reasons["silent.wav"] and "silence" in reasons["dither.wav"]
    assert "corrupt" in reasons["song.mp3"] or "unsupported" in reasons["song.mp3"]
    assert "unsupported format '.txt'" in reasons["notes.txt"]
    assert "not found" in reasons["missing.wav"]


def test_describe_reports_mixed_rates_and_channels(tmp_path, digit_files):
    items = list(digit_files[0][:4])  # 22.05 kHz mono
    items.append(write_audio(tmp_path / "a.wav", sine(440, 8000, 2.0), 8000))
    items.append(write_audio(tmp_path / "b.flac", np.stack([sine(440, 44100, 3.0)] * 2, 1), 44100))
    stats = AudioModality().describe(items)
    assert stats["sample_rates"] == {"8000": 1, "22050": 4, "44100": 1}
    assert stats["mixed_sample_rates"] is True
    assert stats["channels"] == {"1": 5, "2": 1}
    assert stats["duration_seconds"]["max"] == pytest.approx(3.0)
    assert 0.0 <= stats["silence_share"] <= 1.0
    assert stats["n_files"] == 6 and stats["unreadable"] == 0


def test_mixed_rates_give_identical_adapter_shapes(tmp_path):
    from automl_tl_audio import make_waveform_adapter

    items = [write_audio(tmp_path / f"{sr}.wav", sine(500, sr, 0.7), sr) for sr in (8000, 16000, 22050, 48000)]
    x = make_waveform_adapter({"sample_rate": 16000, "duration": 0.5})(items)
    assert x.shape == (4, 8000) and x.dtype == np.float32
    for row in x:  # same tone whatever the source rate
        assert np.allclose(row[100:-100], x[1][100:-100], atol=0.02)


def test_analyse_similarity_speech_vs_noise(tmp_path, digit_files):
    from automl_tl_audio import specs

    spec = {s.name: s for s in specs()}["speech-embedding"]
    mod = AudioModality()
    speech = digit_files[0]
    stats = mod.describe(speech)
    out = mod.analyse(speech, stats, spec, None)
    assert set(out) == {"similarity", "input_config", "stats"}
    assert out["similarity"] > mod.similarity_threshold
    assert out["input_config"]["sample_rate"] == 16000
    assert 0.8 <= out["input_config"]["duration"] <= 10.0
    assert out["stats"]["resampled_from"] == [22050]
    rng = np.random.default_rng(0)
    noise = [write_audio(tmp_path / f"n{i}.wav", rng.uniform(-0.5, 0.5, 16000), 16000) for i in range(4)]
    low = mod.analyse(noise, mod.describe(noise), spec, None)["similarity"]
    assert low < 0.1 < out["similarity"]
    assert mod.similarity_method


def test_duration_clipped(tmp_path):
    mod = AudioModality()
    assert mod.suggested_duration({"duration_seconds": {"p90": 0.1}}) == 0.5
    assert mod.suggested_duration({"duration_seconds": {"p90": 100.0}}) == 10.0
    assert mod.suggested_duration({"duration_seconds": {"p90": 2.34}}) == 2.3


def test_mfcc_shape_and_finite():
    from automl_tl_audio._features import mfcc, mfcc_statistics

    x = sine(300, 16000, 1.0)
    assert mfcc(x).shape == (98, 13)
    s = mfcc_statistics(x)
    assert s.shape == (52,) and np.all(np.isfinite(s))


def test_augmentation_is_a_training_only_layer():
    import keras

    layer = AudioModality().augmentation({"sample_rate": 16000, "duration": 1.0})
    x = np.zeros((2, 100), np.float32)
    assert np.all(np.asarray(layer(x, training=False)) == 0)
    assert np.any(np.asarray(layer(x, training=True)) != 0)
    assert isinstance(layer, keras.layers.Layer)
