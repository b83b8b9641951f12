"""Fixed costs bounded: candidates ranked on a sample whose features the trials reuse, and every
readout of a backbone from one forward pass."""

import math

import numpy as np

from automl_tl.cache import EmbeddingCache
from automl_tl.data import load_data
from automl_tl.evaluation import make_plan
from automl_tl.probe import probe_sample


def test_a_sample_keeps_class_shares_and_the_run_s_split():
    y = np.r_[np.zeros(900, int), np.ones(90, int), np.full(10, 2)]
    idx = probe_sample(y, 200, seed=1)
    assert len(idx) == len(set(idx)) == 200
    assert np.bincount(y[idx]).tolist() == [180, 18, 2]
    plan = make_plan(y, seed=0)
    sub = plan.restrict(idx)
    for (tr, va), (str_, sva) in zip(plan.folds, sub.folds):  # the sample's folds are the run's
        assert set(idx[str_]) == set(tr) & set(idx) and set(idx[sva]) == set(va) & set(idx)


def test_a_sample_s_features_are_not_computed_again_for_the_whole_data(tmp_path, image_folder, pm):
    spec = pm.backbones.get("pixels")
    items = list(load_data(str(image_folder), modalities=pm.modalities).items)
    idx = np.array([0, 3, 5, 10, 20, 33])
    cache = EmbeddingCache(tmp_path / "cache")
    kw = dict(spec=spec, weights=None, input_config={"image_size": 32}, options={}, batch_size=4)
    sample = cache.get_or_compute(items=[items[i] for i in idx], data_fingerprint="sample",
                                  part_of=("whole", idx), **kw)
    before = cache.stats["forward_batches"]
    whole = cache.get_or_compute(items=items, data_fingerprint="whole", **kw)
    assert cache.stats["forward_batches"] - before == math.ceil((len(items) - len(idx)) / 4)
    fresh = EmbeddingCache(tmp_path / "fresh", disk=False).get_or_compute(items=items, data_fingerprint="whole", **kw)
    np.testing.assert_allclose(whole, fresh, rtol=1e-6)
    np.testing.assert_allclose(whole[idx], sample, rtol=1e-6)


def test_every_readout_of_a_backbone_comes_from_one_forward_pass(tmp_path, image_folder, pm):
    import keras

    spec = pm.backbones.get("mobilenetv2")
    items = list(load_data(str(image_folder), modalities=pm.modalities).items)[:10]
    options = [{"features": "final"}, {"features": "mid"}]
    cache = EmbeddingCache(tmp_path / "cache")
    keras.utils.set_random_seed(0)
    both = cache.get_or_compute_many(spec=spec, weights=None, input_config={"image_size": 96},
                                     options_list=options, items=items, data_fingerprint="d", batch_size=4)
    assert cache.stats["forward_batches"] == math.ceil(len(items) / 4)  # not once per readout
    for opts, feats in zip(options, both):
        keras.utils.set_random_seed(0)  # the same random weights
        alone = EmbeddingCache(tmp_path / "alone", disk=False).get_or_compute(
            spec=spec, weights=None, input_config={"image_size": 96}, options=opts, items=items,
            data_fingerprint="d", batch_size=4)
        np.testing.assert_allclose(feats, alone, rtol=1e-4, atol=1e-5)
    again = EmbeddingCache(tmp_path / "cache")  # both were saved under their own key
    again.get_or_compute_many(spec=spec, weights=None, input_config={"image_size": 96}, options_list=options,
                              items=items, data_fingerprint="d", batch_size=4)
    assert again.stats["disk_hits"] == 2 and again.stats["forward_batches"] == 0
