"""Selection that survives small data: folds, standard errors, the one-SE rule, the linear probe
and its Keras head, and what the search delivers (refit, classical baseline, early stops)."""

import json
import time
from dataclasses import replace

import numpy as np
import pytest

from automl_tl import AutoTransfer
from automl_tl.budget import NO_BUDGET, Budget
from automl_tl.evaluation import Candidate, bootstrap_se, complexity, make_plan, select
from automl_tl.probe import fit_logistic, linear_probe, logistic_head


def _accuracy(y_true, y_pred):
    return float(np.mean(np.asarray(y_true) == np.asarray(y_pred)))


# ------------------------------------------------------------------------------ folds
def test_cv_folds_cover_every_item_once_and_stay_stratified():
    y = np.array([0] * 30 + [1] * 20 + [2] * 10)
    plan = make_plan(y, val_fraction=0.2, seed=3)
    assert plan.kind == "cv" and plan.k == 5
    seen = np.concatenate([va for _, va in plan.folds])
    assert sorted(seen) == list(range(len(y)))
    for tr, va in plan.folds:
        assert not set(tr) & set(va)
        assert np.bincount(y[va], minlength=3).tolist() == [6, 4, 2]
    assert (plan.train, plan.val) == plan.folds[0]


def test_groups_never_straddle_a_fold_and_a_fixed_split_is_one_holdout():
    y = np.array([0, 1] * 30)
    groups = np.repeat(np.arange(6), 10)
    plan = make_plan(y, groups=groups, seed=0)
    for tr, va in plan.folds:
        assert not set(groups[tr]) & set(groups[va])
    fixed = np.zeros(len(y), bool)
    fixed[:12] = True
    plan = make_plan(y, fixed_val=fixed)
    assert plan.kind == "holdout" and plan.val.tolist() == list(range(12))


def test_copies_of_an_input_stay_on_one_side_of_every_split(tmp_path):
    """Exact duplicates (a text pasted twice, a photo saved under two names) in training and
    validation at once score what was learned from the twin: they are grouped."""
    from PIL import Image

    from automl_tl.data import LabelledData, duplicate_groups, evaluation_plan

    texts = [f"review number {i} of the film" for i in range(40)]
    labels = ["pos", "neg"] * 20
    copies = [t.upper() + "  " for t in texts[:10]]  # same text up to case and spacing
    data = LabelledData(modality="text", items=tuple(texts + copies), labels=tuple(labels + labels[:10]),
                        source="t")
    y = np.array([0 if lab == "pos" else 1 for lab in data.labels])
    plan = evaluation_plan(data, y)
    key = [" ".join(t.split()).lower() for t in data.items]
    for tr, va in plan.folds:
        assert not {key[i] for i in tr} & {key[i] for i in va}
    assert plan.kind == "cv" and "10 inputs are exact copies of another" in plan.reason
    unique = LabelledData(modality="text", items=tuple(texts), labels=tuple(labels), source="t")
    assert duplicate_groups(unique) == (None, 0)
    assert [f[1].tolist() for f in evaluation_plan(unique, y[:40]).folds] == \
        [f[1].tolist() for f in make_plan(y[:40]).folds]  # no copies: the plan it always was
    # files by their bytes, whatever their names
    paths = []
    for i in range(6):
        Image.new("L", (8, 8), 40 * i).save(tmp_path / f"{i}.png")
        paths.append(str(tmp_path / f"{i}.png"))
    (tmp_path / "copy.png").write_bytes((tmp_path / "0.png").read_bytes())
    ids, n = duplicate_groups(LabelledData(modality="image", items=tuple(paths + [str(tmp_path / "copy.png")]),
                                           labels=("a", "b") * 3 + ("a",), source="f"))
    assert n == 1 and ids[0] == ids[6] and len(set(ids[:6])) == 6


def test_copies_labelled_as_different_classes_are_warned_about(caplog):
    """A text under two labels (or an image listed once per object in it) teaches the model both
    answers; nothing said so."""
    from automl_tl.data import LabelledData, evaluation_plan

    texts = [f"review number {i} of the film" for i in range(40)]
    labels = ["pos", "neg"] * 20
    data = LabelledData(modality="text", items=tuple(texts + texts[:3]), labels=tuple(labels + ["neg", "neg", "neg"]),
                        source="t.csv")
    y = np.array([0 if lab == "pos" else 1 for lab in data.labels])
    evaluation_plan(data, y)
    assert "t.csv: 2 input(s) appear more than once with different labels (e.g. 'review number 0 of the " \
           "film' as 'neg' and 'pos')" in caplog.text
    caplog.clear()
    same = LabelledData(modality="text", items=tuple(texts + texts[:3]), labels=tuple(labels + labels[:3]),
                        source="t.csv")
    evaluation_plan(same, np.array([0 if lab == "pos" else 1 for lab in same.labels]))
    assert "different labels" not in caplog.text  # copies that agree are only grouped


def test_large_data_gets_one_holdout_split():
    y = np.array([0, 1] * 50)
    assert make_plan(y, cv_max_items=60).kind == "holdout"
    assert make_plan(y, cv_max_items=60, cv=True).kind == "cv"


# ------------------------------------------------------------------------------ standard errors
def test_standard_error_shrinks_with_more_items_and_is_never_zero():
    rng = np.random.default_rng(0)
    small = bootstrap_se(rng.integers(0, 2, 40), rng.integers(0, 2, 40), _accuracy)
    large = bootstrap_se(rng.integers(0, 2, 4000), rng.integers(0, 2, 4000), _accuracy)
    assert large < small / 5
    y = np.ones(12, int)
    assert bootstrap_se(y, y, _accuracy) > 0.05  # 12 of 12 right is not certainty


def test_grouped_standard_error_is_larger_when_groups_agree_inside():
    y = np.zeros(60, int)
    pred = np.repeat([0, 1, 0, 0, 1, 0], 10)  # whole groups right or wrong
    groups = np.repeat(np.arange(6), 10)
    assert bootstrap_se(y, pred, _accuracy, groups=groups) > bootstrap_se(y, pred, _accuracy) * 1.5


# ------------------------------------------------------------------------------ the one-SE rule
def test_a_gap_within_one_standard_error_goes_to_the_simpler_trial():
    fe = Candidate(trial=0, score=0.80, se=0.03, seconds=1, complexity=complexity(0, 0, False))
    ft = Candidate(trial=1, score=0.82, se=0.05, seconds=60, complexity=complexity(2, 0, False))
    sel = select([fe, ft])
    assert sel.trial == 0 and sel.top_trial == 1 and sel.tied == (0, 1)
    assert "noise" in sel.reason
    better = Candidate(trial=2, score=0.90, se=0.05, seconds=60, complexity=complexity(2, 0, False))
    assert select([fe, ft, better]).trial == 2  # beyond one SE: the better trial wins


def test_among_equally_simple_ties_the_higher_score_wins_unless_tenfold_cheaper():
    """Two linear probes 0.1 s apart: the cost difference is jitter, the better score wins; a
    hidden-layer head ten times cheaper than another wins its tie on cost."""
    fe = complexity(0, 0, False)
    mid = Candidate(trial=0, score=0.83, se=0.02, seconds=0.09, complexity=fe)
    final = Candidate(trial=2, score=0.815, se=0.02, seconds=0.07, complexity=fe)
    assert select([mid, final]).trial == 0
    again = Candidate(trial=5, score=0.83, se=0.02, seconds=0.05, complexity=fe)  # a repeat of trial 0, faster
    sel = select([mid, final, again])
    assert sel.trial == 0 and sel.top_trial == 0  # the first of equal trials: the top itself, no "simpler" story
    mlp = complexity(0, 256, False)
    slow = Candidate(trial=3, score=0.85, se=0.03, seconds=40, complexity=mlp)
    cheap = Candidate(trial=4, score=0.84, se=0.03, seconds=3, complexity=mlp)
    assert select([slow, cheap]).trial == 4


def test_equally_simple_ties_go_to_the_lower_log_loss_on_shared_items():
    """Two probes cross-validated on the same 200 items: accuracy puts the first half a point
    ahead (noise at 200 items); the second gave the true classes clearly higher probabilities."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    fe = complexity(0, 0, False)
    sure = np.where(rng.random(200) < 0.72, 0.8, 0.3)           # right (p > 0.5) on ~72 %
    unsure = np.where(sure > 0.5, 0.55, 0.45)                     # the same items right, barely
    unsure[np.flatnonzero(sure < 0.5)[:1]] = 0.51                  # and one more by a hair
    pred_of = lambda p: np.where(p > 0.5, y, 1 - y)               # noqa: E731
    a = Candidate(trial=0, score=_accuracy(y, pred_of(unsure)), se=0.03, seconds=1, complexity=fe,
                  index=np.arange(200), pred=pred_of(unsure), p_true=unsure)
    b = Candidate(trial=1, score=_accuracy(y, pred_of(sure)), se=0.03, seconds=1, complexity=fe,
                  index=np.arange(200), pred=pred_of(sure), p_true=sure)
    assert a.score > b.score
    sel = select([a, b], y=y, metric=_accuracy)
    assert sel.trial == 1 and sel.top_trial == 0 and "log-loss" in sel.reason
    # without recorded probabilities the higher score wins, as before
    assert select([replace(a, p_true=None), b], y=y, metric=_accuracy).trial == 0
    # a simpler trial still wins its tie whatever its log-loss
    simpler = replace(a, trial=2, complexity=complexity(0, 0, False), seconds=1)
    hidden = replace(b, trial=3, complexity=complexity(0, 256, False))
    assert select([simpler, hidden], y=y, metric=_accuracy).trial == 2


def test_ties_prefer_frozen_linear_pretrained():
    ranks = [complexity(0, 0, False), complexity(0, 0, True),
             complexity(0, 256, False), complexity(1, 0, False, unfreeze_blocks=1),
             complexity(1, 0, False, unfreeze_blocks=3), complexity(2, 0, False)]
    assert ranks == sorted(ranks)
    classical = Candidate(trial=0, score=0.9, se=0.02, complexity=complexity(0, 0, True))
    pretrained = Candidate(trial=1, score=0.89, se=0.02, complexity=complexity(0, 0, False))
    assert select([classical, pretrained]).trial == 1


def test_paired_comparison_on_shared_items_decides_ties():
    """A fine-tuned trial scored on 40 hold-out items against a probe cross-validated on all 200:
    the hold-out happens to be easy, so the fine-tuned score looks far above the probe's; on the
    40 items they share, the two are compared fairly."""
    y = np.array([0, 1] * 100)
    val = np.arange(160, 200)
    probe_pred = y.copy()
    probe_pred[np.arange(0, 160, 3)] ^= 1  # wrong on a third of the training items...
    probe_pred[val[:3]] ^= 1  # ...but on only 3 of the 40 hold-out items
    probe = Candidate(trial=0, score=_accuracy(y, probe_pred), se=0.03, index=np.arange(200), pred=probe_pred,
                      complexity=complexity(0, 0, False))

    def fine_tuned(fixed: int, number: int, se: float = 0.04) -> Candidate:
        pred = probe_pred[val].copy()
        pred[:fixed] = y[val][:fixed]  # right where the probe was wrong on `fixed` items
        return Candidate(trial=number, score=_accuracy(y[val], pred), se=se, index=val, pred=pred,
                         complexity=complexity(2, 0, False))

    one_more = fine_tuned(1, 1)
    assert one_more.score - probe.score > one_more.se  # unpaired, the fine-tuned trial would win
    sel = select([probe, one_more], y=y, metric=_accuracy)
    assert sel.paired and sel.trial == 0  # one item better of the 40 shared: noise
    # unpaired noise is a tie too: a dissimilar trial within the top score's standard error
    assert select([probe, replace(one_more, score=probe.score + 0.02)]).trial == 0


# ------------------------------------------------------------------------------ the linear probe
@pytest.mark.parametrize("n_classes", [2, 4])
def test_logistic_head_gives_scikit_learns_probabilities(n_classes):
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(n_classes)
    x = rng.normal(3.0, 5.0, (80, 7)).astype("float32")
    y = rng.integers(0, n_classes, 80)
    head = logistic_head(x, y, 0.5, n_classes)
    mean, std = x.mean(0), np.sqrt(x.var(0) + 1e-6)
    ref = LogisticRegression(C=0.5, max_iter=500).fit((x - mean) / std, y).predict_proba((x - mean) / std)
    got = np.asarray(head(x, training=False))
    np.testing.assert_allclose(got, ref, atol=1e-4)


def test_a_class_missing_from_the_training_items_is_never_predicted():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 4))
    mean, var, W, b = fit_logistic(x, np.array([0, 2] * 15), 1.0, n_classes=3)
    logits = ((x - mean) / np.sqrt(var)) @ W + b
    assert np.all(logits.argmax(1) != 1)


def test_probe_picks_a_strength_by_the_folds_and_scores_out_of_fold():
    rng = np.random.default_rng(1)
    y = np.array([0, 1] * 60)
    x = rng.normal(size=(120, 50))
    x[:, 0] += 4.0 * y  # one informative feature among 50 noisy ones
    plan = make_plan(y, seed=0)
    res = linear_probe(x, y, plan.folds, metric=_accuracy, n_classes=2,
                       se_fn=lambda yt, yp, idx: bootstrap_se(yt, yp, _accuracy))
    assert sorted(res.eval_index) == list(range(120)) and res.oof_probs.shape == (120, 2)
    assert res.score == pytest.approx(_accuracy(y[res.eval_index], res.oof_probs.argmax(1)))
    assert 0.85 < res.score <= 1.0 and 0 < res.se < 0.1
    assert res.scores_by_C[res.C] == max(res.scores_by_C.values())
    assert min(res.scores_by_C.values()) < res.score  # the strength mattered


# ------------------------------------------------------------------------------ the search
def _fit(folder, tmp_path, **kw):
    params = dict(backbones=["mobilenetv2"], trials=3, run_dir=str(tmp_path / "run"), report=False,
                  cache_dir=str(tmp_path / "cache"))
    return AutoTransfer(**(params | kw)).fit(str(folder))


def test_saturated_validation_stops_the_search_and_says_what_it_saved(tmp_path, image_folder):
    est = _fit(image_folder, tmp_path, trials=10, strategies=["feature_extraction"])
    assert est.stop_["kind"] == "saturated" and "saturated" in est.stop_["reason"]
    assert est.stop_["trials_saved"] > 0 and est.stop_["seconds_saved"] >= 0
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["stop"]["kind"] == "saturated" and summary["finished"] is True
    # the embedding passes' seconds (fresh cache: the probe computed them; the trials reused them)
    forward = summary["forward_seconds"]
    assert 0 < forward["probe"] <= forward["all"] < sum(summary["timings"].values())


def test_no_refit_delivers_the_model_trained_on_the_training_split(tmp_path, image_folder):
    est = _fit(image_folder, tmp_path, refit=False, patience=0, strategies=["feature_extraction"])
    assert est.delivered_["refit"] is False and "--no-refit" in est.delivered_["refit_reason"]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert est.delivered_["n_train"] == summary["evaluation"]["n_train"] < 36
    assert json.loads((tmp_path / "run" / "config.json").read_text())["refitted"] is False


def test_the_pixel_baseline_is_a_deliverable_model(tmp_path, image_folder, forked_cli):
    est = _fit(image_folder, tmp_path, backbones=["pixels"], trials=2, patience=0)
    assert est.delivered_["kind"] == "classical baseline"
    items = sorted(str(p) for p in image_folder.glob("*/*.png"))[:4]
    out = forked_cli.run(["predict", str(tmp_path / "run"), *items, "--json"], timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert [json.loads(line)["label"] for line in out.stdout.strip().splitlines()] == list(est.predict(items))


def test_a_repeated_linear_probe_is_not_rerun_nor_counted_and_an_exhausted_space_stops(tmp_path, image_folder,
                                                                                         monkeypatch):
    """A linear probe is deterministic: when the sampler proposes one again it is recorded as a
    repeat (not run, not counted against --trials). A space with a single configuration (one
    featurizer, linear heads only) stops as exhausted instead of spinning."""
    import automl_tl.search as search_mod

    real = search_mod.SearchSpace
    monkeypatch.setattr(search_mod, "SearchSpace", lambda **kw: real(**(kw | {"head_units": (0,)})))
    est = _fit(image_folder, tmp_path, backbones=["pixels"], trials=5, patience=0)
    trials = est.study_.trials
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    repeats = [t for t in trials if t.user_attrs.get("repeat_of") is not None]
    assert len(complete) == 1 and len(repeats) == search_mod.MAX_REPEATS
    assert all(t.user_attrs["repeat_of"] == complete[0].number and t.params == complete[0].params for t in repeats)
    assert est.stop_["kind"] == "exhausted" and est.stop_["trials_saved"] == 4
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["counts"]["complete"] == 1 and summary["counts"]["not_started"] == search_mod.MAX_REPEATS
    assert (tmp_path / "run" / "model.keras").exists()


def test_a_probe_queued_again_by_another_worker_after_this_one_was_sampled_is_its_twin():
    """The race behind a configuration run twice by two workers: a worker samples a linear probe,
    then another queues the same parameters (the retry of an interrupted trial) before the first
    checks for twins. The queued trial counts as a twin: the sampled one is not run."""
    from types import SimpleNamespace

    import optuna

    from automl_tl.search import Search, SearchSpace
    from automl_tl.training import TrialConfig
    from automl_tl_strategies import FeatureExtraction, FineTuneAll

    study = optuna.create_study(direction="maximize")
    trial = study.ask()  # nothing queued: sampled
    params = {"backbone": trial.suggest_categorical("backbone", ["a", "b"]),
              "strategy": trial.suggest_categorical("strategy", ["feature_extraction"])}
    space = SearchSpace(specs={}, strategies={"feature_extraction": FeatureExtraction(),
                                              "fine_tune_all": FineTuneAll()})
    search = SimpleNamespace(study=study, space=space,
                             _trials=lambda states: study.get_trials(deepcopy=False, states=states))
    cfg = TrialConfig(backbone=params["backbone"], strategy="feature_extraction")
    assert Search._repeat_of(search, trial, cfg) is None
    study.enqueue_trial(params, user_attrs={"retry_of": 0})  # another worker, meanwhile
    assert Search._repeat_of(search, trial, cfg) == 1
    # a fine-tuning trial is never a repeat (its training is not deterministic)
    assert Search._repeat_of(search, trial, replace(cfg, strategy="fine_tune_all")) is None


def _candidate(trial, y, p_true, index=None):
    """A binary trial whose probability of each item's true class is ``p_true``."""
    y = np.asarray(y)
    index = np.arange(len(y)) if index is None else np.asarray(index)
    p_true = np.asarray(p_true, dtype=float)
    proba = np.empty((len(index), 2))
    proba[np.arange(len(index)), y[index]] = p_true
    proba[np.arange(len(index)), 1 - y[index]] = 1 - p_true
    return Candidate(trial=trial, score=float(np.mean(p_true > 0.5)), se=0.03, index=index,
                     pred=proba.argmax(1), p_true=p_true, proba=proba)


def test_an_ensemble_takes_a_partner_that_errs_elsewhere_and_refuses_one_that_errs_alike():
    from automl_tl.evaluation import ensemble

    y = np.tile([0, 1], 100)
    base = np.full(200, 0.9)
    base[:40] = 0.3  # wrong on the first 40 items
    elsewhere = np.full(200, 0.8)
    elsewhere[100:140] = 0.4  # wrong on 40 others
    alike = np.where(base > 0.5, 0.6, 0.45)  # the same mistakes, less sure of everything
    cands = dict(base=_candidate(0, y, base), elsewhere=_candidate(1, y, elsewhere), alike=_candidate(2, y, alike))
    ens = ensemble(cands["base"], [cands["alike"], cands["elsewhere"]], y=y, metric=_accuracy)
    assert ens is not None and ens.trials == (0, 1)
    assert ens.base_score == pytest.approx(0.8) and ens.score == pytest.approx(1.0) and ens.loss < ens.base_loss
    np.testing.assert_allclose(ens.proba, (cands["base"].proba + cands["elsewhere"].proba) / 2)
    assert ens.to_dict()["weights"] == [0.5, 0.5] and "trial 1" in ens.reason
    # alone, the partner that errs alike is refused: the metric does not rise and the log-loss worsens
    assert ensemble(cands["base"], [cands["alike"]], y=y, metric=_accuracy) is None
    # a gain too small to matter (one item a little surer) is refused
    nudged = base.copy()
    nudged[50] = 0.95
    assert ensemble(cands["base"], [_candidate(4, y, nudged)], y=y, metric=_accuracy) is None
    # too few shared items to judge: refused
    few = _candidate(3, y[:20], elsewhere[:20], index=np.arange(20))
    assert ensemble(cands["base"], [few], y=y, metric=_accuracy) is None


def test_a_delivered_ensemble_is_saved_whole_and_predicts_the_average_of_its_members(tmp_path, image_folder,
                                                                                    monkeypatch, forked_cli):
    """The delivery mechanics, with the ensemble's choice forced (that choice is tested above):
    the other member is trained and saved beside the selected model; `predict`, the estimator and
    a reloaded predictor give the average of the members' probabilities; the record says so."""
    import automl_tl.search.delivery as search_mod  # where the delivery calls ensemble
    from automl_tl.artifacts import load_predictor
    from automl_tl.evaluation import Ensemble

    def forced(base, pool, *, y, metric):
        other = pool[0]
        common, ia, ib = np.intersect1d(base.index, other.index, return_indices=True)
        proba = (base.proba[ia] + other.proba[ib]) / 2
        return Ensemble(trials=(base.trial, other.trial), index=common, proba=proba, loss=0.1, base_loss=0.2,
                        score=1.0, base_score=1.0, reason="forced by the test")

    monkeypatch.setattr(search_mod, "ensemble", forced)
    est = _fit(image_folder, tmp_path, backbones=["mobilenetv2", "pixels"], trials=4, patience=0,
               strategies=["feature_extraction"])
    d = est.delivered_
    assert d["kind"] == "ensemble" and d["ensemble"]["trials"][0] == d["trial"] and "forced" in d["ensemble_reason"]
    folder = (tmp_path / "run" / "current").resolve()
    config = json.loads((folder / "config.json").read_text())
    assert config["ensemble"]["members"] == ["members/0"] and (folder / "members" / "0" / "model.keras").exists()
    member = json.loads((folder / "members" / "0" / "config.json").read_text())
    assert member["trial"] == d["ensemble"]["trials"][1] != config["trial"] and member["refitted"] == d["refit"]
    items = sorted(str(p) for p in image_folder.glob("*/*.png"))[:6]
    from automl_tl.batching import predict_proba_items

    both = load_predictor(tmp_path / "run")
    p_member = load_predictor(folder / "members" / "0").predict_proba(items)
    p_main = predict_proba_items(both.model, both.adapter, items, featurize=both._featurize, n_classes=len(both.labels))
    # the average of the members, then the run's temperature (automl_tl.calibration), applied once
    from automl_tl.calibration import apply_temperature

    temperature = both.temperature
    np.testing.assert_allclose(both.predict_proba(items), apply_temperature((p_main + p_member) / 2, temperature),
                               atol=1e-6)
    out = forked_cli.run(["predict", str(tmp_path / "run"), *items, "--json"], timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert [json.loads(line)["label"] for line in out.stdout.strip().splitlines()] == list(est.predict(items))
    # a saved copy is the whole ensemble, and predicts alike
    copy = est.save(tmp_path / "copy")
    np.testing.assert_allclose(load_predictor(copy).predict_proba(items), both.predict_proba(items), atol=1e-6)
    # a damaged ensemble entry is the user's to fix (a refit), said as such
    from automl_tl.errors import NotFittedError

    broken = json.loads((copy / "config.json").read_text())
    broken["ensemble"]["weights"] = [1.0]
    (copy / "config.json").write_text(json.dumps(broken))
    with pytest.raises(NotFittedError, match="ensemble entry is damaged"):
        load_predictor(copy)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["delivered"]["kind"] == "ensemble"
    from automl_tl.report._delivered import delivered_part

    part = delivered_part(summary, {}, None, 1.0, 0.01)
    assert any("ensemble of trials" in x for x in part["sentences"])


def test_a_trial_that_cannot_fit_the_time_left_is_not_started(tmp_path, image_folder, monkeypatch):
    """The mechanism, not a stopwatch: every fine-tuning trial is predicted to cost more than the
    budget, so none starts; feature-extraction trials still run and the fit delivers."""
    from automl_tl.search import CostModel

    monkeypatch.setattr(CostModel, "BUILD_S", 10_000.0)
    est = _fit(image_folder, tmp_path, trials=4, time_budget=600, patience=0,
               strategies=["feature_extraction", "fine_tune_all"], seed=1)
    trials = est.study_.trials
    started = [t for t in trials if t.state.is_finished() and not t.user_attrs.get("not_started")]
    assert started and all(t.user_attrs["strategy"] == "feature_extraction" for t in started)
    skipped = [t for t in trials if t.user_attrs.get("not_started")]
    assert all("predicted cost" in t.user_attrs["not_started"] for t in skipped)
    assert (tmp_path / "run" / "model.keras").exists()


def test_a_budget_spent_before_the_search_still_delivers_one_linear_probe(tmp_path, image_folder, monkeypatch):
    from dataclasses import replace

    """`--time-budget 5s`: the profile and the probe use it all; the run owes one cheap trial (a
    linear probe on cached features) and delivers it instead of exiting with nothing."""
    est = _fit(image_folder, tmp_path, trials=5, time_budget=0.5, strategies=["feature_extraction", "lp_ft"])
    started = [t for t in est.study_.trials if t.state.is_finished() and not t.user_attrs.get("not_started")]
    assert len(started) == 1 and started[0].user_attrs["strategy"] == "feature_extraction"
    assert est.stop_["kind"] == "time" and (tmp_path / "run" / "model.keras").exists()
    # ... also when the recommendation is a fine-tune, which does not fit: the probe queued after it
    import automl_tl.preparation as E  # where _recommendation_for is looked up

    def fine_tune_first(pm, prof, spec):
        rec, options = real(pm, prof, spec)
        return replace(rec, strategy="lp_ft", params={}), options

    real = E._recommendation_for
    monkeypatch.setattr(E, "_recommendation_for", fine_tune_first)
    est = _fit(image_folder, tmp_path, trials=5, time_budget=0.5, strategies=["lp_ft", "feature_extraction"],
               run_dir=str(tmp_path / "run2"), warm_start=False)
    assert est.study_.trials[0].user_attrs["strategy"] == "lp_ft"
    assert "predicted cost" in est.study_.trials[0].user_attrs["not_started"]
    started = [t for t in est.study_.trials if t.state.is_finished() and not t.user_attrs.get("not_started")]
    assert [t.user_attrs["strategy"] for t in started] == ["feature_extraction"]
    assert (tmp_path / "run2" / "model.keras").exists()


def test_a_running_fine_tune_stops_at_the_deadline_keeping_its_best_epoch(tmp_path, image_folder):
    from dataclasses import replace

    from automl_tl.training import TrialConfig, run_trial

    est = AutoTransfer(backbones=["mobilenetv2"], cache_dir=str(tmp_path / "cache"))
    prep = est._prepare(str(image_folder))
    cfg = TrialConfig(backbone="mobilenetv2", strategy="fine_tune_all", backbone_lr=1e-4, ft_epochs=4,
                      options={"features": "final"})
    ctx = replace(prep.ctx, budget=Budget(seconds=0.0, started=time.monotonic()))  # past: stop after the first batch
    result = run_trial(cfg, ctx)
    assert result.stopped_early == "the time budget ran out"
    assert sum(1 for h in result.history if h["phase"] == "fine_tune") == 1
    assert 0.0 <= result.score <= 1.0 and result.epochs["fine_tune"] in (0, 1)


def test_refit_by_default_on_small_and_medium_data_and_under_a_time_budget():
    from types import SimpleNamespace

    large = SimpleNamespace(size_category="large", median_per_class=1500.0)
    small = SimpleNamespace(size_category="small", median_per_class=40.0)
    auto = AutoTransfer()
    assert auto._refit_decision(small, NO_BUDGET) == (True, "")
    assert auto._refit_decision(large, budget=Budget.of(123.0)) == (True, "")
    refit, why = auto._refit_decision(large, NO_BUDGET)
    assert refit is False and "--refit" in why and "1500 per class" in why
    assert AutoTransfer(refit=True)._refit_decision(large, NO_BUDGET)[0] is True
    assert AutoTransfer(refit=False)._refit_decision(small, NO_BUDGET)[0] is False


def test_a_minority_class_the_model_mostly_misses_is_noted(tmp_path):
    """285 fresh + 15 rotten, selected by accuracy: the fit's summary names the class the
    delivered model gets right on fewer than half of its validation items, and the metric that
    weighs it; nothing is said on balanced data, under another metric, or when every class is
    mostly right."""
    import pandas as pd

    from automl_tl.cli import _minority_note

    rows = [("fresh", "fresh")] * 282 + [("fresh", "rotten")] * 3 + [("rotten", "rotten")] * 6 + \
        [("rotten", "fresh")] * 9
    path = tmp_path / "val_predictions.csv"
    pd.DataFrame([(f"t{i}", a, b, 0.9) for i, (a, b) in enumerate(rows)],
                 columns=["item", "label", "predicted", "probability"]).to_csv(path, index=False)
    note = _minority_note(path, "accuracy", True)
    assert note.startswith("the model gets 6 of 15 'rotten' validation items right") and "balanced_accuracy" in note
    assert _minority_note(path, "accuracy", False) is None and _minority_note(path, "macro_f1", True) is None
    rows[-9:-3] = [("rotten", "rotten")] * 6  # 12 of 15 right
    pd.DataFrame([(f"t{i}", a, b, 0.9) for i, (a, b) in enumerate(rows)],
                 columns=["item", "label", "predicted", "probability"]).to_csv(path, index=False)
    assert _minority_note(path, "accuracy", True) is None


def test_a_backbone_the_probe_had_no_time_to_embed_is_not_started(pm):
    """Its frozen trial would embed every item first, at a speed nothing measured (mpnet-base's
    first trial, started with 26 s left of a 2-minute budget, took 75 s): not started, saying why;
    a backbone the probe embedded is priced and runs."""
    from types import SimpleNamespace

    from automl_tl.budget import Budget
    from automl_tl.search import CostModel, SearchSpace
    from automl_tl.search.admission import AdmissionMixin

    specs = {n: pm.backbones.get(n) for n in ("pixels", "mobilenetv2", "efficientnet-lite0")}
    space = SearchSpace(specs=specs, strategies=["feature_extraction"])
    costs = CostModel(seconds_per_item={"pixels": 1e-4, "mobilenetv2": 0.01}, n_train=80, n_val=20, n_all=100,
                      k_folds=5, frozen=["feature_extraction"])
    admission = SimpleNamespace(budget=Budget.of(600), space=space, costs=costs, _first_owed=lambda: False,
                                _trial_budget=lambda: Budget.of(600), _trials=lambda *a: [])
    point = lambda b: space.config(space.point({"backbone": b, "strategy": "feature_extraction", "head_units": 0}))  # noqa: E731
    assert AdmissionMixin._fits(admission, point("mobilenetv2")) is None
    assert AdmissionMixin._fits(admission, point("pixels")) is None
    why = AdmissionMixin._fits(admission, point("efficientnet-lite0"))
    assert why.startswith("not started: the probe had no time to embed efficientnet-lite0's features")
    assert AdmissionMixin._fits(SimpleNamespace(**(vars(admission) | {"budget": Budget.of(None)})),
                                point("efficientnet-lite0")) is None  # no time budget: everything runs
