"""Keras Wav2Vec2 vs transformers (PyTorch) on tiny random checkpoints: max |diff| < 1e-4."""

from __future__ import annotations

import numpy as np
import pytest
from automl_tl.testing import require_module

torch = require_module("torch", "bash scripts/setup.sh --test installs it")
transformers = require_module("transformers")

TOL = 1e-4
TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37,
            conv_dim=(16, 16), conv_stride=(5, 2), conv_kernel=(10, 3), num_conv_pos_embeddings=16,
            num_conv_pos_embedding_groups=2)


def _hf_model(folder, **variant):
    torch.manual_seed(0)
    config = transformers.Wav2Vec2Config(**TINY, **variant)
    model = transformers.Wav2Vec2Model(config).eval()
    with torch.no_grad():  # non-trivial norm parameters, so a swapped gamma/beta would show
        for name, p in model.named_parameters():
            if "norm" in name:
                p.add_(torch.randn_like(p) * 0.1)
    model.save_pretrained(folder)
    return model


def _hf_hidden(model, x):
    xn = (x - x.mean(1, keepdims=True)) / np.sqrt(x.var(1, keepdims=True) + 1e-7)
    with torch.no_grad():
        return model(torch.from_numpy(xn)).last_hidden_state.numpy()


def _sequence(model):
    import keras

    return keras.Model(model.input, model.get_layer("last_hidden_state").output)


@pytest.fixture(scope="module")
def base_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("w2v_base")
    return folder, _hf_model(folder)


@pytest.fixture(scope="module")
def spec():
    from automl_tl_audio import specs

    return {s.name: s for s in specs()}["wav2vec2-base"]


def test_parity_base_layout_through_spec(base_folder, spec):
    """group-norm feature encoder + post-LN encoder (wav2vec2-base), loaded as --weights NAME=folder."""
    folder, hf = base_folder
    weights = spec.resolve_weights({"wav2vec2-base": str(folder)})
    assert weights.kind == "user"
    cfg = {"sample_rate": 16000, "duration": 0.25}
    model = spec.build(weights, cfg)
    adapter = spec.make_adapter(cfg, weights, None)
    assert adapter.output_shape == (4000,)
    x = np.random.default_rng(0).normal(0, 0.1, (2, 4000)).astype(np.float32)
    ref = _hf_hidden(hf, x)
    out = np.asarray(_sequence(model)(x, training=False))
    assert out.shape == ref.shape == (2, 399, 32)
    assert np.abs(out - ref).max() < TOL
    pooled = np.asarray(model(x, training=False))
    assert pooled.shape == (2, 32) and np.abs(pooled - ref.mean(1)).max() < TOL


@pytest.mark.parametrize("variant", [
    dict(feat_extract_norm="layer", do_stable_layer_norm=True, conv_bias=True),
    dict(feat_extract_norm="layer", do_stable_layer_norm=False),
])
def test_parity_layer_norm_variants(tmp_path, variant):
    import json

    from automl_tl_audio._wav2vec2 import build_wav2vec2, load_wav2vec2_weights

    hf = _hf_model(tmp_path, **variant)
    model = build_wav2vec2(json.loads((tmp_path / "config.json").read_text()), 3000)
    load_wav2vec2_weights(model, tmp_path)
    x = np.random.default_rng(1).normal(0, 0.1, (2, 3000)).astype(np.float32)
    assert np.abs(np.asarray(_sequence(model)(x, training=False)) - _hf_hidden(hf, x)).max() < TOL


def test_prefixed_checkpoint_and_loader(tmp_path, base_folder):
    """A Wav2Vec2ForCTC folder (keys prefixed 'wav2vec2.') loads via ResolvedWeights.apply."""
    import json

    from automl_tl.weights import ResolvedWeights
    from automl_tl_audio import _w2v_loader
    from automl_tl_audio._wav2vec2 import build_wav2vec2

    _, hf = base_folder
    ctc = transformers.Wav2Vec2ForCTC(hf.config)
    ctc.wav2vec2.load_state_dict(hf.state_dict())
    ctc.save_pretrained(tmp_path)
    model = build_wav2vec2(json.loads((tmp_path / "config.json").read_text()), 2000)
    ResolvedWeights(backbone="wav2vec2-base", kind="user", location=str(tmp_path),
                    loader=_w2v_loader).apply(model)
    x = np.random.default_rng(2).normal(0, 0.1, (1, 2000)).astype(np.float32)
    assert np.abs(np.asarray(_sequence(model)(x, training=False)) - _hf_hidden(hf, x)).max() < TOL


def test_blocks_cover_every_weight_once(base_folder, spec):
    folder, _ = base_folder
    model = spec.build(spec.resolve_weights({"wav2vec2-base": str(folder)}), {"duration": 0.25})
    blocks = spec.blocks(model)
    assert len(blocks) == 3  # [feature encoder], [layer 0], [layer 1]
    assert all(blocks)
    assert {layer.name for layer in blocks[0]} >= {"w2v_fe_conv0", "w2v_fe_norm0", "w2v_fp_dense", "w2v_pos_conv"}
    ids = [id(v) for block in blocks for layer in block for v in layer.weights]
    assert len(ids) == len(set(ids)) == len(model.weights)
    # the engine's top-N rule: freeze variables outside the chosen blocks
    keep = {id(v) for layer in blocks[-1] for v in layer.weights}
    for v in model.weights:
        if id(v) not in keep:
            v.trainable = False
    n_trainable = sum(int(np.prod(v.shape)) for v in model.trainable_weights)
    assert n_trainable == sum(layer.count_params() for layer in blocks[-1])
    assert 0 < n_trainable < model.count_params()


def test_fine_tune_step_and_keras_round_trip(base_folder, spec, tmp_path):
    import keras

    folder, _ = base_folder
    cfg = {"sample_rate": 16000, "duration": 0.2}
    backbone = spec.build(spec.resolve_weights({"wav2vec2-base": str(folder)}), cfg)
    head = keras.Sequential([keras.Input((32,)), keras.layers.Dense(3, activation="softmax")])
    inp = keras.Input((3200,))
    model = keras.Model(inp, head(backbone(inp)))
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    x = np.random.default_rng(3).normal(0, 0.1, (4, 3200)).astype(np.float32)
    before = backbone.get_layer("w2v_l1_ff1").get_weights()[0].copy()
    hist = model.fit(x, np.array([0, 1, 2, 0]), epochs=1, verbose=0)
    assert np.isfinite(hist.history["loss"][0])
    assert np.abs(backbone.get_layer("w2v_l1_ff1").get_weights()[0] - before).max() > 0
    path = tmp_path / "m.keras"
    model.save(path)
    again = keras.models.load_model(path)
    np.testing.assert_allclose(np.asarray(again(x)), np.asarray(model(x)), atol=1e-5)


def test_random_init_real_config_param_count(spec):
    model = spec.build(None, {"sample_rate": 16000, "duration": 0.5})
    # HF counts masked_spec_embed (768) and the weight-norm g (128); the port folds weight norm
    assert model.count_params() + 768 + 128 == spec.n_params
    assert model.output_shape == (None, 768)
    assert len(spec.blocks(model)) == spec.n_blocks == 13
