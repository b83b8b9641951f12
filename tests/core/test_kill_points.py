"""kill -9 at any instant, then the same command: nothing finished is lost, nothing half-done
remains, and every view agrees with the study.

One run directory is killed at each named point in turn (automl_tl.killpoints: the process
SIGKILLs itself there), resumed by the next command, and checked after each kill and at the end.
The trial killed at ``trial:2`` (the process's second trial) is the one a kill -9 in the middle of a trial leaves: recorded as
interrupted (study and leaderboard), retried once, and the retry ran. The backbone is ``pixels``
(no pretrained network to build: each of the eight processes is half as long as with MobileNetV2);
what is tested is the run directory, the same for every backbone.

Each killed command runs in a process of its own, forked from one that has done the imports a
command's process starts with (TensorFlow, Keras, the plugins) and nothing else (tests/conftest.py's
``forked_cli``): a new process that SIGKILLs itself, as a new interpreter would, without six
TensorFlow start-ups (a ``pixels`` fit: about 3 s forked against 10 s and more as a new
interpreter on 2 cores). A new interpreter's start (``python -m automl_tl.cli``) is proved by the
loaded-machine time budget's test (``test_faults_budget_space.py``) and the server's
(tests/deploy/test_serve.py).
"""

import csv
import io
import json
import os
import subprocess

import optuna
import pytest

from automl_tl.schema import LEADERBOARD_COLUMNS, RUN_MARKER, STUDY_NAME, trial_counts, trial_rows

pytestmark = pytest.mark.slow

POINTS = ("start", "trial:2", "model-save", "model-swap", "views:3", "report")


def _argv(folder, run, trials, kill=None):
    argv = ["fit", str(folder), "--trials", str(trials), "--run-dir", str(run), "--backbones", "pixels",
            "--strategies", "feature_extraction", "--patience", "0", "--quiet"]
    if kill not in ("report", None):  # the last, uninterrupted run writes the report
        argv.append("--no-report")
    return argv


@pytest.fixture
def commands(forked_cli):
    """``run(argv, env) -> (exit status, stderr)``: the command in a process forked from one that
    has done a command's imports (tests/conftest.py's ``forked_cli``), ``env`` added to this one's."""
    def run(argv, env):
        done = forked_cli.run(argv, env=dict(os.environ, **env))
        return done.returncode, done.stderr

    return run


def _fit(commands, folder, run, cache, trials, kill):
    return commands(_argv(folder, run, trials, kill), {"AUTOML_TL_CACHE_DIR": str(cache), "AUTOML_TL_TEST_KILL_AT": kill})


def _complete(run):
    if STUDY_NAME not in optuna.get_all_study_names(storage=f"sqlite:///{run / 'study.db'}"):
        return {}  # killed before the study existed
    study = optuna.load_study(study_name=STUDY_NAME, storage=f"sqlite:///{run / 'study.db'}")
    return {t.number: t.value for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"}


def _running(run):
    study = optuna.load_study(study_name=STUDY_NAME, storage=f"sqlite:///{run / 'study.db'}")
    return [t.number for t in study.get_trials(deepcopy=False) if t.state.name == "RUNNING"]


def _leftovers(run):
    dirs = [run, run / "models", run / "report_files"]
    return [f"{d.name}/{p.name}" for d in dirs if d.is_dir() for p in d.iterdir()
            if p.name.startswith(".") and p.name != RUN_MARKER]


def test_kill_9_at_every_point_then_resume(tmp_path, image_folder, monkeypatch, capsys, commands):
    run, cache = tmp_path / "run", tmp_path / "cache"
    kept: dict[int, float] = {}
    victim = None
    for k, point in enumerate(POINTS, start=1):
        status, stderr = _fit(commands, image_folder, run, cache, trials=2 * k, kill=point)
        assert status == -9, f"{point}: not killed there (exit {status}): {stderr[-1500:]}"
        now = _complete(run)
        assert {n: now.get(n) for n in kept} == kept, f"killed at {point}: a finished trial changed"
        if point == "trial:2":  # killed in the middle of its second trial, after the first finished
            [victim] = _running(run)
            assert now, "a trial finished before the one killed"
        kept = now
    # the same command, not killed, in this process (what is tested is the run directory it leaves)
    from automl_tl.cli import main

    monkeypatch.setenv("AUTOML_TL_CACHE_DIR", str(cache))
    monkeypatch.delenv("AUTOML_TL_TEST_KILL_AT", raising=False)
    capsys.readouterr()
    assert main(_argv(image_folder, run, trials=2 * len(POINTS) + 2)) == 0, capsys.readouterr().err[-2000:]

    study = optuna.load_study(study_name=STUDY_NAME, storage=f"sqlite:///{run / 'study.db'}")
    trials = study.get_trials(deepcopy=False)
    # every trial that was COMPLETE stays COMPLETE with the same score; nothing is left RUNNING
    assert {n: v for n, v in _complete(run).items() if n in kept} == kept
    assert not [t.number for t in trials if t.state.name == "RUNNING"]
    # the trial killed at "trial:2" is recorded as interrupted and was retried once, and the retry ran
    assert trials[victim].state.name == "FAIL"
    retries = [t for t in trials if t.user_attrs.get("retry_of") == victim]
    assert len(retries) == 1 and retries[0].state.name in ("COMPLETE", "PRUNED"), [t.number for t in retries]
    assert retries[0].params["backbone"] == trials[victim].params["backbone"]
    rows = {int(r["trial"]): r for r in csv.DictReader(io.StringIO((run / "leaderboard.csv").read_text()))}
    assert rows[victim]["fail_reason"].startswith("interrupted")
    # no temporary files or folders remain; one model folder, the one `current` points to
    assert _leftovers(run) == []
    assert [p.name for p in (run / "models").iterdir()] == [os.readlink(run / "current").split("/")[-1]]
    # every view agrees with the study
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=LEADERBOARD_COLUMNS)
    w.writeheader()
    w.writerows(trial_rows(trials))
    assert (run / "leaderboard.csv").read_bytes().decode() == buf.getvalue()
    summary = json.loads((run / "summary.json").read_text())
    assert summary["counts"] == trial_counts(trials)
    config = json.loads((run / "config.json").read_text())
    assert config["trial"] == summary["delivered"]["trial"] == study.user_attrs["delivered"]["trial"]
    assert (run / "model.keras").resolve().parent == (run / "current").resolve()
    # the report written at the end of this real fit is about this study
    report = json.loads((run / "report.json").read_text())
    assert (run / "report.html").exists() and report["finished"]
    assert report["counts"]["total"] == len(trials)
    assert report["counts"]["complete"] == sum(t.state.name == "COMPLETE" for t in trials)


def test_leftovers_of_the_dead_go_a_live_process_files_stay(tmp_path):
    from automl_tl.artifacts import remove_leftovers

    live = subprocess.Popen(["sleep", "60"])
    dead = subprocess.Popen(["true"])
    dead.wait()
    try:
        run = tmp_path / "run"
        (run / "models" / f"trial-1.{dead.pid}.ab").mkdir(parents=True)  # current: kept
        (run / "models" / f"trial-0.{dead.pid}.cd").mkdir()  # replaced by a dead process: goes
        (run / "models" / f"trial-2.{live.pid}.ef").mkdir()  # a live one is about to point to it: stays
        (run / "models" / f".staging.{dead.pid}.gh").mkdir()
        (run / "models" / f".staging.{live.pid}.ij").mkdir()
        (run / f".summary.json.{dead.pid}.kl").write_text("half")
        (run / f".summary.json.{live.pid}.mn").write_text("being written")
        (run / ".mine").write_text("a name this program never makes")
        (run / "notes.txt").write_text("the user's")
        os.symlink(f"models/trial-1.{dead.pid}.ab", run / "current")
        removed = remove_leftovers(run)
        assert sorted(removed) == sorted([f"trial-0.{dead.pid}.cd", f".staging.{dead.pid}.gh", f".summary.json.{dead.pid}.kl"])
        assert sorted(p.name for p in (run / "models").iterdir()) == sorted(
            [f"trial-1.{dead.pid}.ab", f"trial-2.{live.pid}.ef", f".staging.{live.pid}.ij"])
        assert (run / ".mine").exists() and (run / "notes.txt").exists() and (run / f".summary.json.{live.pid}.mn").exists()
    finally:
        live.kill()
