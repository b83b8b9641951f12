"""Fine-tuning trials in one process share one build of their backbone (issue 33): each starts from
the pretrained weights (restored, not the previous trial's), trains exactly as on a fresh build,
and a model an earlier trial's result still holds is never restored over."""

from __future__ import annotations

import weakref
from dataclasses import replace

import numpy as np

from automl_tl.trainable_pool import POOL, clear_pool
from automl_tl.training import TrialConfig, run_trial


def _values(model) -> list[np.ndarray]:
    return [np.array(v) for v in model.weights]


def _context(image_folder, pm, strategy):
    """A trial context over the 36 test images at MobileNetV2's smallest size, its real weights
    (built quickly; no profile or probe: the trials ask for the features they need)."""
    from automl_tl.cache import EmbeddingCache
    from automl_tl.data import load_data
    from automl_tl.evaluation import evaluation_plan
    from automl_tl.training import TrialContext

    data = load_data(str(image_folder), modalities=pm.modalities)
    y = np.array([data.classes.index(c) for c in data.labels])
    spec = pm.backbones.get("mobilenetv2")
    return TrialContext(data=data, plan=evaluation_plan(data, y, quiet=True), y=y, n_classes=len(data.classes),
                        input_configs={spec.name: {"image_size": 32}}, weights={spec.name: spec.resolve_weights()},
                        specs={spec.name: spec}, modality=pm.modalities.get("image"), cache=EmbeddingCache(disk=False),
                        batch_size=32, strategies={"fine_tune_all": strategy})


def test_fine_tuning_trials_restore_one_build_and_never_a_held_model(image_folder, pm):
    base = pm.strategies.get("fine_tune_all")
    starts: list[list[np.ndarray]] = []

    class Recording(type(base)):  # the built-in strategy, noting the weights each trial starts from
        def model(self, cfg, ctx, head):
            backbone, model, adapter = super().model(cfg, ctx, head)
            starts.append(_values(backbone))
            return backbone, model, adapter

    ctx = _context(image_folder, pm, Recording())
    cfg = TrialConfig(backbone="mobilenetv2", strategy="fine_tune_all", backbone_lr=1e-3, ft_epochs=1,
                      options={"features": "final"})
    clear_pool()
    builds, restores = POOL.builds, POOL.restores
    first = run_trial(cfg, ctx)  # built: the pool's copy, now held by this result
    assert POOL.builds == builds + 1
    curve = [(h["loss"], h["val_score"]) for h in first.history if h["phase"] == "fine_tune"]
    kernel = first.backbone.trainable_weights[0]  # as if trained far: a restore over it would show
    kernel.assign(np.array(kernel) + 1.0)
    held_values = _values(first.backbone)
    del kernel

    # the pooled copy is held by ``first``: a fresh build is handed out (and pooled instead)
    other = ctx.strategy("fine_tune_all").backbone(cfg, ctx)
    assert POOL.builds == builds + 2 and POOL.restores == restores and other is not first.backbone
    for a, b in zip(starts[0], _values(other)):
        np.testing.assert_array_equal(a, b)
    kernel = other.trainable_weights[0]  # as a trial that held it would leave it
    kernel.assign(np.array(kernel) - 1.0)
    fresh = weakref.ref(other)
    del other, kernel  # nothing holds that build now

    second = run_trial(cfg, ctx)  # restored, not built
    assert POOL.builds == builds + 2 and POOL.restores == restores + 1 and second.backbone is fresh()
    for a, b in zip(starts[0], starts[1]):  # both trials start from the pretrained weights
        np.testing.assert_array_equal(a, b)
    # and the restored copy trains exactly as the first trial's fresh build did
    assert [(h["loss"], h["val_score"]) for h in second.history if h["phase"] == "fine_tune"] == curve
    for a, b in zip(held_values, _values(first.backbone)):  # the held model kept its weights
        np.testing.assert_array_equal(a, b)
    assert len(second.backbone._inbound_nodes) == 1  # the dead graphs' nodes dropped: only this trial's
    clear_pool()


def test_a_restored_model_draws_its_dropout_seeds_as_a_fresh_build():
    import gc
    import random
    from types import SimpleNamespace

    import keras

    from automl_tl.trainable_pool import trainable_backbone

    def make():  # the same weights every build ("pretrained"), a dropout seed drawn per build
        return keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, kernel_initializer="ones"),
                                 keras.layers.Dropout(0.5)])

    spec, weights = SimpleNamespace(name="tiny"), SimpleNamespace(fingerprint="pretrained")

    def hand_out(seed):
        keras.utils.set_random_seed(seed)  # as each trial does (torch's dropout draws from torch's seed)
        POOL.gc_s = 0.0  # as if the last garbage collection were quick: the pooled one is checked after one
        model = trainable_backbone(spec, weights, {}, {}, "float32", make)
        seeds = [np.array(v).tolist() for v in model.variables if id(v) not in {id(w) for w in model.weights}]
        mask = keras.ops.convert_to_numpy(model(np.ones((64, 4), "float32"), training=True))
        model.layers[0].kernel.assign(np.zeros((4, 3)))  # as if trained
        cycle = [model]
        cycle.append(cycle)  # garbage in a reference cycle naming it, as a trial's assembled model is
        return id(model), seeds, random.random(), mask

    clear_pool()
    gc.disable()  # the cycle stays until the pool's own collection finds it
    try:
        built_7 = hand_out(7)
        restored_8 = hand_out(8)  # the trial of another seed, on the pooled copy
        assert POOL.gc_s > 0.0  # found free after a collection
        clear_pool()
        built_8 = hand_out(8)
    finally:
        gc.enable()
    assert restored_8[0] == built_7[0] and built_8[0] != built_7[0]
    assert restored_8[1] == built_8[1] != built_7[1]  # the seeds a fresh build under that state draws
    assert restored_8[2] == built_8[2]  # and the random state left alike
    np.testing.assert_array_equal(restored_8[3], built_8[3])  # the same dropout mask, the same weights
    assert trainable_backbone(spec, None, {}, {}, "float32", make) is not \
        trainable_backbone(spec, None, {}, {}, "float32", make)  # random weights: built every time
    clear_pool()
