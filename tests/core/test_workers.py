"""Many processes, one search: worker processes share a study on a real PostgreSQL server.

The server is the one `.ci/run` starts (``AUTOML_TL_TEST_POSTGRES``), else a throwaway cluster
this module starts itself (scripts/pg-throwaway.sh; needs Debian's postgresql). Each test gets
its own database. The backbone is ``pixels``: no pretrained network to build in each of the five
worker processes; what is tested is the shared study, the same for every backbone. Each worker is
a process of its own, forked from one that has done the command's imports (tests/conftest.py's
``forked_cli``): real processes, killed and run side by side, without TensorFlow's start-up each.
"""

import json
import os
import subprocess
import uuid
from pathlib import Path

import optuna
import pytest

from automl_tl.schema import ATTR, STUDY_NAME, retry_links
from automl_tl.search import storage_url
from automl_tl.testing import missing

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def postgres_server():
    url, started = os.environ.get("AUTOML_TL_TEST_POSTGRES"), None
    if not url:
        out = subprocess.run(["bash", str(REPO / "scripts" / "pg-throwaway.sh"), "start"], capture_output=True,
                             text=True, timeout=180)
        if out.returncode != 0:
            missing(f"no PostgreSQL server ({out.stderr.strip()}); .ci/run starts one")
        env = dict(line.removeprefix("export ").split("=", 1) for line in out.stdout.splitlines() if "=" in line)
        url, started = env["AUTOML_TL_TEST_POSTGRES"], env["AUTOML_TL_PG_DIR"]
    yield url
    if started:
        subprocess.run(["bash", str(REPO / "scripts" / "pg-throwaway.sh"), "stop", started], timeout=120)


@pytest.fixture
def postgres_url(postgres_server):
    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return postgres_server.rsplit("/", 1)[0] + "/" + name


def _worker(forked_cli, folder, run, url, cache, trials, kill=None, extra=()):
    """A worker: ``automl-tl fit --storage URL`` in a process of its own, forked from one that has
    done the command's imports (tests/conftest.py's ``forked_cli``)."""
    env = dict(os.environ, AUTOML_TL_CACHE_DIR=str(cache))
    env.pop("AUTOML_TL_TEST_KILL_AT", None)
    if kill:
        env["AUTOML_TL_TEST_KILL_AT"] = kill
    return forked_cli.start(["fit", str(folder), "--storage", url, "--trials", str(trials), "--run-dir", str(run),
                             "--backbones", "pixels", "--strategies", "feature_extraction", "--patience", "0",
                             "--quiet", "--no-report", *extra], env=env)


@pytest.mark.slow
def test_three_workers_one_budget_a_kill_9_retried_same_views(tmp_path, image_folder, postgres_url, capsys,
                                                              forked_cli):
    budget, cache = 9, tmp_path / "cache"
    # a first worker is killed with -9 in its first trial (the recommendation), left RUNNING
    victim = _worker(forked_cli, image_folder, tmp_path / "victim", postgres_url, cache, budget, kill="trial")
    assert victim.wait(timeout=600) == -9, victim.communicate()[1][-2000:]
    # three workers share the rest of the search
    procs = [_worker(forked_cli, image_folder, tmp_path / f"w{i}", postgres_url, cache, budget) for i in range(3)]
    errs = [p.communicate(timeout=900)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], "\n".join(e[-1500:] for e in errs)

    study = optuna.load_study(study_name=STUDY_NAME, storage=storage_url(tmp_path, postgres_url))
    trials = study.get_trials(deepcopy=False)
    retried = retry_links(trials)
    ran = [t for t in trials if t.state.name != "WAITING" and not t.user_attrs.get(ATTR.NOT_STARTED)]
    assert not [t.number for t in trials if t.state.name == "RUNNING"]
    # the trial budget is global: exactly `budget` trials count, whoever ran them
    assert len([t for t in ran if t.number not in retried]) == budget
    assert len({t.user_attrs[ATTR.WORKER]["pid"] for t in ran}) >= 2  # the work was shared
    # the killed worker's trial failed as interrupted and another worker retried it, once
    t0 = trials[0]
    assert t0.state.name == "FAIL" and t0.user_attrs[ATTR.WORKER]["pid"] == victim.pid
    retry = trials[retried[0]]
    assert retry.params == t0.params
    twin = retry.user_attrs.get(ATTR.REPEAT_OF)
    if twin is None:  # the retry ran
        assert retry.state.name == "COMPLETE"
    else:
        # or another worker had proposed the same linear probe (deterministic) in the moment
        # between the kill's discovery and the retry's queueing, and ran it: its score is the
        # retry's, recorded as a repeat, not computed twice (search/admission.py, _repeat_of).
        # Timing: seen in 1 of 3 fresh-clone CI runs
        assert retry.state.name == "PRUNED" and retry.user_attrs.get(ATTR.NOT_STARTED)
        assert trials[twin].state.name == "COMPLETE" and trials[twin].params == t0.params
    assert retry.user_attrs[ATTR.WORKER]["pid"] != victim.pid
    # the recommendation was queued once, and no configuration ran twice (but for that retry, or
    # the twin that ran in its place: the killed trial's configuration, beside the killed trial)
    assert [t.number for t in trials if t.user_attrs.get(ATTR.RECOMMENDED) and t.user_attrs.get(ATTR.RETRY_OF) is None] == [0]
    configs = [json.dumps(t.params, sort_keys=True) for t in ran
               if t.user_attrs.get(ATTR.RETRY_OF) is None and t.number != twin]
    assert len(configs) == len(set(configs)), [(t.number, t.state.name, t.params, {k: t.user_attrs.get(k) for k in (
        ATTR.RETRY_OF, ATTR.REPEAT_OF, ATTR.NOT_STARTED)}) for t in trials]
    # any machine rebuilds the same views from the study alone, a new folder included (the command
    # in this process: what it reads is the study, not the process that wrote it)
    from automl_tl.cli import main

    views = []
    for run in [tmp_path / "w0", tmp_path / "w2", tmp_path / "elsewhere"]:
        assert main(["report", str(run), "--storage", postgres_url]) == 0, capsys.readouterr().err[-2000:]
        summary = json.loads((run / "summary.json").read_text())
        views.append(((run / "leaderboard.csv").read_text(), summary["counts"], summary.get("recommendation")))
    assert views[0] == views[1] == views[2]
    assert views[0][1]["running"] == 0 and (tmp_path / "elsewhere" / "report.html").exists()
    # `compare` on real runs
    assert main(["compare", str(tmp_path / "w0"), str(tmp_path / "w1"), "--out", str(tmp_path / "cmp")]) == 0, \
        capsys.readouterr().err[-2000:]
    assert any((tmp_path / "cmp").iterdir())
    # a worker of another task (here another --seed, so another split) is refused: exit 2, no trial
    capsys.readouterr()
    code = main(["fit", str(image_folder), "--storage", postgres_url, "--trials", str(budget + 3), "--run-dir",
                 str(tmp_path / "other"), "--backbones", "pixels", "--strategies", "feature_extraction",
                 "--patience", "0", "--quiet", "--no-report", "--seed", "5"])
    err = capsys.readouterr().err
    assert code == 2 and "--seed" in err and "Traceback" not in err, err[-1500:]
    assert len(optuna.load_study(study_name=STUDY_NAME, storage=storage_url(tmp_path, postgres_url)).trials) == len(trials)


def test_workers_started_together_on_an_empty_database_all_open_it(postgres_url):
    """Optuna creates its tables by checking, then creating: six openings of one empty database at
    the same moment raced (``UniqueViolation`` on its version row, ``DuplicateTable``) and all but
    one were refused as a bad storage URL, every time. Each now opens the tables another made."""
    import threading

    from automl_tl.search.storage import open_storage

    url, errors = storage_url(Path("."), postgres_url), []
    start = threading.Barrier(6)

    def worker():
        start.wait()
        try:
            open_storage(url, on_stale=None).engine.dispose()
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
