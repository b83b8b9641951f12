"""Transfer strategies as plugins: the registry, the built-ins, layer-wise rates, head starts,
the recommendation as one point of the space, and a third-party strategy."""

import json

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from automl_tl import hookimpl
from automl_tl.errors import ConfigError, PluginError
from automl_tl.plugin_manager import PluginManager
from automl_tl.strategies import FineTuning, LayerwiseAdam, StrategyRegistry
from automl_tl.strategy import StrategyRule

BUILTINS = ("feature_extraction", "fine_tune_top", "fine_tune_all", "lp_ft", "layerwise_decay")


def test_builtins_registered_by_their_plugin(pm):
    reg = pm.strategies
    assert reg.names() == BUILTINS
    assert {reg.plugin_of(n) for n in BUILTINS} == {"automl_tl_strategies"}
    assert not reg.get("feature_extraction").fine_tunes and reg.get("lp_ft").fine_tunes
    with pytest.raises(ConfigError, match="did you mean lp_ft"):
        reg.get("lpft")


def test_registry_validates_and_names_the_plugin():
    reg = StrategyRegistry()
    reg._current_plugin = "bad-plugin"

    class NoName(FineTuning):
        description = "x"

    class Dup(FineTuning):
        name, description = "lp_ft", "again"

    with pytest.raises(PluginError, match="bad-plugin.*name"):
        reg.add(NoName())
    with pytest.raises(PluginError, match="not a TransferStrategy"):
        reg.add(object())
    reg._current_plugin = "first"
    reg.add(Dup())
    reg._current_plugin = "second"
    with pytest.raises(PluginError, match="second.*already registered by plugin 'first'"):
        reg.add(Dup())


def test_cli_lists_strategies(capsys):
    from automl_tl.cli import main

    assert main(["strategies", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows][:5] == list(BUILTINS)
    assert all(r["plugin"] and r["description"] for r in rows)


def test_layerwise_adam_steps_each_variable_at_its_rate():
    """Adam's first step moves every weight by about the learning rate (m / sqrt(v) = ±1), so
    the step of each variable measures its effective rate."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8), keras.layers.Dense(3)])
    k1, b1, k2, b2 = model.weights
    opt = LayerwiseAdam({id(k1): 0.25, id(b1): 0.5}, learning_rate=1e-2)
    model.compile(optimizer=opt, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    before = [v.numpy().copy() for v in model.weights]
    x = np.random.default_rng(0).normal(size=(16, 4)).astype("float32")
    model.train_on_batch(x, np.arange(16) % 3)
    steps = [float(np.max(np.abs(v.numpy() - b))) for v, b in zip(model.weights, before)]
    np.testing.assert_allclose(steps, [2.5e-3, 5e-3, 1e-2, 1e-2], rtol=1e-3)


def test_layerwise_decay_rates_follow_blocks(pm):
    spec = pm.backbones.get("mobilenetv2")
    model = spec.build(None, {"image_size": 32})
    from automl_tl.training import TrialConfig

    cfg = TrialConfig(backbone="mobilenetv2", strategy="layerwise_decay", extra={"lr_decay": 0.5})
    factors = pm.strategies.get("layerwise_decay").learning_rates(model, spec, cfg)
    blocks = spec.blocks(model)
    per_block = [{factors[id(v)] for layer in b for v in layer.weights} for b in blocks]
    assert per_block[-1] == {1.0} and per_block[-2] == {0.5} and per_block[0] == {0.5 ** (len(blocks) - 1)}
    assert set(factors) == {id(v) for v in model.weights}


def test_fine_tune_all_starts_fresh_lp_ft_from_the_probe(pm):
    """LP-FT fine-tunes from the linear probe; classic fine-tune-all from an untrained head."""
    from automl_tl.training import TrialConfig

    class Ctx:
        n_classes, seed, class_weight, y = 2, 0, None, np.array([0, 1] * 20)

        def probe(self, backbone, options):
            class P:
                C = 1.0
            return P()

    x = np.random.default_rng(0).normal(size=(40, 6)).astype("float32")
    x[:, 0] += 6 * Ctx.y  # separable on one feature
    idx = np.arange(40)
    scores = {}
    for name in ("lp_ft", "fine_tune_all"):
        head, _ = pm.strategies.get(name).first_head(
            TrialConfig(backbone="b", strategy=name), Ctx(), x, idx)
        pred = np.asarray(head(x)).argmax(1)
        scores[name] = float(np.mean(pred == Ctx.y))
    assert scores["lp_ft"] >= 0.95 and scores["fine_tune_all"] < 0.9


def _space(pm, **kw):
    from automl_tl.search import SearchSpace

    return SearchSpace(specs={"mobilenetv2": pm.backbones.get("mobilenetv2")},
                       augmentable={"mobilenetv2": True}, **kw)


_PM = PluginManager(autoload=False)


@settings(max_examples=60, deadline=None)
@given(strategy=st.sampled_from(BUILTINS + ("nope",)), lr=st.floats(1e-9, 1.0), blocks=st.integers(-3, 40),
       units=st.sampled_from([0, 7, 128, 256]), decay=st.floats(0.0, 2.0))
def test_recommendation_is_one_point_of_the_space(strategy, lr, blocks, units, decay):
    """Whatever a rule says, the enqueued recommendation is a configuration the space can
    produce (the same ``suggest`` encodes both), with values clipped into its ranges."""
    from automl_tl.strategy import Recommendation

    space = _space(_PM, strategies=_PM.strategies.as_dict())
    rec = Recommendation(rule="r", strategy=strategy, backbone="mobilenetv2", reason="",
                         params={"backbone_lr": lr, "unfreeze_blocks": blocks, "head_units": units,
                                 "lr_decay": decay})
    params = space.enqueue_params(rec)
    cfg = space.config(params)  # raises if any value is outside the space
    assert cfg.strategy == (strategy if strategy in BUILTINS else "feature_extraction")
    if cfg.backbone_lr is not None:
        assert space.backbone_lr[0] <= cfg.backbone_lr <= space.backbone_lr[1]
    if strategy == "lp_ft":
        assert cfg.head_units == 0  # LP-FT's head is the linear probe
    if strategy == "layerwise_decay":
        low, high = space.strategies["layerwise_decay"].lr_decay  # the strategy's own range
        assert low <= cfg.extra["lr_decay"] <= high
    if strategy == "fine_tune_top":
        assert 1 <= cfg.unfreeze_blocks <= space.strategies["fine_tune_top"].max_unfreeze(
            space.specs["mobilenetv2"])


def test_table_may_name_any_registered_strategy():
    class Plugin:
        @hookimpl
        def automl_tl_adjust_strategy_table(self, table):
            table.replace("small_similar", StrategyRule(
                name="small_similar", sizes=frozenset({"small"}), similar=True, strategy="layerwise_decay"))

    assert PluginManager(plugins=[Plugin()]).strategy_table.rule_for("small", True).strategy == "layerwise_decay"

    class Bad:
        @hookimpl
        def automl_tl_adjust_strategy_table(self, table):
            table.replace("small_similar", StrategyRule(
                name="small_similar", sizes=frozenset({"small"}), similar=True, strategy="no_such"))

    with pytest.raises(PluginError, match="unknown strategy 'no_such'"):
        PluginManager(plugins=[Bad()]).strategy_table


def test_a_plugin_set_without_a_probe_strategy_is_refused():
    pm = PluginManager(builtins=False, autoload=False)
    with pytest.raises(PluginError, match="feature_extraction"):
        pm.strategies


def test_probe_strategy_found_by_capability_not_name():
    """The engine's linear probe is the registered strategy that declares ``probe_equivalent``,
    whatever its name; a frozen strategy that does not declare it is no probe; the registry takes
    one such strategy, a frozen one, and the plugin manager requires it."""
    from automl_tl.search import SearchSpace
    from automl_tl.strategies import TransferStrategy
    from automl_tl.training import TrialConfig
    from automl_tl_strategies import FeatureExtraction, LinearProbeThenFineTune

    class Probe(FeatureExtraction):
        name = "frozen_probe"

    class Frozen(TransferStrategy):
        name, description, fine_tunes, rank = "frozen_other", "frozen, no probe", False, 0

    class Plugin:
        @hookimpl
        def automl_tl_register_strategies(self, registry):
            for s in (Frozen(), Probe(), LinearProbeThenFineTune()):
                registry.add(s)

    pm = PluginManager(plugins=[Plugin()], autoload=False, builtins=False)
    assert pm.strategies.probe().name == "frozen_probe"
    specs = {"mobilenetv2": _PM.backbones.get("mobilenetv2")}
    space = SearchSpace(specs=specs, strategies=pm.strategies.as_dict())
    assert space.probe_strategy() == "frozen_probe"
    assert space.probe_params("mobilenetv2", {})["strategy"] == "frozen_probe"
    assert space.is_probe(TrialConfig(backbone="mobilenetv2", strategy="frozen_probe", head_units=0))
    assert not space.is_probe(TrialConfig(backbone="mobilenetv2", strategy="frozen_probe", head_units=128))
    assert not space.is_probe(TrialConfig(backbone="mobilenetv2", strategy="frozen_other", head_units=0))
    # where no searched strategy applies, the probe strategy is searched, found by capability
    only_ft = SearchSpace(specs=specs, strategies={"lp_ft": LinearProbeThenFineTune()}, fine_tune_backbones=(),
                          probe=pm.strategies.probe().name)
    assert only_ft.strategies_for(specs["mobilenetv2"]) == ["frozen_probe"]

    reg = StrategyRegistry()
    reg.add(Probe())
    with pytest.raises(PluginError, match="probe_equivalent.*frozen_probe"):
        reg.add(FeatureExtraction())

    class TunedProbe(FineTuning):
        name, description, probe_equivalent = "tuned_probe", "x", True

    with pytest.raises(PluginError, match="probe_equivalent but fine-tunes"):
        StrategyRegistry().add(TunedProbe())

    class NoProbe:
        @hookimpl
        def automl_tl_register_strategies(self, registry):
            registry.add(Frozen())

    with pytest.raises(PluginError, match="declares probe_equivalent"):
        PluginManager(plugins=[NoProbe()], autoload=False, builtins=False).strategies


def test_strategy_tour_tries_every_strategy_once_on_one_fine_tunable_backbone():
    """``compare_strategies`` (the demo's search): one point per strategy, all on the same
    backbone, so the report compares strategies on the same features; where the recommended
    backbone cannot be fine-tuned (the classical pixels), the best-probed one that can."""
    from automl_tl.search import SearchSpace
    from automl_tl.strategy import Recommendation

    specs = {name: _PM.backbones.get(name) for name in ("pixels", "mobilenetv2", "vgg16")}
    space = SearchSpace(specs=specs, strategies=_PM.strategies.as_dict(),
                        augmentable={"mobilenetv2": True, "vgg16": True})
    rec = Recommendation(rule="r", strategy="feature_extraction", backbone="pixels", reason="",
                         params={"head_lr": 2e-3, "backbone_lr": 3e-5})
    probes = [{"backbone": "pixels"}, {"backbone": "vgg16"}, {"backbone": "mobilenetv2"}]  # best first
    cfgs = [space.config(p) for p in space.strategy_tour(rec, probes)]
    assert {c.backbone for c in cfgs} == {"vgg16"}
    assert sorted(c.strategy for c in cfgs) == sorted(BUILTINS)
    assert all(c.backbone_lr == pytest.approx(3e-5) for c in cfgs if c.backbone_lr is not None)
    # a recommended backbone that can be fine-tuned is the one compared on
    rec_mnv2 = Recommendation(rule="r", strategy="lp_ft", backbone="mobilenetv2", reason="", params={})
    assert {space.config(p).backbone for p in space.strategy_tour(rec_mnv2, probes)} == {"mobilenetv2"}
    # nothing to compare where no candidate can be fine-tuned
    frozen = SearchSpace(specs={"pixels": specs["pixels"]}, strategies=_PM.strategies.as_dict())
    assert frozen.strategy_tour(rec, probes[:1]) == []
