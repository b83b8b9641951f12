"""Conformance suite for backbone plugins (like optuna's ``testing/pytest_samplers.py``).

A plugin author subclasses :class:`BackboneTestCase`, names the backbones and gives sample raw
inputs; every backbone then gets the same checks the built-ins pass::

    class TestMyBackbones(BackboneTestCase):
        backbone_names = ("my-net",)
        input_config = {"image_size": 64}

        def sample_items(self, tmp_path):
            return [... raw inputs ...]
"""

from __future__ import annotations

import importlib
import os
from typing import Any, Sequence

import numpy as np
import pytest


__all__ = ["BackboneTestCase", "check_backbone", "install_plugin_package", "missing", "require_module",
           "tiny_wav2vec2"]


def missing(reason: str) -> None:
    """A test's requirement outside Python (a system package, a weights package, a server) is
    missing: skip it, except in CI (``CI=true``), where it fails, so that a missing install step
    shows instead of a quietly smaller test run."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{reason} (CI=true: the set-up should have installed it)", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def require_module(name: str, hint: str = ""):
    """``import name`` for a test, or :func:`missing` (never use this for automl-tl's own modules:
    an import error there is a bug to see, not a skip)."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        missing(f"{name} is not installed{': ' + hint if hint else ''} ({exc})")


def tiny_wav2vec2(folder):
    """Save a tiny random Wav2Vec2 checkpoint (2 layers, hidden 32; transformers'
    ``save_pretrained``) in ``folder`` and return it: what ``--weights wav2vec2-base=folder`` reads,
    for fits that need a fine-tunable audio backbone and not its real weights."""
    transformers = require_module("transformers")
    cfg = transformers.Wav2Vec2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                      intermediate_size=37, conv_dim=(16, 16), conv_stride=(5, 2),
                                      conv_kernel=(10, 3), num_conv_pos_embeddings=16,
                                      num_conv_pos_embedding_groups=2)
    transformers.Wav2Vec2Model(cfg).save_pretrained(folder)
    return folder


def registered_strategies() -> dict:
    """Name -> strategy, as the installed plugins register them (what a fit searches by default)."""
    from automl_tl.plugin_manager import get_plugin_manager

    return get_plugin_manager().strategies.as_dict()


def check_backbone(spec, items: Sequence[Any], input_config: dict, tmp_path) -> None:
    """Random-weight checks any registered backbone must pass."""
    import keras

    from automl_tl.training import freeze

    cfg = dict(spec.default_input_config) | dict(input_config)
    adapter = spec.make_adapter(cfg, None, None)
    batch = adapter(list(items))
    conf = adapter.config()
    assert isinstance(conf, dict)
    import json

    json.dumps(conf)  # the adapter config must be JSON
    if spec.featurize is not None:
        assert not spec.fine_tunable
        return  # featurize-only backbones need their real weights; their plugin tests cover them
    options = {k: v[0] for k, v in spec.options.items()}
    keras.utils.set_random_seed(0)  # the readouts model below draws the same weights
    model = spec.build(None, cfg, **options)
    feats = keras.ops.convert_to_numpy(model(batch, training=False))
    assert feats.ndim == 2 and feats.shape[0] == len(items), f"{spec.name}: features {feats.shape}"
    assert np.all(np.isfinite(feats)), f"{spec.name}: non-finite features"
    if spec.readouts is not None:  # one pass for every option set gives what each build gives
        from automl_tl.probe import option_grid

        grid = option_grid(spec.options)
        keras.utils.set_random_seed(0)
        outs = spec.readouts(None, cfg, grid)(batch, training=False)
        assert len(outs) == len(grid), f"{spec.name}: readouts gave {len(outs)} outputs for {len(grid)} option sets"
        for opts, out in zip(grid, outs):
            if dict(opts) == options:  # the default option set: `model` above, built from the same seed
                single = feats
            else:
                keras.utils.set_random_seed(0)  # the same random weights as the readouts model's
                single = keras.ops.convert_to_numpy(spec.build(None, cfg, **opts)(batch, training=False))
            np.testing.assert_allclose(keras.ops.convert_to_numpy(out), single, rtol=1e-4, atol=1e-5,
                                       err_msg=f"{spec.name}: readout {opts} differs from build(**{opts})")
    blocks = spec.blocks(model)
    assert len(blocks) == spec.n_blocks, f"{spec.name}: blocks() gave {len(blocks)}, n_blocks says {spec.n_blocks}"
    assert all(blocks), f"{spec.name}: an empty block"
    if spec.fine_tunable:
        counts = []
        for strategy, n in (("feature_extraction", None), ("fine_tune_top", 1), ("fine_tune_all", None)):
            freeze(model, spec, strategy, n, strategies=registered_strategies())
            counts.append(sum(int(np.prod(v.shape)) for v in model.trainable_weights))
        assert counts[0] == 0 and 0 < counts[1] < counts[2], f"{spec.name}: trainable counts {counts}"
    save_dir = tmp_path / f"assets-{spec.name}"
    save_dir.mkdir()
    adapter.save_assets(str(save_dir))
    again = spec.make_adapter(conf, None, str(save_dir))
    b2 = again(list(items))
    flat = lambda b: [np.asarray(v) for v in (b.values() if isinstance(b, dict) else [b])]  # noqa: E731
    for x, y in zip(flat(batch), flat(b2)):
        np.testing.assert_array_equal(x, y)


class BackboneTestCase:
    """Subclass in a plugin's tests; pytest collects ``test_conformance`` per backbone."""

    backbone_names: Sequence[str] = ()
    input_config: dict = {}

    def sample_items(self, tmp_path) -> list:  # pragma: no cover - subclasses implement
        raise NotImplementedError

    def plugin_manager(self):
        from automl_tl.plugin_manager import PluginManager

        return PluginManager()

    def test_conformance(self, tmp_path):
        pm = self.plugin_manager()
        if not self.backbone_names:
            pytest.skip("no backbone names given")
        for name in self.backbone_names:
            check_backbone(pm.backbones.get(name), self.sample_items(tmp_path), self.input_config, tmp_path)


def install_plugin_package(package_dir, *, entry_name: str, site, monkeypatch, version: str = "0.1.0") -> None:
    """Make the plugin package at ``package_dir`` importable from ``site`` as an installed
    distribution whose ``automl_tl`` entry point ``entry_name`` names it (what ``pip install``
    leaves behind), for the duration of a test (``monkeypatch`` undoes it)."""
    import shutil
    import sys
    from pathlib import Path

    package_dir, site = Path(package_dir), Path(site)
    name = package_dir.name
    shutil.copytree(package_dir, site / name)
    dist = site / f"{name}-{version}.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name.replace('_', '-')}\nVersion: {version}\n")
    (dist / "entry_points.txt").write_text(f"[automl_tl]\n{entry_name} = {name}\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delitem(sys.modules, name, raising=False)
