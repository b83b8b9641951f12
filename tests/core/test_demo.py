"""The README's first command, `automl-tl demo`, end to end on a small image demo: the data is
written, a real fit runs, the report is written, and the `predict` line it suggests works."""

import json
import shlex

import pytest

pytestmark = pytest.mark.slow


def test_demo_fits_reports_and_its_predict_line_works(tmp_path, capsys):
    """Both commands run in this process (the entry point a new interpreter runs is proved by the
    loaded-machine time budget's test and the server's; the commands in processes of their own by
    the kill points, the workers and predict, forked after the command line's imports)."""
    from automl_tl.cli import main

    data, run = tmp_path / "fashion", tmp_path / "run"
    capsys.readouterr()
    code = main(["demo", "--out", str(data), "--per-class", "6", "--trials", "2", "--run-dir", str(run)])
    out = capsys.readouterr()
    assert code == 0, out.err[-2000:]
    assert "Traceback" not in out.err
    report = json.loads((run / "report.json").read_text())
    assert (run / "report.html").exists() and report["finished"] and report["counts"]["complete"] >= 1
    line = next(ln for ln in out.out.splitlines() if ln.startswith("try: automl-tl predict "))
    args = shlex.split(line.removeprefix("try: automl-tl "))
    code = main([*args, "--json"])  # the line as the command line reads it
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
