"""The strategy table as data, the profile, and their invariants."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from automl_tl import hookimpl
from automl_tl.errors import PluginError
from automl_tl.plugin_manager import PluginManager
from automl_tl.profile import DatasetProfile
from automl_tl.strategy import StrategyRule, StrategyTable


def _profile(per_class: float, similarity: float, n_classes: int = 3, threshold: float = 0.4,
             table=None) -> DatasetProfile:
    table = table or StrategyTable.default()
    counts = {f"c{i}": int(per_class) for i in range(n_classes)}
    return DatasetProfile(
        modality="image", source="x", n_samples=int(per_class) * n_classes, n_classes=n_classes,
        class_counts=counts, imbalance_ratio=1.0, median_per_class=float(per_class),
        size_category=table.size_category(per_class), input_stats={"width": {"p50": 28.0}},
        backbones={"b": {"similarity": similarity, "similar": similarity >= threshold,
                         "input_config": {"image_size": 96}, "stats": {}}},
        similarity_threshold=threshold)


@settings(max_examples=200, deadline=None)
@given(per_class=st.floats(min_value=1, max_value=1e6), similarity=st.floats(min_value=0, max_value=1))
def test_every_profile_matches_exactly_one_row(per_class, similarity):
    table = StrategyTable.default()
    prof = _profile(per_class, similarity)
    hits = [r for r in table.rules if r.matches(prof.size_category, prof.backbones["b"]["similar"])]
    assert len(hits) == 1
    rec = table.recommend(prof, backbone="b")
    assert rec.strategy in {"feature_extraction", "fine_tune_top", "lp_ft"} and rec.reason and "b" in rec.reason


@pytest.mark.parametrize("per_class,similarity,strategy,rule", [
    (20, 0.9, "feature_extraction", "small_similar"),
    (400, 0.9, "fine_tune_top", "medium_similar"),
    (5000, 0.9, "lp_ft", "large_similar"),
    (5000, 0.1, "feature_extraction", "different"),
    (20, 0.1, "feature_extraction", "different"),
])
def test_table_rows(per_class, similarity, strategy, rule):
    rec = StrategyTable.default().recommend(_profile(per_class, similarity), backbone="b")
    assert (rec.strategy, rec.rule) == (strategy, rule)


def test_an_imbalanced_reason_names_the_smallest_class():
    """"150 examples per class" of 285 + 15 is a median: the reason says so and names the minority."""
    from dataclasses import replace

    prof = _profile(150, 0.9, n_classes=2)
    assert "smallest" not in StrategyTable.default().recommend(prof, backbone="b").reason
    prof = replace(prof, class_counts={"fresh": 285, "rotten": 15}, imbalance_ratio=19.0)
    reason = StrategyTable.default().recommend(prof, backbone="b").reason
    assert reason.startswith("150 examples per class") and "the smallest, 'rotten', has 15" in reason


def test_non_finetunable_backbone_gets_feature_extraction():
    rec = StrategyTable.default().recommend(_profile(5000, 0.9), backbone="b", fine_tunable=False)
    assert rec.strategy == "feature_extraction" and "can only extract features" in rec.reason
    assert "backbone_lr" not in rec.params


def test_validate_finds_overlap_and_gap():
    table = StrategyTable.default()
    table.add(StrategyRule(name="extra", sizes=frozenset({"small"}), similar=True, strategy="fine_tune_top"))
    with pytest.raises(PluginError, match="matches 2 rules"):
        table.validate()
    table = StrategyTable.default()
    table.remove("different")
    with pytest.raises(PluginError, match="matches 0 rules"):
        table.validate()


class _TablePlugin:
    @hookimpl
    def automl_tl_adjust_strategy_table(self, table):
        table.set_thresholds(small_below=50)
        table.replace("small_similar", StrategyRule(
            name="small_similar", sizes=frozenset({"small"}), similar=True, strategy="fine_tune_top",
            params={"unfreeze_blocks": 1}, reason="plugin says so ({per_class:.0f})"))


def test_plugins_override_the_table():
    table = PluginManager(plugins=[_TablePlugin()]).strategy_table
    assert table.size_category(60) == "medium"
    rec = table.recommend(_profile(30, 0.9, table=table), backbone="b")
    assert rec.strategy == "fine_tune_top" and rec.reason.startswith("plugin says so (30)")


def test_a_modality_sets_its_own_size_thresholds():
    table = PluginManager().strategy_table
    # the text plugin: a few hundred texts per class is still small (fine-tuning an encoder on
    # them lost to the linear probe in the suite); images keep the table's thresholds
    assert table.thresholds("text") == (500, 1000) and table.thresholds("image") == (150, 1000)
    assert table.size_category(300, "text") == "small" and table.size_category(300, "image") == "medium"
    assert table.size_category(300) == "medium" and table.to_dict()["by_modality"] == {"text": {"small_below": 500}}
    table.set_thresholds(large_from=400)  # the table's large_from now falls below text's small_below
    with pytest.raises(PluginError, match="for text must satisfy"):
        table.validate()


@settings(max_examples=50, deadline=None)
@given(per_class=st.integers(2, 10_000), sim=st.floats(0, 1), k=st.integers(2, 50))
def test_profile_json_round_trip(per_class, sim, k):
    prof = _profile(per_class, sim, n_classes=k)
    again = DatasetProfile.from_json(prof.to_json())
    assert again == DatasetProfile.from_dict(json.loads(json.dumps(prof.to_dict())))
    assert again.to_dict() == prof.to_dict()


def test_real_profile_measures_similarity(pm, image_folder):
    """Fashion-MNIST is far from ImageNet for MobileNetV2 (BN-statistics shift)."""
    from automl_tl.data import load_data
    from automl_tl.profile import profile_data

    data = load_data(str(image_folder), modalities=pm.modalities)
    spec = pm.backbones.get("mobilenetv2")
    prof = profile_data(data, modality=pm.modalities.get("image"), table=pm.strategy_table,
                        candidates=[spec], weights={"mobilenetv2": spec.resolve_weights()})
    info = prof.backbones["mobilenetv2"]
    assert info["stats"]["method"] == "bn_shift"
    assert 0 <= info["similarity"] < 0.4 and info["similar"] is False
    assert info["input_config"] == {"image_size": 96, "source_size": 28}  # sent as 28 px uint8
    assert prof.n_samples == 36 and prof.size_category == "small"
    assert prof.input_stats["width"]["p50"] == 28 and prof.input_stats["modes"] == {"L": 36}
    assert DatasetProfile.from_json(prof.to_json()).to_dict() == prof.to_dict()


def test_a_frozen_plugin_strategy_is_kept_on_a_backbone_that_cannot_fine_tune():
    """The table tells strategies apart by what they declare (``fine_tunes``), not by name: a
    rule's frozen plugin strategy stays on a backbone that can only extract features, as
    feature extraction does; a fine-tuning one falls back to the probe strategy."""
    from automl_tl.strategies import TransferStrategy

    class Frozen(TransferStrategy):
        name, description, fine_tunes, rank = "frozen_plugin", "frozen, by a plugin", False, 0

    class Plugin:
        @hookimpl
        def automl_tl_register_strategies(self, registry):
            registry.add(Frozen())

        @hookimpl
        def automl_tl_adjust_strategy_table(self, table):
            table.replace("large_similar", StrategyRule(name="large_similar", sizes=frozenset({"large"}),
                                                        similar=True, strategy="frozen_plugin"))

    table = PluginManager(plugins=[Plugin()], autoload=False).strategy_table
    rec = table.recommend(_profile(5000, 0.9, table=table), backbone="b", fine_tunable=False)
    assert rec.strategy == "frozen_plugin" and "can only extract" not in rec.reason
    rec = table.recommend(_profile(300, 0.9, table=table), backbone="b", fine_tunable=False)
    assert rec.strategy == "feature_extraction" and "can only extract features" in rec.reason
