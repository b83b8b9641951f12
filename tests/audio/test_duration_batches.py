"""Audio batched by duration (issue 33, item 4): the MFCC baseline's adapter knows each clip's
duration from its header, the batching groups clips of similar duration, a batch is padded only
to its longest clip's bucket, and the features equal those of clips padded to the fixed length.
Backbones whose features depend on the padding keep the fixed length."""

from __future__ import annotations

import numpy as np
import pytest
from audio_helpers import sine, write_audio

from automl_tl.batching import batch_order, map_batches


@pytest.fixture(scope="module")
def clips(tmp_path_factory, digit_files):
    """The 30 spoken digits (22.05 kHz, 0.6-0.9 s) and made clips of other durations, rates and
    channel counts: a tone burst with silence around it (too few active frames: pooled over
    every frame), one longer than the fixed length (cropped), a stereo 44.1 kHz one, an 8 kHz
    one and one loud up to its end."""
    d = tmp_path_factory.mktemp("durations")
    rng = np.random.default_rng(0)
    burst = np.concatenate([np.zeros(1600), sine(300, 16000, 0.2), np.zeros(800)]).astype(np.float32)
    made = [write_audio(d / "burst.wav", burst, 16000),
            write_audio(d / "long.wav", 0.1 * rng.standard_normal(16000 * 2), 16000),
            write_audio(d / "stereo.wav", np.stack([sine(500, 44100, 0.35), sine(700, 44100, 0.35)], 1), 44100),
            write_audio(d / "phone.wav", sine(250, 8000, 0.45) * np.hanning(3600), 8000),
            # loud to its last sample, which ends on a bucket's boundary (12 000 of 16 000)
            write_audio(d / "edge.wav", 0.3 * rng.standard_normal(12000), 16000)]
    return list(digit_files[0]) + made


def _specs():
    from automl_tl_audio import specs

    return {s.name: s for s in specs()}


CFG = {"sample_rate": 16000, "duration": 1.0}


def test_length_is_the_header_duration(clips):
    from automl_tl_audio._io import read_clip

    adapter = _specs()["mfcc"].make_adapter(CFG, None, None)
    for path in clips:
        whole = read_clip(path, 16000, None)  # decoded and resampled, not cropped
        assert adapter.length(path) == min(len(whole), 16000), path
    assert adapter.length(clips[31]) == 16000  # the 2 s clip: capped at the fixed length


def test_batches_group_durations_and_pad_to_their_bucket(clips):
    from automl_tl_audio._adapter import DURATION_BUCKETS
    from automl_tl_audio import make_waveform_adapter

    adapter = _specs()["mfcc"].make_adapter(CFG, None, None)
    fixed = make_waveform_adapter(CFG)
    lengths = np.array([adapter.length(c) for c in clips])
    batches = batch_order(clips, adapter, 8)
    assert (np.diff(lengths[np.concatenate(batches)]) >= 0).all()  # in duration order
    widths = set()
    step = 16000 // DURATION_BUCKETS
    for idx in batches:
        items = [clips[i] for i in idx]
        got, full = adapter(items), fixed(items)
        longest = lengths[idx].max() + adapter.margin  # a frame of zeros after the longest clip
        assert longest <= got.shape[1] < longest + step or got.shape[1] == 16000
        widths.add(got.shape[1])
        # the same samples as the fixed-length adapter's, with fewer zeros after them
        np.testing.assert_array_equal(got, full[:, :got.shape[1]])
        assert not full[:, got.shape[1]:].any()
    assert len(widths) <= DURATION_BUCKETS and min(widths) < 16000
    # training order: shuffled windows, each batch still of similar durations
    rng = np.random.default_rng(0)
    spread = [np.ptp(lengths[idx]) for idx in batch_order(clips, adapter, 8, rng=rng)]
    assert np.mean(spread) < np.ptp(lengths)


def test_mfcc_features_equal_fixed_length_ones(clips):
    """MFCC statistics pool the active frames only: padded silence is not among them, so the
    batches padded to their bucket give the fixed-length features (a clip with fewer than 5
    active frames, the tone burst, is pooled over every frame: computed padded to the fixed
    length)."""
    from automl_tl_audio import make_waveform_adapter

    spec = _specs()["mfcc"]
    featurize = spec.featurize(None, CFG)
    by_duration = map_batches(featurize, clips, spec.make_adapter(CFG, None, None), 8)
    fixed = map_batches(featurize, clips, make_waveform_adapter(CFG), 8)
    np.testing.assert_allclose(by_duration, fixed, rtol=0, atol=1e-6)


def test_padding_sensitive_backbones_keep_the_fixed_length(clips):
    for name, spec in _specs().items():
        if name == "mfcc":
            continue
        adapter = spec.make_adapter(spec.default_input_config, None, None)
        assert getattr(adapter, "length", None) is None, name  # no duration order, fixed shapes
