"""Fixed costs bounded: candidates ranked on a sample whose features the trials reuse, and every
readout of a backbone from one forward pass."""

import math

import numpy as np
import pytest

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


def test_a_pass_that_would_outlast_its_budget_stops_after_its_second_batch(tmp_path, image_folder, pm):
    """The probe's guard (issue 32: a 110 M encoder is left out when the budget cannot hold its
    embedding): the rate measured on the first batches after the build predicts the rest; a
    pass predicted to end too late stops there, caches nothing, and says the seconds."""
    from automl_tl.budget import Budget
    from automl_tl.errors import EmbeddingOverBudget
    from automl_tl.probe import _guard

    spec = pm.backbones.get("pixels")
    items = list(load_data(str(image_folder), modalities=pm.modalities).items)  # 36 images
    kw = dict(spec=spec, weights=None, input_config={"image_size": 32}, options={}, batch_size=4,
              items=items, data_fingerprint="whole")
    cache = EmbeddingCache(tmp_path / "cache")
    seen = []
    cache.guard = lambda name, per_item, left: seen.append((name, per_item, left))
    cache.get_or_compute(**kw)  # a guard that lets it run: told the rate and the items left, batch by batch
    assert [left for _, _, left in seen] == list(range(28, 0, -4)) and all(n == "pixels" and r > 0 for n, r, _ in seen)

    cache = EmbeddingCache(tmp_path / "cache2")
    cache.guard = _guard(Budget.of(1e-3))  # a millisecond: nothing more fits
    with pytest.raises(EmbeddingOverBudget, match=r"embedding with pixels would take about \d+ s more") as exc:
        cache.get_or_compute(**kw)
    assert exc.value.predicted > 0 and cache.stats["forward_batches"] == 2
    assert not list((tmp_path / "cache2").glob("*.npy")) and not list((tmp_path / "cache2").glob("*.tmp*"))
    cache.guard = _guard(Budget.of(None))  # no time budget: never stops
    assert cache.get_or_compute(**kw).shape[0] == len(items)


def test_the_probe_leaves_out_what_its_budget_cannot_embed_and_recommend_prices_the_rest(tmp_path, image_folder):
    from dataclasses import replace
    from types import SimpleNamespace

    from automl_tl.estimator import AutoTransfer
    from automl_tl.preparation import ranked_recommendations
    from automl_tl.probe import probe_candidates

    est = AutoTransfer(backbones=["pixels", "mobilenetv2"], cache_dir=str(tmp_path / "cache"))
    prep = est._prepare(str(image_folder))
    # what `automl-tl recommend` prints beside each candidate: its costs, from the measured pass
    cost = ranked_recommendations(est._pm(), prep, 1)[0]["evidence"]["seconds"]
    assert cost["per_item"] > 0 and cost["embed_all"] == round(cost["per_item"] * 36, 1)
    assert cost["fine_tune_epoch"] > cost["embed_all"] / 36 * len(prep.ctx.plan.train)
    # a fresh cache and a budget with a millisecond left: the classical baseline (first) is
    # embedded whatever the budget; mobilenetv2's pass stops on its measured rate, saying why
    ctx = replace(prep.ctx, cache=EmbeddingCache(tmp_path / "fresh"), probes={}, batch_size=4)
    almost_spent = SimpleNamespace(limited=True, past=lambda: False, left=lambda: 1e-3)
    rows = probe_candidates(ctx, list(prep.specs), budget=almost_spent)
    by_name = {r["backbone"]: r for r in reversed(rows)}  # each backbone's first row
    assert "score" in by_name["pixels"]
    assert by_name["mobilenetv2"]["skipped"].startswith("left out: embedding with mobilenetv2 would take about")
    assert by_name["mobilenetv2"]["predicted_s"] >= 0 and ctx.cache.guard is None
    # its other readouts are left out with it, not tried again
    assert [r["skipped"] for r in rows if r["backbone"] == "mobilenetv2"] == \
        [by_name["mobilenetv2"]["skipped"]] * len([r for r in rows if r["backbone"] == "mobilenetv2"])
