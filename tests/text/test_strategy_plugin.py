"""A third-party strategy (docs/example_plugin's BitFit) installed through its entry point,
recommended by a strategy-table rule and searched on MiniLM: only bias terms move."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from automl_tl import hookimpl
from automl_tl.strategy import StrategyRule

pytestmark = pytest.mark.slow
EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "example_plugin"


def _install_bitfit(tmp_path, monkeypatch):
    from automl_tl.testing import install_plugin_package

    install_plugin_package(EXAMPLE / "automl_tl_bitfit", entry_name="bitfit", site=tmp_path / "site",
                           monkeypatch=monkeypatch)


class _RecommendBitFit:
    @hookimpl
    def automl_tl_adjust_strategy_table(self, table):
        rule = table.rule_for("small", True)
        table.replace(rule.name, StrategyRule(
            name=rule.name, sizes=rule.sizes, similar=True, strategy="bitfit",
            params=dict(rule.params) | {"backbone_lr": 1e-3, "ft_epochs": 2},
            reason="small and similar: move only the biases (plugin rule)"))


def test_bitfit_trains_biases_only(tmp_path, monkeypatch, minilm_spec, tiny_config):
    _install_bitfit(tmp_path, monkeypatch)
    from automl_tl.plugin_manager import PluginManager
    from automl_tl.training import freeze

    pm = PluginManager()
    assert pm.strategies.plugin_of("bitfit") == "bitfit"
    model = minilm_spec.build(None, tiny_config, pooling="mean")
    freeze(model, minilm_spec, "bitfit", strategies=pm.strategies.as_dict())
    names = {v.path.rsplit("/", 1)[-1] for v in model.trainable_weights}
    assert names == {"bias", "beta"}
    n_train = sum(int(np.prod(v.shape)) for v in model.trainable_weights)
    assert 0 < n_train < 0.05 * sum(int(np.prod(v.shape)) for v in model.weights)


def test_bitfit_is_recommended_and_searched(tmp_path, monkeypatch, minilm_weights, rt_texts):
    _install_bitfit(tmp_path, monkeypatch)
    import keras
    import pandas as pd

    from automl_tl import AutoTransfer
    from automl_tl.plugin_manager import PluginManager

    pm = PluginManager(plugins=[_RecommendBitFit()])
    texts, labels = rt_texts
    frame = pd.DataFrame({"text": texts[:40] + texts[-40:], "label": labels[:40] + labels[-40:]})
    clf = AutoTransfer(backbones=["minilm-l6"], trials=1, seed=0, run_dir=str(tmp_path / "run"),
                       cache_dir=str(tmp_path / "cache"), text_column="text", label_column="label",
                       strategies=["feature_extraction", "bitfit"], report=False, refit=False,
                       plugin_manager=pm)
    clf.fit(frame)
    first = clf.study_.trials[0]
    assert clf.recommendation_.strategy == "bitfit"
    assert first.user_attrs["strategy"] == "bitfit" and first.state.name == "COMPLETE"
    assert any(h["phase"] == "fine_tune" for h in first.user_attrs.get("history", [])) or \
        first.user_attrs.get("ft_epochs_run", 0) >= 1
    # whatever the delivered model is, nothing but bias terms of the backbone differs from MiniLM
    if clf.best_config_["strategy"] == "bitfit":
        spec = pm.backbones.get("minilm-l6")
        delivered = keras.saving.load_model(tmp_path / "run" / "model.keras", compile=False)
        original = spec.build(minilm_weights, clf.profile_.backbones["minilm-l6"]["input_config"], pooling="mean")
        import hashlib

        digest = lambda a: hashlib.sha1(np.ascontiguousarray(a).tobytes()).hexdigest()  # noqa: E731
        got = {digest(v.numpy()) for v in delivered.weights}
        kept = [v for v in original.weights if v.path.rsplit("/", 1)[-1] not in ("bias", "beta")]
        assert kept and all(digest(v.numpy()) in got for v in kept)
        moved = [v for v in original.weights if v.path.rsplit("/", 1)[-1] in ("bias", "beta")]
        assert any(digest(v.numpy()) not in got for v in moved) or first.user_attrs["epochs"]["fine_tune"] == 0
