"""The knowledge base: finished searches are remembered, the nearest past tasks' winners are
enqueued after the recommendation, and a damaged file never stops a search."""

import json

import optuna
import pytest

from automl_tl import AutoTransfer
from automl_tl.knowledge import (append_record, distance, make_record, nearest, read_records,
                                 warm_start_configs)
from automl_tl.strategy import Recommendation


def _trial(value, params, **attrs):
    dists = {k: optuna.distributions.CategoricalDistribution([v]) for k, v in params.items()}
    return optuna.trial.create_trial(params=params, distributions=dists, value=value, user_attrs=attrs)


def _meta(n, classes, probe, modality="image"):
    return {"modality": modality, "n_samples": n, "n_classes": classes, "median_per_class": n / classes,
            "imbalance_ratio": 1.0, "size_category": "small", "probe": probe, "baseline": probe - 0.1}


def _record(label, meta, strategy, backbone, score):
    rec = Recommendation(rule="r", strategy="feature_extraction", backbone=backbone, params={}, reason="")
    trials = [_trial(score - 0.05, {"backbone": backbone}, strategy="feature_extraction", recommended=True),
              _trial(score, {"backbone": backbone, "strategy": strategy, "unfreeze_blocks": 2}, strategy=strategy)]
    return make_record(meta=meta, trials=trials, recommendation=rec, label=label, fingerprint=label)


def test_record_keeps_each_strategys_best_and_the_regret():
    r = _record("a", _meta(300, 3, 0.8), "fine_tune_top", "mobilenetv2", 0.9)
    assert r["best"] == {"strategy": "fine_tune_top", "backbone": "mobilenetv2", "score": 0.9,
                         "params": {"backbone": "mobilenetv2", "strategy": "fine_tune_top", "unfreeze_blocks": 2}}
    assert set(r["by_strategy"]) == {"feature_extraction", "fine_tune_top"}
    assert r["recommended"]["regret"] == pytest.approx(0.05)
    assert make_record(meta={}, trials=[], recommendation=None) is None  # nothing completed: nothing to keep


def test_file_round_trip_skips_damaged_lines_and_keeps_a_tasks_latest(tmp_path):
    kb = tmp_path / "kb.jsonl"
    append_record(_record("a", _meta(300, 3, 0.8), "fine_tune_top", "mobilenetv2", 0.9), kb)
    with kb.open("a") as f:
        f.write('{"schema": 1, "meta": {"modality"\n')  # a torn line (a crash mid-write elsewhere)
        f.write("not json at all\n")
        f.write('[1, 2]\n{"schema": 1, "meta": {"modality": "image"}, "best": {"score": "high"}}\n')
        f.write('{"schema": 1, "meta": {"modality": "image"}, "best": {"score": 1}, "by_strategy": {"x": 3}}\n')
    append_record(_record("a", _meta(300, 3, 0.8), "fine_tune_all", "mobilenetv2", 0.95), kb)  # same task again
    append_record(_record("b", _meta(5000, 10, 0.9), "fine_tune_all", "vgg16", 0.97), kb)
    recs = read_records([kb, tmp_path / "absent.jsonl"])
    assert sorted(r["label"] for r in recs) == ["a", "b"]
    assert next(r for r in recs if r["label"] == "a")["best"]["strategy"] == "fine_tune_all"


def test_nearest_is_by_size_and_strength_within_the_modality():
    recs = [_record("small-easy", _meta(200, 4, 0.9), "feature_extraction", "mobilenetv2", 0.92),
            _record("large-hard", _meta(20000, 10, 0.6), "fine_tune_all", "mobilenetv2", 0.8),
            _record("text", _meta(200, 4, 0.9, "text"), "lp_ft", "minilm-l6", 0.85)]
    me = _meta(300, 4, 0.85)
    near = nearest(me, recs, 3)
    assert [r["label"] for _, r in near] == ["small-easy", "large-hard"]  # never another modality
    assert distance(me, recs[0]["meta"]) < distance(me, recs[1]["meta"])
    configs = warm_start_configs(me, recs, backbones={"mobilenetv2"}, strategies={"feature_extraction", "fine_tune_all"})
    assert [c["label"] for c in configs] == ["small-easy", "large-hard"]
    assert configs[1]["params"]["strategy"] == "fine_tune_all"
    # a past winner this search cannot run falls back to that task's best runnable configuration
    only_fe = warm_start_configs(me, recs, backbones={"mobilenetv2"}, strategies={"feature_extraction"})
    assert [c["params"]["strategy"] for c in only_fe] == ["feature_extraction", "feature_extraction"]


def test_a_task_won_by_a_classical_featurizer_lends_its_best_pretrained_configuration():
    # the classical baseline is probed in every search: the warm start takes the past task's
    # best configuration among the backbones it is given (the caller leaves classical ones out)
    rec = Recommendation(rule="r", strategy="feature_extraction", backbone="emb", params={}, reason="")
    trials = [_trial(1.0, {"backbone": "mfcc", "C": 1.0}, strategy="feature_extraction"),
              _trial(0.9, {"backbone": "emb", "C": 0.1}, strategy="feature_extraction", recommended=True),
              _trial(0.95, {"backbone": "emb", "C": 3.0}, strategy="feature_extraction"),
              _trial(0.7, {"backbone": "emb2", "C": 1.0}, strategy="feature_extraction")]
    past = make_record(meta=_meta(180, 4, 0.9, "audio"), trials=trials, recommendation=rec, label="speech")
    assert past["best"]["backbone"] == "mfcc" and set(past["by_strategy"]) == {"feature_extraction"}
    assert {b: e["score"] for b, e in past["by_backbone"].items()} == {"mfcc": 1.0, "emb": 0.95, "emb2": 0.7}
    me = _meta(270, 10, 0.85, "audio")
    (pick,) = warm_start_configs(me, [past], backbones={"emb", "emb2"}, strategies={"feature_extraction"})
    assert pick["params"] == {"backbone": "emb", "C": 3.0, "strategy": "feature_extraction"}
    assert pick["score"] == pytest.approx(0.95)
    (pick,) = warm_start_configs(me, [past], backbones={"emb", "mfcc"}, strategies={"feature_extraction"})
    assert pick["params"]["backbone"] == "mfcc"  # given the classical featurizer, its win is taken
    old = {k: v for k, v in past.items() if k != "by_backbone"}  # a record written before by_backbone
    assert warm_start_configs(me, [old], backbones={"emb"}, strategies={"feature_extraction"}) == []


def test_the_warm_start_takes_the_configuration_a_past_search_selected():
    # the top validation score (a fine-tune on a small hold-out) is not what the search selected
    rec = Recommendation(rule="r", strategy="feature_extraction", backbone="m", params={}, reason="")
    trials = [_trial(0.80, {"backbone": "m", "head_units": 0}, strategy="feature_extraction", recommended=True),
              _trial(0.86, {"backbone": "m", "strategy": "lp_ft", "backbone_lr": 1e-4}, strategy="lp_ft")]
    for t, n in zip(trials, (0, 1)):
        t.number = n
    past = make_record(meta=_meta(900, 3, 0.8, "text"), trials=trials, recommendation=rec, label="t", selected=0)
    assert past["best"]["strategy"] == "lp_ft" and past["selected"]["trial"] == 0
    me = _meta(2000, 2, 0.78, "text")
    (pick,) = warm_start_configs(me, [past], backbones={"m"}, strategies={"feature_extraction", "lp_ft"})
    assert pick["params"] == {"backbone": "m", "head_units": 0, "strategy": "feature_extraction"}
    # a search that cannot run the selected one takes the task's best it can run
    (pick,) = warm_start_configs(me, [past], backbones={"m"}, strategies={"lp_ft"})
    assert pick["params"]["strategy"] == "lp_ft"
    unselected = make_record(meta=_meta(900, 3, 0.8, "text"), trials=trials, recommendation=rec, label="t")
    assert unselected["selected"] is None
    (pick,) = warm_start_configs(me, [unselected], backbones={"m"}, strategies={"feature_extraction", "lp_ft"})
    assert pick["params"]["strategy"] == "lp_ft"


def test_a_search_enqueues_the_nearest_winner_and_remembers_itself(tmp_path, image_folder, monkeypatch):
    kb = tmp_path / "kb.jsonl"
    monkeypatch.setenv("AUTOML_TL_KNOWLEDGE", str(kb))
    past = _record("past-images", _meta(40, 3, 0.9), "fine_tune_top", "mobilenetv2", 0.97)
    past["by_strategy"]["fine_tune_top"]["params"] |= {"backbone_lr": 5e-5, "ft_epochs": 2}
    append_record(past, kb)
    est = AutoTransfer(backbones=["mobilenetv2"], trials=1, run_dir=str(tmp_path / "run"), report=False,
                       patience=0, warm_start=True, strategies=["feature_extraction", "fine_tune_top"],
                       cache_dir=str(tmp_path / "cache")).fit(str(image_folder))
    queued = [t for t in est.study_.trials if t.user_attrs.get("warm_start")]
    # the nearest task first (its meta-features are this data's); the shipped prior's image tasks may follow
    assert queued and queued[0].user_attrs["warm_start"] == "past-images"
    prior = {r["label"] for r in read_records() if r["source"] == "prior"}
    assert {t.user_attrs["warm_start"] for t in queued[1:]} <= prior and len(queued) <= 3
    params = queued[0].system_attrs.get("fixed_params", queued[0].params)  # still waiting: trials=1 ran trial 0
    assert params["strategy"] == "fine_tune_top" and params["unfreeze_blocks"] == 2
    assert params["backbone_lr"] == pytest.approx(5e-5)
    summary = json.loads((est.run_dir_ / "summary.json").read_text())
    assert summary["warm_start"]["enabled"] and summary["warm_start"]["configs"][0]["label"] == "past-images"
    mine = [r for r in read_records([kb]) if r["label"] != "past-images"]
    assert len(mine) == 1 and mine[0]["meta"]["n_samples"] == 36 and mine[0]["meta"]["modality"] == "image"
    assert mine[0]["best"]["score"] == pytest.approx(est.study_.trials[0].value)  # the one trial that ran
    assert mine[0]["selected"]["trial"] == est.selection_.trial == 0


def test_no_warm_start_ignores_the_knowledge_base(tmp_path, image_folder, monkeypatch):
    kb = tmp_path / "kb.jsonl"
    monkeypatch.setenv("AUTOML_TL_KNOWLEDGE", str(kb))
    append_record(_record("past-images", _meta(40, 3, 0.9), "fine_tune_top", "mobilenetv2", 0.97), kb)
    est = AutoTransfer(backbones=["mobilenetv2"], trials=1, run_dir=str(tmp_path / "run"), report=False,
                       patience=0, warm_start=False, cache_dir=str(tmp_path / "cache")).fit(str(image_folder))
    assert not [t for t in est.study_.trials if t.user_attrs.get("warm_start")]
    assert json.loads((est.run_dir_ / "summary.json").read_text())["warm_start"] == {"enabled": False, "configs": []}


def test_the_prior_ships_with_evidence_for_every_modality(tmp_path, monkeypatch):
    from automl_tl.knowledge import prior_path

    monkeypatch.setenv("AUTOML_TL_KNOWLEDGE", str(tmp_path / "absent.jsonl"))  # a fresh install
    records = read_records()
    assert prior_path().is_file() and records and all(r["source"] == "prior" for r in records)
    assert {r["meta"]["modality"] for r in records} == {"image", "text", "audio"}
    for r in records:  # no path of the machine that built it: meta-features, configurations, scores
        assert "/" not in json.dumps(r["meta"]) and r["best"]["params"]["backbone"]


def test_another_prior_or_none_replaces_the_shipped_one(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOML_TL_KNOWLEDGE", str(tmp_path / "absent.jsonl"))
    shipped = read_records()
    team = tmp_path / "team-prior.jsonl"
    append_record(_record("team-task", _meta(300, 3, 0.8), "fine_tune_top", "mobilenetv2", 0.9), team)
    monkeypatch.setenv("AUTOML_TL_PRIOR", str(team))
    assert [r["label"] for r in read_records()] == ["team-task"]
    monkeypatch.setenv("AUTOML_TL_PRIOR", "none")
    assert read_records() == []
    monkeypatch.setenv("AUTOML_TL_PRIOR", "")  # empty: as if unset
    assert len(read_records()) == len(shipped) > 0


def test_a_file_automl_tl_did_not_write_is_never_appended_to(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n")
    with pytest.raises(FileExistsError, match="not an automl-tl knowledge base"):
        append_record(_record("a", _meta(300, 3, 0.8), "fine_tune_top", "mobilenetv2", 0.9), notes)
    assert notes.read_text() == "my notes\n"
