"""Keras Whisper encoder vs transformers (PyTorch) on tiny random checkpoints: max |diff| < 1e-4.

Both are given the same log-mel input; the adapter's numpy log-mel is checked against
``transformers.WhisperFeatureExtractor``.
"""

from __future__ import annotations

import numpy as np
import pytest
from automl_tl.testing import require_module

torch = require_module("torch", "bash scripts/setup.sh --test installs it")
transformers = require_module("transformers")

TOL = 1e-4
# max_source_positions=50 -> the HF encoder takes exactly 100 frames = 1 s of audio
TINY = dict(d_model=32, encoder_layers=2, decoder_layers=1, encoder_attention_heads=2,
            decoder_attention_heads=2, encoder_ffn_dim=37, decoder_ffn_dim=37, num_mel_bins=80,
            max_source_positions=50, max_target_positions=16, vocab_size=100, pad_token_id=0,
            bos_token_id=1, eos_token_id=2, decoder_start_token_id=1)


def _hf(folder, cls_name="WhisperForConditionalGeneration"):
    torch.manual_seed(0)
    model = getattr(transformers, cls_name)(transformers.WhisperConfig(**TINY)).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.add_(torch.randn_like(p) * 0.1)
    model.save_pretrained(folder)
    return model


def _sequence(model):
    import keras

    return keras.Model(model.input, model.get_layer("last_hidden_state").output)


@pytest.fixture(scope="module")
def spec():
    from automl_tl_audio import specs

    return {s.name: s for s in specs()}["whisper-tiny-encoder"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("whisper")
    return folder, _hf(folder)


@pytest.mark.parametrize("cls_name", ["WhisperForConditionalGeneration", "WhisperModel"])
def test_parity_through_spec(tmp_path, spec, cls_name):
    hf = _hf(tmp_path, cls_name)
    weights = spec.resolve_weights({"whisper-tiny-encoder": str(tmp_path)})
    cfg = {"sample_rate": 16000, "duration": 1.0}
    model = spec.build(weights, cfg)
    feats = np.random.default_rng(0).normal(0, 1, (2, 100, 80)).astype(np.float32)
    with torch.no_grad():
        ref = hf.get_encoder()(torch.from_numpy(feats.transpose(0, 2, 1).copy())).last_hidden_state.numpy()
    out = np.asarray(_sequence(model)(feats, training=False))
    assert out.shape == ref.shape == (2, 50, 32)
    assert np.abs(out - ref).max() < TOL
    assert np.abs(np.asarray(model(feats, training=False)) - ref.mean(1)).max() < TOL


def test_log_mel_adapter_matches_feature_extractor(spec, tiny, digit_files):
    folder, _ = tiny
    weights = spec.resolve_weights({"whisper-tiny-encoder": str(folder)})
    adapter = spec.make_adapter({"sample_rate": 16000, "duration": 1.0}, weights, None)
    items = digit_files[0][:2]
    feats = adapter(items)
    assert feats.shape == (2, 100, 80) == (2, *adapter.output_shape)
    wav = adapter.waveforms(items)
    fe = transformers.WhisperFeatureExtractor(feature_size=80)
    ref = fe(list(wav), sampling_rate=16000, return_tensors="np", padding="max_length",
             max_length=16000)["input_features"].transpose(0, 2, 1)
    assert np.abs(feats - ref).max() < TOL  # numpy float64 STFT vs torch float32: ~1e-5


def test_adapter_rebuilds_from_assets(spec, tiny, tmp_path, digit_files):
    folder, _ = tiny
    weights = spec.resolve_weights({"whisper-tiny-encoder": str(folder)})
    adapter = spec.make_adapter({"sample_rate": 16000, "duration": 0.5}, weights, None)
    adapter.save_assets(str(tmp_path))
    again = spec.make_adapter({"sample_rate": 16000, "duration": 0.5}, None, str(tmp_path))
    assert again.config() == adapter.config()
    np.testing.assert_array_equal(again(digit_files[0][:1]), adapter(digit_files[0][:1]))


def test_short_clip_uses_first_positions(spec, tiny):
    folder, _ = tiny
    weights = spec.resolve_weights({"whisper-tiny-encoder": str(folder)})
    model = spec.build(weights, {"sample_rate": 16000, "duration": 0.3})
    assert model.input_shape == (None, 30, 80) and model.output_shape == (None, 32)
    with pytest.raises(ValueError, match="exceed"):
        spec.build(weights, {"sample_rate": 16000, "duration": 2.0})  # tiny config: 1 s max


def test_blocks_and_trainable_counts(spec, tiny):
    folder, _ = tiny
    model = spec.build(spec.resolve_weights({"whisper-tiny-encoder": str(folder)}), {"duration": 1.0})
    blocks = spec.blocks(model)
    assert len(blocks) == 3
    assert {layer.name for layer in blocks[0]} == {"wh_conv1", "wh_conv2", "wh_pos"}
    assert "wh_top_ln" in {layer.name for layer in blocks[-1]}
    ids = [id(v) for block in blocks for layer in block for v in layer.weights]
    assert len(ids) == len(set(ids)) == len(model.weights)
    per_block = [sum(layer.count_params() for layer in b) for b in blocks]
    assert sum(per_block) == model.count_params()
    assert per_block[1] + 64 == per_block[2]  # the top block also holds the final layer norm


@pytest.mark.parametrize("name,layers,dim", [("whisper-tiny-encoder", 4, 384), ("whisper-base-encoder", 6, 512)])
def test_random_init_real_configs(name, layers, dim):
    from automl_tl_audio import specs

    s = {x.name: x for x in specs()}[name]
    model = s.build(None, {"sample_rate": 16000, "duration": 1.0})
    assert model.input_shape == (None, 100, 80) and model.output_shape == (None, dim)
    # the port has a (zero, softmax-invariant) key bias that HF Whisper lacks
    assert model.count_params() - layers * dim == s.n_params
    assert len(s.blocks(model)) == s.n_blocks == layers + 1
    adapter = s.make_adapter({"sample_rate": 16000, "duration": 1.0}, None, None)
    assert adapter.config()["frontend"] == "log-mel"


@pytest.mark.parametrize("n_mels,seconds", [(80, 0.37), (128, 0.5)])
def test_numpy_log_mel_matches_transformers(n_mels, seconds):
    from automl_tl_audio._features import whisper_log_mel, whisper_mel_filters

    fe = transformers.WhisperFeatureExtractor(feature_size=n_mels)
    np.testing.assert_allclose(whisper_mel_filters(n_mels), fe.mel_filters, atol=1e-7)
    n = int(16000 * seconds)
    rng = np.random.default_rng(n_mels)
    wav = (rng.normal(0, 0.1, (2, n)) * np.linspace(0, 1, n)).astype(np.float32)
    ref = fe(list(wav), sampling_rate=16000, return_tensors="np", padding="max_length",
             max_length=n)["input_features"].transpose(0, 2, 1)
    out = whisper_log_mel(wav, n_mels)
    assert out.shape == ref.shape == (2, n // 160, n_mels)
    assert np.abs(out - ref).max() < TOL
