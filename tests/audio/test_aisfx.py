"""aisfx-cnn: the Keras port of the aiSFX sound-effects CNN against the package's own torch module
on the real checkpoint (embeddings within 1e-4), its log-mel front end against numpy, a refused
checkpoint, and the engine's conformance suite."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from automl_tl.testing import BackboneTestCase, missing, require_module

from audio_helpers import sine, write_audio

TOL = 1e-4


def _spec():
    from automl_tl_audio import specs

    return {s.name: s for s in specs()}["aisfx-cnn"]


def _sounds(n: int = 44100) -> np.ndarray:
    rng = np.random.default_rng(0)
    t = np.arange(n) / 44100
    clicks = np.zeros(n)
    clicks[::2205] = 1.0
    sweep = np.sin(2 * np.pi * (200 * t + 3000 * t ** 2))
    return np.stack([0.3 * np.sin(2 * np.pi * 440 * t) + 0.01 * rng.standard_normal(n),
                     clicks, sweep * np.linspace(0, 1, n), 0.1 * rng.standard_normal(n)]).astype(np.float32)


@pytest.fixture(scope="module")
def keras_model():
    spec = _spec()
    from automl_tl.weights import package_dir

    if package_dir("aisfx") is None:
        missing("aisfx is not installed: pip install --no-deps aisfx==0.1.2 (scripts/setup.sh does)")
    weights = spec.resolve_weights()
    assert weights.kind == "package" and weights.converted
    return spec.build(weights, {"sample_rate": 44100, "duration": 1.0}), weights.location


def test_embeddings_match_the_package_torch_module(keras_model):
    torch = require_module("torch", "bash scripts/setup.sh --test installs it")
    from aisfx.models.cnn2d import EmbeddingNet  # the package's own module (plain torch.nn)

    import keras

    model, location = keras_model
    state, datasets = torch.load(location, map_location="cpu", weights_only=False)
    net = EmbeddingNet("max", 3, 1, 64)
    net.load_state_dict({k[len("embedding_net."):]: v for k, v in state.items()
                         if k.startswith("embedding_net.")})
    net.eval()
    wav = _sounds()
    log_mel = keras.ops.convert_to_numpy(
        keras.Model(model.input, model.get_layer("aisfx_log_mel").output)(wav))
    assert log_mel.shape == (4, 44, 96)
    with torch.no_grad():
        expected = net(torch.from_numpy(np.array(log_mel))).numpy()
    got = keras.ops.convert_to_numpy(model(wav, training=False))
    assert got.shape == (4, 512) and np.abs(expected).max() > 0.1
    np.testing.assert_allclose(got, expected, atol=TOL, rtol=0)
    # distinct sounds give distinct embeddings (a broken front end gives near-equal ones)
    assert np.corrcoef(got)[np.triu_indices(4, 1)].min() < 0.99


def test_front_end_is_the_package_log_mel(keras_model):
    import keras

    from automl_tl_audio._aisfx import log_mel_filters

    model, _ = keras_model
    wav = _sounds()
    got = keras.ops.convert_to_numpy(
        keras.Model(model.input, model.get_layer("aisfx_log_mel").output)(wav))
    # numpy: peak 1, zero-padded centred frames of 2048 every 1024, periodic Hann, power spectrum
    fb = log_mel_filters()
    assert fb.shape == (1025, 96) and np.allclose(fb.sum(0), 1.0, atol=1e-5)  # unit-sum bands
    hz = np.fft.rfftfreq(2048, 1 / 44100)
    centres = hz[fb.argmax(0)]
    htk = np.linspace(0, 2595 * np.log10(1 + 22050 / 700), 98)[1:-1]  # HTK mel, 0 to 22.05 kHz
    assert np.abs(centres - 700 * (10 ** (htk / 2595) - 1)).max() <= 44100 / 2048  # within a bin
    x = wav / np.abs(wav).max(axis=1, keepdims=True)
    x = np.pad(x.astype(np.float64), ((0, 0), (1024, 1024)))
    idx = np.arange(2048)[None, :] + 1024 * np.arange(44)[:, None]
    spec = np.abs(np.fft.rfft(x[:, idx] * np.hanning(2049)[:-1], axis=-1)) ** 2
    expected = np.log10(spec @ fb * 1e4 + 1) / 9.457798957824707
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=1e-4)


def test_another_checkpoint_is_refused(tmp_path):
    torch = require_module("torch", "bash scripts/setup.sh --test installs it")
    from automl_tl.errors import WeightsUnavailableError

    path = tmp_path / "other.pth"
    torch.save({"embedding_net.conv_block1.conv1.weight": torch.zeros(8, 1, 3, 3)}, path)
    spec = _spec()
    weights = spec.resolve_weights({"aisfx-cnn": str(path)})
    assert weights.kind == "user" and weights.converted
    with pytest.raises(WeightsUnavailableError, match="not an aiSFX checkpoint"):
        spec.build(weights, {"sample_rate": 44100, "duration": 0.5})
    Path(path).write_bytes(b"not a zip")
    with pytest.raises(WeightsUnavailableError, match="cannot read"):
        spec.build(spec.resolve_weights({"aisfx-cnn": str(path)}), {"sample_rate": 44100, "duration": 0.5})


class TestAisfxConformance(BackboneTestCase):
    backbone_names = ("aisfx-cnn",)
    input_config = {"sample_rate": 44100, "duration": 0.5}

    def plugin_manager(self):
        import automl_tl_audio
        from automl_tl.plugin_manager import PluginManager

        return PluginManager(autoload=False, builtins=False, plugins=[automl_tl_audio])

    def sample_items(self, tmp_path):
        return [write_audio(tmp_path / "a.wav", sine(300, 22050, 0.8), 22050),
                write_audio(tmp_path / "b.flac", np.stack([sine(700, 8000, 0.3)] * 2, 1), 8000)]


def test_profile_finds_sounds_similar_and_speech_backbones_not(tmp_path):
    from automl_tl_audio import specs
    from automl_tl_audio._modality import AudioModality

    rng = np.random.default_rng(1)
    items = [write_audio(tmp_path / f"n{i}.wav", 0.3 * rng.standard_normal(16000), 16000) for i in range(3)]
    by_name = {s.name: s for s in specs()}
    got = {name: AudioModality().analyse(items, {}, by_name[name], None) for name in ("aisfx-cnn", "speech-embedding")}
    sfx, speech = got["aisfx-cnn"]["similarity"], got["speech-embedding"]["similarity"]
    assert sfx == pytest.approx(1.0 - speech) and sfx > 0.5 > speech  # noise is no speech
    assert got["aisfx-cnn"]["input_config"]["sample_rate"] == 44100


def test_model_keras_round_trip_without_custom_objects(tmp_path):
    """A delivered run is ``model.keras``: the front end must load back with plain Keras (no
    custom objects; ``keras.ops.stft`` could not be saved)."""
    import keras

    spec = _spec()
    model = spec.build(None, {"sample_rate": 44100, "duration": 0.5})
    model.save(tmp_path / "model.keras")
    again = keras.models.load_model(tmp_path / "model.keras")
    wav = _sounds(22050)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(again(wav)), keras.ops.convert_to_numpy(model(wav)),
                               atol=1e-6)
    assert sum(int(np.prod(v.shape)) for v in model.weights) == spec.n_params  # no front-end variables
