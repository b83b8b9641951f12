"""The plugin module: lazy imports, hook registration, spec validity."""

from __future__ import annotations

import subprocess
import sys

import pytest
from automl_tl.testing import require_module


def test_import_is_light():
    code = ("import sys, automl_tl_audio; heavy = [m for m in ('tensorflow', 'keras', 'onnxruntime', "
            "'soundfile', 'transformers', 'torch', 'scipy') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_hooks_register_modality_and_backbones():
    import automl_tl_audio
    from automl_tl.plugin_manager import PluginManager

    pm = PluginManager(autoload=False, builtins=False, plugins=[automl_tl_audio])
    assert "audio" in pm.modalities
    mod = pm.modalities.get("audio")
    assert mod.extensions[:3] == (".wav", ".flac", ".ogg")  # and MP3 / AIFF where libsndfile reads them
    assert pm.modalities.for_extension(".FLAC") is mod
    names = {s.name for s in pm.backbones.list(modality="audio")}
    assert names == {"speech-embedding", "wav2vec2-base", "whisper-tiny-encoder", "whisper-base-encoder", "mfcc",
                     "aisfx-cnn"}
    for spec in pm.backbones.list(modality="audio"):
        rate = 44100 if spec.name == "aisfx-cnn" else 16000  # the sound-effects CNN's own front end
        assert (spec.n_params > 0) != spec.classical and spec.default_input_config["sample_rate"] == rate
        assert spec.plugin


def test_hf_backbones_offline_give_actionable_error(monkeypatch, tmp_path):
    from automl_tl.errors import WeightsUnavailableError
    from automl_tl_audio import specs

    monkeypatch.setenv("AUTOML_TL_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    from automl_tl.weights import network_available

    network_available.cache_clear()
    spec = {s.name: s for s in specs()}["wav2vec2-base"]
    with pytest.raises(WeightsUnavailableError, match="--weights wav2vec2-base=PATH"):
        spec.resolve_weights()
    network_available.cache_clear()


def test_weights_dir_env_folder(monkeypatch, tmp_path):
    from automl_tl_audio import specs

    (tmp_path / "whisper-tiny-encoder").mkdir()
    monkeypatch.setenv("AUTOML_TL_WEIGHTS_DIR", str(tmp_path))
    spec = {s.name: s for s in specs()}["whisper-tiny-encoder"]
    w = spec.resolve_weights()
    assert w.kind == "user" and w.location.endswith("whisper-tiny-encoder")


def test_hf_cache_hit_is_used_offline(monkeypatch, tmp_path):
    """A model already in the Hugging Face cache resolves as the Download source, offline."""
    transformers = require_module("transformers")
    import huggingface_hub.constants as hf_constants
    import numpy as np

    from automl_tl.weights import network_available
    from automl_tl_audio import specs

    cache = tmp_path / "hub"
    snap = cache / "models--openai--whisper-tiny" / "snapshots" / ("a" * 40)
    cfg = transformers.WhisperConfig(d_model=16, encoder_layers=1, decoder_layers=1,
                                     encoder_attention_heads=2, decoder_attention_heads=2,
                                     encoder_ffn_dim=8, decoder_ffn_dim=8, num_mel_bins=80,
                                     max_source_positions=50, max_target_positions=8, vocab_size=10,
                                     pad_token_id=0, bos_token_id=1, eos_token_id=2,
                                     decoder_start_token_id=1)
    transformers.WhisperModel(cfg).save_pretrained(snap)
    (cache / "models--openai--whisper-tiny" / "refs").mkdir()
    (cache / "models--openai--whisper-tiny" / "refs" / "main").write_text("a" * 40)
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("AUTOML_TL_OFFLINE", "1")
    network_available.cache_clear()
    spec = {s.name: s for s in specs()}["whisper-tiny-encoder"]
    w = spec.resolve_weights()
    network_available.cache_clear()
    assert w.kind == "download" and w.location == str(snap)
    model = spec.build(w, {"sample_rate": 16000, "duration": 0.5})
    assert model.output_shape == (None, 16)
    assert np.all(np.isfinite(np.asarray(model(np.zeros((1, 50, 80), np.float32)))))
