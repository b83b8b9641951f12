"""The README's first command, `automl-tl demo`, end to end on a small image demo: the data is
written, a real fit runs, the report is written, and the `predict` line it suggests works."""

import json
import shlex
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def test_demo_fits_reports_and_its_predict_line_works(tmp_path, capsys):
    data, run = tmp_path / "fashion", tmp_path / "run"
    cli = [sys.executable, "-m", "automl_tl.cli"]
    out = subprocess.run([*cli, "demo", "--out", str(data), "--per-class", "6", "--trials", "2", "--run-dir", str(run)],
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "Traceback" not in out.stderr
    report = json.loads((run / "report.json").read_text())
    assert (run / "report.html").exists() and report["finished"] and report["counts"]["complete"] >= 1
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("try: automl-tl predict "))
    args = shlex.split(line.removeprefix("try: automl-tl "))
    from automl_tl.cli import main  # the line as the command line reads it, in this process

    capsys.readouterr()
    code = main([*args, "--json"])
    said = capsys.readouterr()
    assert code == 0, said.err[-2000:]
    got = json.loads(said.out.strip().splitlines()[-1])
    labels = json.loads((run / "labels.json").read_text())
    assert got["label"] in labels and 0.0 <= got["probability"] <= 1.0
    # the demo's search queues every strategy once after the probes (issue 34: its report is a
    # strategy comparison); with --trials 2 they wait in the study, in the order they would run
    import optuna

    study = optuna.load_study(study_name="automl_tl", storage=f"sqlite:///{run / 'study.db'}")
    toured = [(t.params or t.system_attrs.get("fixed_params") or {}).get("strategy")  # queued: not run yet
              for t in study.get_trials(deepcopy=False) if t.user_attrs.get("strategy_tour")]
    assert toured and len(set(toured)) == len(toured)
    assert set(toured) | {"feature_extraction"} == {"feature_extraction", "fine_tune_top", "fine_tune_all", "lp_ft",
                                                     "layerwise_decay"}
