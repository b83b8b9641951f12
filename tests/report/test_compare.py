"""Cross-run comparison: the empirical strategy table over dataset sizes."""

from __future__ import annotations

import json

import pytest

from automl_tl.errors import ConfigError
from automl_tl.report import build_comparison, write_comparison


def test_compare_three_sizes(make_run_dir, tmp_path):
    small = make_run_dir("small", n_samples=120, winner="feature_extraction", rec_strategy="feature_extraction", seed=1)
    medium = make_run_dir("medium", n_samples=600, winner="fine_tune_all", rec_strategy="fine_tune_top", seed=2)
    large = make_run_dir("large", n_samples=5000, winner="fine_tune_all", rec_strategy="fine_tune_all", seed=3, baseline_score=0.999, se_n=5000)
    out = tmp_path / "cmp"
    paths = write_comparison([large, small, medium], out)  # any order in, sorted by size out
    assert set(paths) == {"html", "md", "json"} and all(p.is_file() and p.parent == out for p in paths.values())
    c = json.loads(paths["json"].read_text())
    assert [r["n_samples"] for r in c["strategy_table"]] == [120, 600, 5000]
    assert [r["winner"] for r in c["strategy_table"]] == ["feature_extraction", "fine_tune_all", "fine_tune_all"]
    assert [r["agrees"] for r in c["strategy_table"]] == [True, False, True]
    assert [d["n_samples"] for d in c["disagreements"]] == [600]
    assert c["disagreements"][0]["recommended"] == "fine_tune_top" and c["disagreements"][0]["winner"] == "fine_tune_all"
    assert c["bands"] == [{"winner": "feature_extraction", "sizes": [120]}, {"winner": "fine_tune_all", "sizes": [600, 5000]}]
    assert any("disagreed" in s and "600 samples" in s for s in c["headline"])
    assert any("baseline beat transfer learning at 5000" in s for s in c["headline"])
    # per-strategy scores equal each run's own leaderboard maxima
    for row in c["runs"]:
        lb = json.loads(json.dumps(__import__("automl_tl.report", fromlist=["build_report"]).build_report(row["run_dir"], importances=False)))
        for s, v in row["strategy_scores"].items():
            mine = [t["score"] for t in lb["leaderboard"] if t["strategy"] == s and t["state"] == "COMPLETE"]
            assert v == (max(mine) if mine else None)
    html = paths["html"].read_text()
    assert "disagreed" in html and "data:image/png;base64," in html
    assert "Content-Security-Policy" in html
    md = paths["md"].read_text()
    assert "DISAGREED" in md and (out / "compare_files" / "compare.png").is_file()


def test_compare_escapes_and_survives_odd_runs(make_run_dir, tmp_path):
    a = make_run_dir("a<script>alert(1)</script>".replace("/", ""), n_samples=100, kind="all_failed")
    b = make_run_dir("b", n_samples=900, kind="interrupted")
    c = build_comparison([a, b, tmp_path / "missing"])
    assert len(c["runs"]) == 2 and len(c["skipped"]) == 1
    paths = write_comparison([a, b], tmp_path / "out")
    html = paths["html"].read_text()
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert any("not finished" in w for w in c["warnings"])


def test_compare_needs_a_run(tmp_path):
    with pytest.raises(ConfigError):
        build_comparison([])
    with pytest.raises(ConfigError):
        build_comparison([tmp_path])
