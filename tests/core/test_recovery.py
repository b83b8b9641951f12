"""A real process interrupted (Ctrl-C) in the middle of a trial: exit 130 with one line, the trial
recorded as interrupted and queued again. (A kill -9 in the middle of a trial, then the same command:
tests/core/test_kill_points.py, its ``trial:2`` point.)"""

import os
import signal
import time

import optuna
import pytest

pytestmark = pytest.mark.slow


def _running_trial(db):
    """The number of the trial the child is running (one with a strategy: a real trial), or None.

    Read through a read-only SQLite connection, never through ``optuna.load_study``: loading a
    study creates the schema when it is missing, and doing that while the child creates it too
    made the child fail once (exit 2 in a fresh-clone CI run)."""
    import sqlite3

    if not db.exists():
        return None
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1.0)
        try:
            row = con.execute(
                "SELECT t.number FROM trials t JOIN trial_user_attributes a ON a.trial_id = t.trial_id "
                "WHERE t.state = 'RUNNING' AND a.key = 'strategy' ORDER BY t.number LIMIT 1").fetchone()
        finally:
            con.close()
    except sqlite3.Error:  # the child has not created the tables yet, or holds a write lock
        return None
    return row[0] if row else None


def test_ctrl_c_mid_trial_exits_130_with_one_line(tmp_path, image_folder, forked_cli):
    """The command runs in a process of its own (tests/conftest.py's ``forked_cli``), with Python's
    own Ctrl-C handler, as a new interpreter has it."""
    run = tmp_path / "run"
    env = dict(os.environ, AUTOML_TL_CACHE_DIR=str(tmp_path / "cache"))
    argv = ["fit", str(image_folder), "--trials", "3", "--run-dir", str(run), "--backbones", "mobilenetv2",
            "--strategies", "fine_tune_top", "--patience", "0", "--quiet", "--no-report"]
    proc = forked_cli.start(argv, env=env)
    deadline, victim = time.time() + 400, None
    while time.time() < deadline and proc.poll() is None and victim is None:
        victim = _running_trial(run / "study.db")
        time.sleep(0.5)
    assert proc.poll() is None and victim is not None
    time.sleep(2)  # inside the trial's training
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err and "interrupted" in err
    study = optuna.load_study(study_name="automl_tl", storage=f"sqlite:///{run / 'study.db'}")
    t = study.trials[victim]
    assert t.state.name == "FAIL" and t.user_attrs["fail_reason"].startswith("interrupted")
    assert [x.number for x in study.trials if x.user_attrs.get("retry_of") == victim]  # queued again
