"""ViT backbones (automl_tl_vision._vit): parity with transformers' ViTModel on a perturbed tiny
checkpoint loaded through ``--weights NAME=FOLDER``, the conformance suite at tiny widths and the
real depth, save / load, and clear errors for folders that are not ViT checkpoints."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from automl_tl.errors import WeightsUnavailableError
from automl_tl.testing import BackboneTestCase, require_module

TOL = 1e-4
NAMES = ("vit-base-patch16-224-in21k", "vit-small-patch16-224")
TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
            image_size=32, patch_size=8)
#: not ViT's 0.5 / 0.5: the model must read preprocessor_config.json for parity
MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def _image_processor(transformers, **kwargs):
    cls = getattr(transformers, "ViTImageProcessorPil", None) or transformers.ViTImageProcessor
    return cls(**kwargs)


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    """A tiny ViTModel with every parameter perturbed (LayerNorm weights and biases, class token
    and position embeddings included, so a swapped or skipped tensor shows), saved as safetensors
    with an image processor of ImageNet mean / std."""
    torch = require_module("torch")
    transformers = require_module("transformers")
    folder = tmp_path_factory.mktemp("vit_tiny")
    torch.manual_seed(0)
    model = transformers.ViTModel(transformers.ViTConfig(**TINY)).eval()
    with torch.no_grad():
        for _, p in model.named_parameters():
            p.add_(torch.randn_like(p) * 0.2)
    model.save_pretrained(folder)
    processor = _image_processor(transformers, size={"height": 32, "width": 32}, image_mean=MEAN, image_std=STD)
    processor.save_pretrained(folder)
    assert (folder / "model.safetensors").is_file() and (folder / "preprocessor_config.json").is_file()
    return folder, model, processor


@pytest.fixture(scope="module")
def specs():
    from automl_tl.plugin_manager import PluginManager

    pm = PluginManager()
    return {name: pm.backbones.get(name) for name in NAMES}


def _hf(model, processor, images):
    import torch

    pixels = processor(images=list(images), return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        hidden = model(pixel_values=pixels).last_hidden_state.numpy()
    return pixels.numpy().transpose(0, 2, 3, 1), hidden


def _images(seed, size, n=3):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def test_parity_with_transformers_through_weights_override(tiny_checkpoint, specs):
    """CLS readout == last_hidden_state[:, 0], mean readout == mean of the patch tokens, and the
    in-model preprocessing == ViTImageProcessor, from raw uint8-range pixels."""
    import keras

    folder, hf, processor = tiny_checkpoint
    spec = specs["vit-base-patch16-224-in21k"]
    weights = spec.resolve_weights({spec.name: str(folder)})
    assert (weights.kind, weights.converted, weights.status) == ("user", True, "converted")
    images = _images(0, 32)
    ref_pixels, ref = _hf(hf, processor, images)
    model = spec.readouts(weights, {"image_size": 32}, [{"pooling": "cls"}, {"pooling": "mean"}])
    cls, mean = (np.asarray(o) for o in model(images.astype("float32"), training=False))
    pre = keras.Model(model.input, model.get_layer("automl_tl_vit_preprocess").output)
    diffs = {"preprocess": np.abs(np.asarray(pre(images.astype("float32"))) - ref_pixels).max(),
             "cls": np.abs(cls - ref[:, 0]).max(), "mean": np.abs(mean - ref[:, 1:].mean(1)).max()}
    print("max |diff| vs transformers ViTModel:", {k: f"{v:.2e}" for k, v in diffs.items()})
    assert cls.shape == mean.shape == (3, 32)
    assert all(v < TOL for v in diffs.values()), diffs
    # the readouts agree with single builds, and the mean leaves the class token out
    built = np.asarray(spec.build(weights, {"image_size": 32}, pooling="mean")(images.astype("float32")))
    np.testing.assert_allclose(built, mean, atol=1e-6)
    assert np.abs(mean - ref.mean(1)).max() > 100 * TOL


def test_resize_matches_the_image_processor(tiny_checkpoint, specs):
    """Inputs at another size are resized in the model as PIL does (bilinear, antialiased when
    shrinking): equal to PIL's float resize to 1e-3 of a pixel level; ViTImageProcessor rounds
    its resized image to uint8, so against it the difference is at most one level."""
    import keras

    folder, hf, processor = tiny_checkpoint
    spec = specs["vit-base-patch16-224-in21k"]
    weights = spec.resolve_weights({spec.name: str(folder)})
    for size in (48, 20):
        images = _images(size, size, n=2)
        model = spec.build(weights, {"image_size": size})
        pre = np.asarray(keras.Model(model.input, model.get_layer("automl_tl_vit_preprocess").output)(
            images.astype("float32")))
        float_resize = np.stack([np.stack([np.asarray(Image.fromarray(img[..., c].astype(np.float32), "F")
                                                      .resize((32, 32), Image.BILINEAR)) for c in range(3)], -1)
                                 for img in images])
        np.testing.assert_allclose(pre, (float_resize / 255.0 - MEAN) / STD, atol=1e-3 / 255 / min(STD))
        ref_pixels, _ = _hf(hf, processor, images)
        assert np.abs(pre - ref_pixels).max() <= 1.0 / 255 / min(STD) + 1e-5


def test_small_variant_loads_a_classifier_checkpoint(tmp_path, tiny_checkpoint, specs):
    """ViTForImageClassification folders (keys prefixed 'vit.', like WinKawaks/vit-small-patch16-224)
    load too; without preprocessor_config.json the processor's defaults (0.5 / 0.5) apply."""
    transformers = require_module("transformers")
    import torch

    _, hf, _ = tiny_checkpoint
    clf = transformers.ViTForImageClassification(hf.config)
    clf.vit.load_state_dict(hf.state_dict(), strict=False)
    clf.save_pretrained(tmp_path)
    spec = specs["vit-small-patch16-224"]
    model = spec.build(spec.resolve_weights({spec.name: str(tmp_path)}), {"image_size": 32})
    images = _images(1, 32, n=2)
    pixels = torch.from_numpy((images.transpose(0, 3, 1, 2) / 255.0 - 0.5) / 0.5).float()
    with torch.no_grad():
        ref = clf.vit(pixel_values=pixels).last_hidden_state[:, 0].numpy()
    assert np.abs(np.asarray(model(images.astype("float32"))) - ref).max() < TOL


def test_save_load_round_trip_and_blocks(tmp_path, tiny_checkpoint, specs):
    import keras

    from automl_tl.testing import registered_strategies
    from automl_tl.training import freeze

    folder, _, _ = tiny_checkpoint
    spec = specs["vit-base-patch16-224-in21k"]
    model = spec.build(spec.resolve_weights({spec.name: str(folder)}), {"image_size": 40}, pooling="mean")
    blocks = spec.blocks(model)
    assert [[l.name for l in b] for b in blocks] == [
        ["vit_embedding"], ["vit_layer_0"], ["vit_layer_1", "vit_final_norm"]]
    ids = [id(v) for b in blocks for l in b for v in l.weights]
    assert len(ids) == len(set(ids)) == len(model.weights)   # every weight in exactly one block
    freeze(model, spec, "fine_tune_top", 1, strategies=registered_strategies())                   # top 1 = the last transformer layer
    assert {id(v) for v in model.trainable_weights} == {id(v) for l in blocks[-1] for v in l.weights}
    freeze(model, spec, "fine_tune_all", strategies=registered_strategies())
    x = _images(2, 40, n=2).astype("float32")
    path = tmp_path / "vit.keras"
    model.save(path)
    again = keras.models.load_model(path)
    np.testing.assert_allclose(np.asarray(again(x)), np.asarray(model(x)), atol=1e-6)
    assert again.get_layer("automl_tl_vit_preprocess").get_config()["mean"] == pytest.approx(MEAN)


def test_n_params_match_transformers(tiny_checkpoint, specs):
    torch = require_module("torch")
    transformers = require_module("transformers")
    from automl_tl_vision._vit import VIT_BACKBONES, vit_arch, vit_n_params

    folder, hf, _ = tiny_checkpoint
    arch = vit_arch(json.loads((folder / "config.json").read_text()))
    headless = sum(p.numel() for n, p in hf.named_parameters() if not n.startswith("pooler."))
    assert vit_n_params(arch) == headless
    model = specs["vit-base-patch16-224-in21k"].build(
        specs["vit-base-patch16-224-in21k"].resolve_weights({"vit-base-patch16-224-in21k": str(folder)}),
        {"image_size": 32})
    assert model.count_params() == headless
    for info in VIT_BACKBONES:    # the registered sizes, counted by transformers without allocating
        a = info.arch
        config = transformers.ViTConfig(hidden_size=a["hidden_dim"], num_hidden_layers=a["num_layers"],
                                        num_attention_heads=a["num_heads"], intermediate_size=a["mlp_dim"])
        with torch.device("meta"):
            n = transformers.ViTModel(config, add_pooling_layer=False).num_parameters()
        assert specs[info.name].n_params == n
        assert specs[info.name].n_blocks == a["num_layers"] + 1
    assert specs["vit-base-patch16-224-in21k"].pretrained_on == "ImageNet-21k"


def test_weights_dir_and_profile_similarity(tmp_path, tiny_checkpoint, specs, monkeypatch):
    """``$AUTOML_TL_WEIGHTS_DIR/<name>/`` is a source; profile measures ViT's similarity on pixel
    statistics (no BatchNorm to compare statistics with)."""
    import shutil

    from automl_tl_vision._modality import ImageModality

    folder, _, _ = tiny_checkpoint
    spec = specs["vit-base-patch16-224-in21k"]
    shutil.copytree(folder, tmp_path / spec.name)
    monkeypatch.setenv("AUTOML_TL_WEIGHTS_DIR", str(tmp_path))
    weights = spec.resolve_weights()
    assert weights.kind == "user" and weights.location == str((tmp_path / spec.name).resolve())
    paths = []
    for i, img in enumerate(_images(3, 40, n=4)):
        paths.append(str(tmp_path / f"{i}.png"))
        Image.fromarray(img).save(paths[-1])
    modality = ImageModality()
    info = modality.analyse(paths, modality.describe(paths), spec, weights)
    assert info["stats"]["method"] == "pixel_stats" and 0.0 <= info["similarity"] <= 1.0


def test_bert_folder_is_refused(tmp_path, specs):
    transformers = require_module("transformers")
    transformers.BertModel(transformers.BertConfig(
        vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32)).save_pretrained(tmp_path)
    spec = specs["vit-base-patch16-224-in21k"]
    with pytest.raises(WeightsUnavailableError, match="model_type 'bert'.*expects model_type 'vit'"):
        spec.resolve_weights({spec.name: str(tmp_path)})


def test_incomplete_folders_and_no_source(tmp_path, specs, monkeypatch):
    spec = specs["vit-small-patch16-224"]
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "vit", **TINY}))
    with pytest.raises(WeightsUnavailableError, match="missing: model.safetensors"):
        spec.resolve_weights({spec.name: str(tmp_path)})
    (tmp_path / "pytorch_model.bin").write_bytes(b"")
    with pytest.raises(WeightsUnavailableError, match="only pytorch_model.bin"):
        spec.resolve_weights({spec.name: str(tmp_path)})
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(WeightsUnavailableError, match="config.json"):
        spec.resolve_weights({spec.name: str(empty)})
    # $AUTOML_TL_WEIGHTS_DIR/<name>/ is looked at too; offline with nothing cached: every hint
    monkeypatch.setenv("AUTOML_TL_WEIGHTS_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(WeightsUnavailableError, match=r"--weights vit-small-patch16-224=FOLDER.*"
                                                      r"WinKawaks/vit-small-patch16-224"):
        spec.resolve_weights()
    # a ViT config KerasHub's layers would run wrongly (another GELU) is refused, not approximated
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "vit", **TINY, "hidden_act": "gelu_new"}))
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(WeightsUnavailableError, match="hidden_act 'gelu_new'"):
        spec.resolve_weights({spec.name: str(tmp_path)})


def test_readouts_are_strict(specs):
    from automl_tl.errors import ConfigError

    spec = specs["vit-small-patch16-224"]
    with pytest.raises(ConfigError, match="pooling option only"):
        spec.readouts(None, {"image_size": 32}, [{"pooling": "cls", "features": "mid"}])
    with pytest.raises(ConfigError, match="pooling must be one of"):
        spec.build(None, {"image_size": 32}, pooling="max")


def _tiny(**over):
    """Tiny widths at the real depth (12 layers: n_blocks is the real depth + 1)."""
    return {"image_size": 32, "architecture": {"image_size": 32, "patch_size": 8, "hidden_dim": 16,
                                               "num_heads": 2, "mlp_dim": 24, **over}}


class TestTinyViTBackbones(BackboneTestCase):
    """The registered ViT specs at tiny widths: the architecture override is what the random build
    reads; blocks, poolings, readouts, adapter and freezing are the real ones."""

    backbone_names = NAMES
    input_config = _tiny()

    def sample_items(self, tmp_path):
        rng = np.random.default_rng(0)
        paths = []
        for i, mode in enumerate(("RGB", "L", "RGBA")):
            p = tmp_path / f"{i}.png"
            shape = (40, 30) if mode == "L" else (30 + 10 * i, 50, len(mode))
            Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8), mode).save(p)
            paths.append(str(p))
        return paths
