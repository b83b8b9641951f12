"""The MLflow mirror of a fit (automl_tl.tracking, `fit --mlflow URI`), against MLflow's real
SQLite tracking store under tmp_path: read back with MlflowClient, resumed without duplicates,
a server that is down costing one warning and not the fit."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import optuna
import pytest

from automl_tl import AutoTransfer
from automl_tl.errors import ConfigError
from automl_tl.testing import require_module
from automl_tl.tracking import EXPERIMENT, INSTALL_HINT, TAG, Tracker, check_tracking_uri

mlflow = require_module("mlflow", INSTALL_HINT)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One MLflow database for the module (making its tables takes seconds)."""
    root = tmp_path_factory.mktemp("mlflow")
    return f"sqlite:///{root / 'mlflow.db'}", root


def _runs(uri: str, run_dir) -> tuple:
    """(the client, the parent runs of ``run_dir``, the nested runs by parent id) of the experiment."""
    client = mlflow.MlflowClient(uri)
    exp = client.get_experiment_by_name(EXPERIMENT)
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    parents = [r for r in runs if r.data.tags.get(TAG.RUN_DIR) == str(Path(run_dir).resolve())]
    children: dict[str, list] = {}
    for r in runs:
        if TAG.PARENT in r.data.tags:
            children.setdefault(r.data.tags[TAG.PARENT], []).append(r)
    return client, parents, children


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_uri_mlflow_cannot_read_is_exit_2_before_the_fit(tmp_path, image_folder, capsys, monkeypatch):
    from automl_tl.cli import main

    for uri in ("nosuch://host/x", "http://", "sqlite://", "http://host:port"):
        with pytest.raises(ConfigError):
            check_tracking_uri(uri)
    for uri in ("http://127.0.0.1:5000", "https://u:pw@mlflow.example.org", "sqlite:///mlflow.db", None):
        check_tracking_uri(uri)  # nothing contacted or written
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    folder_store = getattr(mlflow.environment_variables, "MLFLOW_ALLOW_FILE_STORE", None)
    if folder_store is not None:  # this MLflow tracks into a folder only when asked to
        with pytest.raises(ConfigError, match="MLFLOW_ALLOW_FILE_STORE=true"):
            check_tracking_uri(str(tmp_path / "mlruns"))
        monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    check_tracking_uri(str(tmp_path / "mlruns"))
    assert not (tmp_path / "mlruns").exists()
    code = main(["fit", str(image_folder), "--trials", "1", "--run-dir", str(tmp_path / "run"),
                 "--mlflow", "nosuch://host/x"])
    assert code == 2 and not (tmp_path / "run").exists()
    assert "no tracking store for the URI 'nosuch://host/x'" in capsys.readouterr().err
    est = AutoTransfer(tracking_uri="http://u:secret@127.0.0.1:1")
    assert est.get_params()["tracking_uri"] == "http://u:secret@127.0.0.1:1"
    assert est.set_params(tracking_uri=None).tracking_uri is None
    monkeypatch.setitem(__import__("sys").modules, "mlflow", None)  # as where the extra is not installed
    with pytest.raises(ConfigError, match=r"pip install 'automl-tl\[mlflow\]'"):
        check_tracking_uri("sqlite:///mlflow.db")


def _trial(study, params: dict, state, value=None, **attrs):
    """A finished trial as the search records one (its user attributes: automl_tl.schema.ATTR)."""
    dists = {"backbone": optuna.distributions.CategoricalDistribution(["mobilenetv2"]),
             "mobilenetv2:features": optuna.distributions.CategoricalDistribution(["final", "mid"]),
             "head_lr": optuna.distributions.FloatDistribution(1e-4, 1e-1, log=True)}
    study.add_trial(optuna.trial.create_trial(params=params, distributions={k: dists[k] for k in params},
                                              value=value, state=state, user_attrs=attrs))


def test_a_study_is_mirrored_whole_and_once(store, tmp_path):
    """Each fate, a learning curve by epoch, a nested run left half-logged by a killed process."""
    uri, _ = store
    S = optuna.trial.TrialState
    study = optuna.create_study(direction="maximize")
    curve = [{"phase": "head", "epoch": 1, "loss": 1.2, "val_score": 0.5},
             {"phase": "head", "epoch": 2, "loss": 0.7, "val_score": 0.75},
             {"phase": "fine_tune", "epoch": 1, "loss": 0.4, "val_score": 0.8}]
    p = {"backbone": "mobilenetv2", "mobilenetv2:features": "final", "head_lr": 0.01}
    _trial(study, p, S.COMPLETE, 0.8, strategy="lp_ft", score_se=0.05, seconds=3.5, history=curve)
    _trial(study, p, S.FAIL, fail_reason="ValueError: the loss became nan", strategy="fine_tune_top")
    _trial(study, p, S.FAIL)  # the process ended while it ran
    _trial(study, p, S.PRUNED, history=curve[:1])
    _trial(study, {"backbone": "mobilenetv2"}, S.PRUNED, not_started="a repeat of trial 0", repeat_of=0)
    study.ask()  # running: not finished, not mirrored yet

    Tracker(uri, tmp_path / "run").finish(study)
    client, parents, children = _runs(uri, tmp_path / "run")
    [parent] = parents
    kids = {int(r.data.tags[TAG.TRIAL]): r for r in children[parent.info.run_id]}
    assert sorted(kids) == [0, 1, 2, 3, 4]
    assert {n: (r.data.tags[TAG.FATE], r.info.status) for n, r in kids.items()} == {
        0: ("completed", "FINISHED"), 1: ("failed", "FAILED"), 2: ("interrupted", "FAILED"),
        3: ("pruned", "KILLED"), 4: ("repeat", "KILLED")}
    first = kids[0]
    assert first.data.params == {"backbone": "mobilenetv2", "mobilenetv2.features": "final", "head_lr": "0.01",
                                 "strategy": "lp_ft"}
    assert {k: first.data.metrics[k] for k in ("score", "score_se", "seconds")} == {
        "score": 0.8, "score_se": 0.05, "seconds": 3.5}
    head = client.get_metric_history(first.info.run_id, "head_loss")
    assert sorted((m.step, m.value) for m in head) == [(1, 1.2), (2, 0.7)]
    assert [(m.step, m.value) for m in client.get_metric_history(first.info.run_id, "fine_tune_val_score")] == [(1, 0.8)]
    assert kids[1].data.tags["fail_reason"] == "ValueError: the loss became nan"
    assert parent.info.status == "FINISHED" and parent.data.metrics["trials_complete"] == 1

    # a process killed while it logged trial 6 left its run RUNNING; the next sync logs it again whole
    _trial(study, p, S.COMPLETE, 0.7, strategy="feature_extraction")
    assert study.trials[-1].number == 6  # 5 is still running
    half = client.create_run(parent.info.experiment_id, tags={TAG.PARENT: parent.info.run_id, TAG.TRIAL: "6"})
    Tracker(uri, tmp_path / "run").finish(study)
    Tracker(uri, tmp_path / "run").finish(study)
    _, parents_after, children = _runs(uri, tmp_path / "run")
    assert [r.info.run_id for r in parents_after] == [parent.info.run_id]
    kids_after = {int(r.data.tags[TAG.TRIAL]): r for r in children[parent.info.run_id]}
    assert len(children[parent.info.run_id]) == 6 and sorted(kids_after) == [0, 1, 2, 3, 4, 6]
    assert all(kids_after[n].info.run_id == kids[n].info.run_id for n in kids)  # nothing logged twice
    assert kids_after[6].info.run_id != half.info.run_id and kids_after[6].data.metrics["score"] == 0.7
    assert client.get_run(half.info.run_id).info.lifecycle_stage == "deleted"

    # the run directory emptied and fitted again: another study, so another parent run, whose
    # trial 0 is logged (not taken for the old study's trial 0)
    fresh = optuna.create_study(direction="maximize")
    _trial(fresh, p, S.COMPLETE, 0.6, strategy="feature_extraction")
    Tracker(uri, tmp_path / "run").finish(fresh)
    _, parents, children = _runs(uri, tmp_path / "run")
    [new] = [r for r in parents if r.info.run_id != parent.info.run_id]
    assert [(r.data.tags[TAG.TRIAL], r.data.metrics["score"]) for r in children[new.info.run_id]] == [("0", 0.6)]


class _Warnings(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(record.getMessage())


@pytest.fixture(scope="module")
def fitted(store, real_images):
    """A real fit of two trials while its tracking server is down, then the same command with
    the tracking URI of a real store and one trial more."""
    from automl_tl.demo import write_image_folder

    uri, root = store
    images, labels, names = real_images
    folder = write_image_folder(root / "data", images, labels, names, per_class=12, classes=(0, 1, 7))
    down = f"http://127.0.0.1:{_closed_port()}"
    warned = _Warnings()
    logging.getLogger("automl_tl").addHandler(warned)
    try:
        first = _fit(folder, root / "run", down, trials=2, report=False)
    finally:
        logging.getLogger("automl_tl").removeHandler(warned)
    finished = sum(t.state.is_finished() for t in first.study_.trials)  # the study reads its database live
    again = _fit(folder, root / "run", uri, trials=3)
    return {"first": first, "finished": finished, "down": down, "warned": warned.lines, "again": again, "uri": uri, "root": root}


def _fit(folder, run_dir, uri, **kw):
    params = dict(backbones=["mobilenetv2"], strategies=["feature_extraction"], run_dir=str(run_dir), patience=0,
                  warm_start=False, tracking_uri=uri)
    return AutoTransfer(**(params | kw)).fit(str(folder))


@pytest.mark.slow
def test_a_tracking_server_down_costs_one_warning_and_not_the_fit(fitted):
    first = fitted["first"]
    warned = [line for line in fitted["warned"] if "MLflow" in line]
    assert len(warned) == 1 and f"MLflow tracking to {fitted['down']} stopped, the fit goes on" in warned[0]
    assert (Path(first.run_dir_) / "model.keras").is_file()
    assert fitted["finished"] == 2


@pytest.mark.slow
def test_a_fit_is_one_run_with_a_nested_run_per_trial_logged_once(fitted):
    """The rerun logs the two trials its first run could not and its own new one; the model and the
    report as artifacts; the profile as tags; a further sync of the same study adds nothing."""
    est, uri = fitted["again"], fitted["uri"]
    client, [parent], children = _runs(uri, est.run_dir_)
    kids = {int(r.data.tags[TAG.TRIAL]): r for r in children[parent.info.run_id]}
    trials = {t.number: t for t in est.study_.trials if t.state.is_finished()}
    assert sorted(kids) == sorted(trials) == [0, 1, 2]
    for n, t in trials.items():
        run = kids[n]
        assert run.data.metrics["score"] == pytest.approx(t.value)
        assert run.data.metrics["score_se"] == pytest.approx(t.user_attrs["score_se"])
        assert run.data.metrics["seconds"] == pytest.approx(t.user_attrs["seconds"])
        assert run.data.params["backbone"] == "mobilenetv2" and run.data.tags[TAG.FATE] == "completed"
    tags = parent.data.tags
    assert (tags["modality"], tags["n_items"], tags["n_classes"], tags["balance"]) == ("image", "36", "3", "balanced")
    assert set(tags["classes"].split(", ")) == set(est.classes_) and tags["groups"].startswith("none")
    assert parent.data.params["metric"] == "accuracy" and parent.info.status == "FINISHED"
    assert parent.data.metrics["selected_score"] == pytest.approx(est.selection_.score)
    assert parent.data.metrics["trials_complete"] == 3
    files = {a.path for d in ("", "model", "report") for a in client.list_artifacts(parent.info.run_id, d or None)}
    assert {"model/model.keras", "model/config.json", "model/labels.json", "report/report.html",
            "report/report.md", "report/report.json", "leaderboard.csv", "summary.json"} <= files
    local = client.download_artifacts(parent.info.run_id, "model/model.keras", str(fitted["root"] / "downloaded"))
    assert Path(local).read_bytes() == (Path(est.run_dir_) / "model.keras").read_bytes()  # the delivered model

    Tracker(uri, est.run_dir_).finish(est.study_)  # as the same command's end-of-fit sync does
    _, parents, children = _runs(uri, est.run_dir_)
    assert [r.info.run_id for r in parents] == [parent.info.run_id]
    assert sorted(r.info.run_id for r in children[parent.info.run_id]) == sorted(r.info.run_id for r in kids.values())
