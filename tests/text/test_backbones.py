"""Tiny random encoders: shapes, blocks, pooling, freezing strategies, training, save/load."""

from __future__ import annotations

import numpy as np
import pytest

TEXTS = ["A gorgeous, witty, seductive movie.", "Dull and lifeless.",
         "It's a lot of running around and not much else.", "ok"]
FAMILIES = ["minilm-l6", "distilbert-base-uncased", "roberta-base"]


def _freeze(backbone, spec, strategy, n=None):
    """The engine's freezing rule (automl_tl.training.freeze, as each registered strategy does it)."""
    from automl_tl.testing import registered_strategies
    from automl_tl.training import freeze

    name = {"frozen": "feature_extraction", "top": "fine_tune_top", "all": "fine_tune_all"}[strategy]
    return freeze(backbone, spec, name, n, strategies=registered_strategies())


@pytest.mark.parametrize("name", FAMILIES)
def test_build_shapes_and_blocks(pm, name, tiny_config):
    spec = pm.backbones.get(name)
    model = spec.build(None, tiny_config, pooling="mean")
    adapter = spec.make_adapter(tiny_config, None)
    x = adapter(TEXTS)
    assert set(x) == {k for k in model.input}
    assert all(v.shape == (4, 24) and v.dtype == np.int32 for v in x.values())
    f = np.asarray(model(x, training=False))
    assert f.shape == (4, 16) and np.isfinite(f).all()
    blocks = spec.blocks(model)
    assert len(blocks) == tiny_config["architecture"]["num_layers"] + 1
    assert [l.name for b in blocks[1:] for l in b] == [f"transformer_layer_{i}" for i in range(4)]
    assert all("embedding" in l.name for l in blocks[0])
    # every weight of the model sits in exactly one block
    in_blocks = {id(v) for b in blocks for l in b for v in l.weights}
    assert in_blocks == {id(v) for v in model.weights}


def test_real_architecture_n_blocks_matches_spec(pm):
    spec = pm.backbones.get("minilm-l6")
    model = spec.build(None, {"sequence_length": 32})
    assert len(spec.blocks(model)) == spec.n_blocks
    assert model.count_params() == spec.n_params


def test_pooling_is_a_build_option(pm, tiny_config):
    import keras

    spec = pm.backbones.get("minilm-l6")
    keras.utils.set_random_seed(0)
    mean = spec.build(None, tiny_config, pooling="mean")
    cls = spec.build(None, tiny_config, pooling="cls")
    cls.set_weights(mean.get_weights())
    x = spec.make_adapter(tiny_config, None)(TEXTS)
    fm, fc = np.asarray(mean(x)), np.asarray(cls(x))
    assert not np.allclose(fm, fc)
    with pytest.raises(Exception, match="pooling"):
        spec.build(None, tiny_config, pooling="max")


def test_mean_pooling_ignores_padding(pm, tiny_config):
    spec = pm.backbones.get("minilm-l6")
    model = spec.build(None, tiny_config)
    texts = ["the film", "a good movie", "bad"]
    short = spec.make_adapter(tiny_config, None)(texts)
    assert short["token_ids"].shape == (3, 8)                 # padded to the batch's longest text
    long = {k: np.pad(v, ((0, 0), (0, 56))) for k, v in short.items()}   # padded to 64 by hand
    np.testing.assert_allclose(np.asarray(model(short)), np.asarray(model(long)), atol=1e-5)


def test_batches_are_padded_to_their_longest_text(pm, tiny_config):
    from automl_tl.batching import batch_order, map_batches

    spec = pm.backbones.get("minilm-l6")
    adapter = spec.make_adapter(tiny_config, None)
    texts = ["a " * n for n in (1, 20, 2, 19, 3, 18)]
    assert adapter(texts[:1])["token_ids"].shape == (1, 8)
    assert adapter(texts)["token_ids"].shape == (6, 24)     # capped by the sequence length
    # batches group similar lengths; results come back in item order
    assert [sorted(b.tolist()) for b in batch_order(texts, adapter, 3)] == [[0, 2, 4], [1, 3, 5]]
    model = spec.build(None, tiny_config)
    np.testing.assert_allclose(map_batches(model.predict_on_batch, texts, adapter, 3),
                               np.asarray(model(adapter(texts))), atol=1e-5)


def _count(model):
    return len(model.trainable_weights), int(sum(np.prod(v.shape) for v in model.trainable_weights))


def test_trainable_counts_per_strategy(pm, tiny_config):
    """Each trial builds a fresh backbone and freezes it once (as the engine does)."""
    spec = pm.backbones.get("minilm-l6")
    counts = {}
    for strategy, n in (("frozen", None), ("top", 2), ("all", None), ("top", 1)):
        model = spec.build(None, tiny_config)
        blocks = spec.blocks(model)
        _freeze(model, spec, strategy, n)
        counts[(strategy, n)] = _count(model)
        if strategy == "top":
            chosen = {id(v) for b in blocks[-n:] for l in b for v in l.weights}
            assert {id(v) for v in model.trainable_weights} == chosen
        if strategy == "all":
            assert len(model.trainable_weights) == len(model.weights)
            assert counts[(strategy, n)][1] == model.count_params()
    per_layer = len(blocks[-1][0].weights)
    assert counts[("frozen", None)] == (0, 0)
    assert counts[("top", 2)][0] == 2 * per_layer
    assert counts[("top", 1)][0] == per_layer
    assert counts[("top", 1)][1] * 2 == counts[("top", 2)][1]
    assert counts[("all", None)][0] == len(model.weights) > counts[("top", 2)][0]


def test_refreezing_the_same_model(pm, tiny_config):
    """frozen -> top-2 -> all -> top-1 -> all on one model: "all" really trains every layer."""
    spec = pm.backbones.get("minilm-l6")
    model = spec.build(None, tiny_config)
    per_layer = len(spec.blocks(model)[-1][0].weights)
    seen = []
    for strategy, n in (("frozen", None), ("top", 2), ("all", None), ("top", 1), ("all", None)):
        _freeze(model, spec, strategy, n)
        seen.append(len(model.trainable_weights))
    total = len(model.weights)
    assert seen == [0, 2 * per_layer, total, per_layer, total]


def test_top2_step_changes_top_leaves_bottom(pm, tiny_config):
    import keras

    keras.utils.set_random_seed(1)
    spec = pm.backbones.get("minilm-l6")
    backbone = spec.build(None, tiny_config)
    _freeze(backbone, spec, "top", 2)
    inputs = {k: keras.Input(shape=(None,), dtype="int32", name=k) for k in backbone.input}
    head = keras.layers.Dense(2, activation="softmax")
    model = keras.Model(inputs, head(backbone(inputs)))
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss="sparse_categorical_crossentropy")
    x = spec.make_adapter(tiny_config, None)(TEXTS)
    y = np.array([1, 0, 0, 1])
    blocks = spec.blocks(backbone)
    before = [[np.array(v) for l in b for v in l.weights] for b in blocks]
    model.fit(x, y, epochs=2, batch_size=4, verbose=0)
    after = [[np.array(v) for l in b for v in l.weights] for b in blocks]
    for i, (b0, b1) in enumerate(zip(before, after)):
        changed = any(not np.array_equal(a, c) for a, c in zip(b0, b1))
        assert changed == (i >= len(blocks) - 2), f"block {i}"


@pytest.mark.parametrize("pooling", ["mean", "mean_last3"])
def test_saved_model_and_adapter_round_trip(pm, tiny_config, tmp_path, pooling):
    import keras

    spec = pm.backbones.get("minilm-l6")
    backbone = spec.build(None, tiny_config, pooling=pooling)
    assert len(spec.blocks(backbone)) == tiny_config["architecture"]["num_layers"] + 1
    adapter = spec.make_adapter(tiny_config, None)
    inputs = {k: keras.Input(shape=(None,), dtype="int32", name=k) for k in backbone.input}
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(backbone(inputs)))
    path = tmp_path / "model.keras"
    model.save(path)
    adapter.save_assets(str(tmp_path / "assets"))
    import json

    cfg = json.loads(json.dumps(adapter.config()))     # what the run directory stores
    again = spec.make_adapter(cfg["input_config"], None, assets_dir=str(tmp_path / "assets"))
    x1, x2 = adapter(TEXTS), again(TEXTS)
    assert set(x1) == set(x2) and all((x1[k] == x2[k]).all() for k in x1)
    loaded = keras.saving.load_model(path)
    np.testing.assert_array_equal(np.asarray(model(x1)), np.asarray(loaded(x2)))


def test_adapter_is_robust_to_odd_inputs(pm, tiny_config):
    spec = pm.backbones.get("minilm-l6")
    adapter = spec.make_adapter(tiny_config, None)
    x = adapter(["", None, float("nan"), "caf\udce9", "w " * 500, 7])
    assert x["token_ids"].shape == (6, 24)
    assert x["padding_mask"][4].sum() == 24        # truncated to the sequence length
    assert x["padding_mask"][0].sum() == 2          # [CLS] [SEP]
    assert adapter([])["token_ids"].shape == (0, 24)


def test_token_dropout_augmentation(pm, tiny_config, tmp_path):
    import keras

    spec = pm.backbones.get("minilm-l6")
    modality = pm.modalities.get("text")
    aug = modality.augmentation(tiny_config)
    x = spec.make_adapter(tiny_config, None)(TEXTS * 8)
    keras.utils.set_random_seed(0)
    out = aug(x, training=True)
    kept, real = np.asarray(out["padding_mask"]).sum(), x["padding_mask"].sum()
    assert 0.8 * real < kept < real                               # about 10 % hidden
    assert (np.asarray(out["padding_mask"])[:, 0] == 1).all()     # [CLS] always kept
    assert (np.asarray(out["padding_mask"]) <= x["padding_mask"]).all()   # padding stays padding
    same = aug(x, training=False)
    assert (np.asarray(same["padding_mask"]) == x["padding_mask"]).all()
    # inside a saved model it is inert at inference and survives save/load
    backbone = spec.build(None, tiny_config)
    inputs = {k: keras.Input(shape=(None,), dtype="int32", name=k) for k in backbone.input}
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(backbone(aug(inputs))))
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(np.asarray(model(x)), np.asarray(loaded(x)), atol=1e-6)
