"""Registration, cheap import, weight sources and clear errors for bad model folders."""

from __future__ import annotations

import subprocess
import sys

import pytest

from automl_tl.errors import ConfigError, WeightsUnavailableError

NAMES = {"minilm-l6", "minilm-l12", "distilbert-base-uncased", "bert-base-uncased", "roberta-base"}


def test_import_is_cheap():
    code = ("import sys, automl_tl_text; "
            "heavy = [m for m in ('keras', 'tensorflow', 'keras_hub', 'tokenizers', 'sklearn') "
            "if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_registers_modality_and_backbones(pm):
    assert "text" in pm.modalities
    m = pm.modalities.get("text")
    assert m.inline and ".txt" in m.extensions
    names = {s.name for s in pm.backbones.list(modality="text")}
    assert NAMES <= names
    for name in NAMES:
        spec = pm.backbones.get(name)
        assert spec.plugin == "automl_tl_text"
        assert spec.options == {"pooling": ("mean", "mean_last3", "cls")}
        assert spec.fine_tunable and spec.featurize is None
        assert [s.kind for s in spec.weight_sources][0] == "user"
        assert spec.weight_sources[-1].kind == "download"
        assert spec.weight_sources[-1].location.startswith("hf://")
        assert spec.default_input_config["sequence_length"] in (32, 64, 128, 256, 512)
    assert pm.backbones.get("minilm-l6").n_blocks == 7
    assert pm.backbones.get("bert-base-uncased").n_blocks == 13
    assert pm.backbones.get("minilm-l6").weight_sources[-1].location == "hf://sentence-transformers/all-MiniLM-L6-v2"
    assert [s.kind for s in pm.backbones.get("minilm-l6").weight_sources] == ["user", "package", "download"]


def test_offline_without_sources_is_a_clear_error(pm, monkeypatch):
    monkeypatch.setenv("AUTOML_TL_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("AUTOML_TL_WEIGHTS_DIR", raising=False)
    from automl_tl.weights import network_available

    network_available.cache_clear()
    spec = pm.backbones.get("roberta-base")
    with pytest.raises(WeightsUnavailableError, match="roberta-base"):
        spec.resolve_weights()


def _copy_model(src, dst, skip=()):
    dst.mkdir()
    for f in src.iterdir():
        if f.is_file() and f.name not in skip:
            (dst / f.name).symlink_to(f)
    return dst


def test_user_folder_is_used_first(minilm_spec, minilm_folder, tmp_path):
    folder = _copy_model(minilm_folder, tmp_path / "mymodel")
    w = minilm_spec.resolve_weights({"minilm-l6": str(folder)})
    assert w.kind == "user" and w.location == str(folder.resolve())


@pytest.mark.parametrize("missing, message", [
    (("config.json",), "config.json"),
    (("tokenizer.json", "vocab.txt"), "tokenizer"),
    (("model.safetensors",), "model.safetensors"),
])
def test_bad_user_folder_names_what_is_missing(minilm_spec, minilm_folder, tmp_path, missing, message):
    folder = _copy_model(minilm_folder, tmp_path / "broken", skip=missing)
    with pytest.raises(WeightsUnavailableError) as err:
        minilm_spec.resolve_weights({"minilm-l6": str(folder)})
    assert str(folder) in str(err.value) and message in str(err.value)


def test_pytorch_only_folder_explains_conversion(minilm_spec, minilm_folder, tmp_path):
    folder = _copy_model(minilm_folder, tmp_path / "pt", skip=("model.safetensors",))
    (folder / "pytorch_model.bin").write_bytes(b"x")
    with pytest.raises(WeightsUnavailableError, match="safe_serialization"):
        minilm_spec.resolve_weights({"minilm-l6": str(folder)})


def test_wrong_family_folder(pm, minilm_folder, tmp_path):
    folder = _copy_model(minilm_folder, tmp_path / "bert")
    with pytest.raises(WeightsUnavailableError, match="model_type 'bert'"):
        pm.backbones.get("roberta-base").resolve_weights({"roberta-base": str(folder)})


def test_missing_path(minilm_spec, tmp_path):
    with pytest.raises(WeightsUnavailableError, match="does not exist"):
        minilm_spec.resolve_weights({"minilm-l6": str(tmp_path / "nope")})


def test_vocab_txt_only_tokenizer(minilm_spec, minilm_folder, tmp_path):
    """A folder with vocab.txt but no tokenizer.json tokenises like the tokenizer.json."""
    folder = _copy_model(minilm_folder, tmp_path / "vocabonly", skip=("tokenizer.json",))
    w = minilm_spec.resolve_weights({"minilm-l6": str(folder)})
    a = minilm_spec.make_adapter({"sequence_length": 32}, w)
    b = minilm_spec.make_adapter({"sequence_length": 32},
                                 minilm_spec.resolve_weights())
    texts = ["A gorgeous, witty, seductive movie!", "Caf\u00e9 na\u00efve r\u00e9sum\u00e9 ok"]
    for k in ("token_ids", "padding_mask"):
        assert (a(texts)[k] == b(texts)[k]).all()


def test_sequence_length_over_model_max(minilm_spec):
    with pytest.raises(ConfigError, match="512"):
        minilm_spec.make_adapter({"sequence_length": 1024}, None)


def test_missing_assets_is_a_clear_error(minilm_spec, tmp_path):
    with pytest.raises(ConfigError, match="tokenizer.json"):
        minilm_spec.make_adapter({"sequence_length": 32}, None, assets_dir=str(tmp_path))
