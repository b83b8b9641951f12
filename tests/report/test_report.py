"""Run reports: numbers, escaping, degenerate runs (all failed, single trial, interrupted, missing files)."""

from __future__ import annotations

import csv
import json
import math
import re

import pytest

from automl_tl.errors import NotFittedError
from automl_tl.report import build_report, write_report
from automl_tl.report._fmt import fmt_score

from .conftest import XSS_CLASS, XSS_LABEL, write_rows


SAFE_TAGS = {"html", "head", "meta", "title", "style", "body", "main", "h1", "h2", "h3", "div", "span", "code", "nav", "a",
             "section", "ul", "li", "p", "table", "thead", "tbody", "tr", "th", "td", "b", "br", "img", "details", "summary"}


def _tags(html):
    from html.parser import HTMLParser

    found = []

    class P(HTMLParser):
        def handle_starttag(self, tag, attrs):
            found.append((tag, attrs))

    P().feed(html)
    return found


def _csv_rows(run):
    with (run / "leaderboard.csv").open(newline="") as fh:
        return list(csv.DictReader(fh))


def _f(s):
    return float(s) if s not in ("", None) else None


def test_numbers_equal_leaderboard_csv(make_run_dir):
    run = make_run_dir("r")
    paths = write_report(run)
    assert set(paths) == {"html", "md", "json"}
    assert all(p.is_file() and p.parent == run for p in paths.values())
    report = json.loads(paths["json"].read_text())
    rows = _csv_rows(run)
    by_trial = {r["trial"]: r for r in report["leaderboard"]}
    assert len(by_trial) == len(rows) == report["counts"]["total"]
    for row in rows:
        got = by_trial[int(row["trial"])]
        assert got["state"] == row["state"]
        assert got["backbone"] == row["backbone"] and got["strategy"] == row["strategy"]
        assert got["score"] == _f(row["score"])
        assert got["seconds"] == _f(row["seconds"])
        assert got["head_lr"] == _f(row["head_lr"])
        assert got["recommended"] == (row["recommended"] == "True")
    complete = [r for r in rows if r["state"] == "COMPLETE"]
    best = max(complete, key=lambda r: float(r["score"]))
    assert report["best"]["trial"] == int(best["trial"]) and report["best"]["score"] == float(best["score"])
    rec = [r for r in complete if r["recommended"] == "True"]
    assert report["regret"] == pytest.approx(float(best["score"]) - max(float(r["score"]) for r in rec))
    assert report["counts"]["complete"] == len(complete)
    assert report["counts"]["failed"] == sum(r["state"] == "FAIL" for r in rows)
    assert report["total_seconds"] == pytest.approx(sum(_f(r["seconds"]) or 0 for r in rows))
    # the HTML shows the same numbers
    html = paths["html"].read_text()
    for row in complete:
        assert fmt_score(float(row["score"])) in html
    assert f"{report['regret'] / report['point']:.1f} points" in html
    # matrix: best score per cell = max over that cell's complete rows
    for cell in report["matrix"]["cells"]:
        mine = [float(r["score"]) for r in complete if r["strategy"] == cell["strategy"] and r["backbone"] == cell["backbone"]]
        assert cell["best_score"] == (max(mine) if mine else None)
        assert cell["n_trials"] == sum(r["strategy"] == cell["strategy"] and r["backbone"] == cell["backbone"] for r in rows)
    # report.json is what build_report returns (apart from the timestamp)
    again = build_report(run)
    again["generated_at"] = report["generated_at"]
    assert again == report
    # a recommended strategy that lost must be flagged
    assert report["winner_strategy"] == "fine_tune_top" and report["strategy_held"] is False
    assert "did not hold" in html
    # every number is JSON-clean (no NaN)
    json.loads(paths["json"].read_text(), parse_constant=lambda c: pytest.fail(f"non-finite {c} in report.json"))


def test_pareto_front_is_exactly_the_non_dominated_trials(make_run_dir):
    report = build_report(make_run_dir("r", seed=3))
    pts = [r for r in report["leaderboard"] if r["state"] == "COMPLETE"]

    def dominated(a):
        return any(
            (b["seconds"] <= a["seconds"] and b["score"] >= a["score"]) and (b["seconds"] < a["seconds"] or b["score"] > a["score"])
            for b in pts
        )

    assert sorted(report["pareto"]["front"]) == sorted(r["trial"] for r in pts if not dominated(r))
    assert report["best"]["trial"] in report["pareto"]["front"]


def test_cheaper_config_within_one_point_is_named(make_run_dir):
    run = make_run_dir("r")
    rows = _csv_rows(run)
    best = max((r for r in rows if r["state"] == "COMPLETE"), key=lambda r: float(r["score"]))
    cheap = next(r for r in rows if r["state"] == "COMPLETE" and r["strategy"] == "feature_extraction")
    cheap["score"] = str(round(float(best["score"]) - 0.004, 6))
    cheap["seconds"] = "5.0"
    write_rows(run, rows)
    report = build_report(run)
    alt = report["pareto"]["cheaper_alternative"]
    assert alt["trial"] == int(cheap["trial"]) and alt["seconds"] == 5.0
    assert f"Trial {cheap['trial']} " in report["pareto"]["sentence"] and "within one point" in report["pareto"]["sentence"]


def test_xss_payloads_are_text_everywhere(make_run_dir):
    classes = [XSS_CLASS, XSS_LABEL, "a&b \"quoted\"", "$x^2$ price"]
    backbones = ['"><svg onload=alert(3)>', "effnet"]
    run = make_run_dir("run<img src=y onerror=alert(2)>", classes=classes, backbones=backbones)
    summary = json.loads((run / "summary.json").read_text())
    summary["recommendation"]["reason"] = "<b onmouseover=alert(4)>bold</b>"
    summary["profile"]["note"] = XSS_LABEL
    (run / "summary.json").write_text(json.dumps(summary))
    paths = write_report(run)
    html = paths["html"].read_text()
    markdown = paths["md"].read_text()
    report = json.loads(paths["json"].read_text())
    for payload in (XSS_CLASS, XSS_LABEL, '"><svg onload=alert(3)>', "<img src=y onerror=alert(2)>", "<b onmouseover=alert(4)>"):
        assert payload not in html, payload
        assert payload not in markdown, payload
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script" not in html.lower()
    assert re.findall(r"<img\b[^>]*\bsrc=\"(?!data:image/png;base64,)", html) == []
    tags = _tags(html)
    assert not [(t, a) for t, attrs in tags for a, _ in attrs if a.startswith("on")]  # no event handlers at all
    assert {t for t, _ in tags} <= SAFE_TAGS, {t for t, _ in tags} - SAFE_TAGS
    assert not [a for t, attrs in tags if t == "img" for a, v in attrs if a == "src" and not v.startswith("data:image/png;base64,")]
    # class names reach the per-class table unchanged in report.json
    assert set(classes) <= set(report["per_class"]["labels"])
    # '$' in a class name must not break matplotlib (mathtext) -> no plot failures
    assert not [w for w in report["warnings"] if w.startswith("plot")], report["warnings"]
    assert "confusion" in {p.stem for p in (run / "report_files").glob("*.png")}


def test_self_contained_html(make_run_dir):
    html = write_report(make_run_dir("r"))["html"].read_text()
    assert "Content-Security-Policy" in html
    assert not re.search(r"""(src|href)=["']?(https?:|//|file:)""", html)
    assert "@import" not in html and "url(" not in html
    assert html.count("data:image/png;base64,") >= 4  # pareto, history, curves, importances, confusion


def test_markdown_twin_references_existing_images(make_run_dir):
    run = make_run_dir("r")
    md = write_report(run)["md"].read_text()
    refs = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert refs and all((run / r).is_file() for r in refs)
    assert "## Leaderboard" in md and "| trial |" not in md.splitlines()[0]


def test_all_failed_run_says_so_with_reasons(make_run_dir):
    run = make_run_dir("r", kind="all_failed")
    paths = write_report(run)
    report = json.loads(paths["json"].read_text())
    html = paths["html"].read_text()
    assert report["best"] is None and report["counts"]["failed"] == report["counts"]["total"] == 3
    assert any(s.startswith("Every trial failed (3)") for s in report["headline"])
    assert "Every trial failed" in html
    for reason in ("OOM when allocating", "loss became NaN", "no weights for resnet50"):
        assert reason in html
    assert report["importances"]["available"] is False
    assert report["per_class"]["available"] is False


def test_single_trial_run(make_run_dir):
    run = make_run_dir("r", kind="single")
    paths = write_report(run)
    report = json.loads(paths["json"].read_text())
    assert report["counts"]["total"] == 1 and report["best"]["score"] == 0.8125
    # one trial of the recommended strategy: nothing to compare the table with, so not tested (was "held")
    assert report["regret"] == 0 and report["strategy_held"] is None
    assert report["strategy_verdict"]["verdict"] == "not tested"
    assert any("strategy table was not tested" in (h or "") for h in report["headline"])
    assert report["importances"]["available"] is False and "2 complete trials" in report["importances"]["reason"]
    assert report["pareto"]["front"] == [0]
    assert "regret 0" in paths["html"].read_text()


def test_interrupted_run(make_run_dir):
    run = make_run_dir("r", kind="interrupted", study_only_running=True)
    paths = write_report(run)
    report = json.loads(paths["json"].read_text())
    html = paths["html"].read_text()
    assert report["finished"] is False
    assert report["counts"]["running"] == 2  # one in leaderboard.csv, one only in study.db
    assert report["counts"]["waiting"] == 1 and report["counts"]["total"] == 7
    assert "?" not in report["matrix"]["strategies"]
    assert "not finished" in html and "RUNNING" in html
    assert report["best"] is not None


def test_missing_optional_files(make_run_dir):
    run = make_run_dir("r", baseline_score=None, with_predictions=False, with_study=False)
    for name in ("split.json", "config.json", "labels.json"):
        (run / name).unlink()
    paths = write_report(run)
    report = json.loads(paths["json"].read_text())
    html = paths["html"].read_text()
    assert report["baseline"] is None and "No classical baseline in this run" in html
    assert report["per_class"]["available"] is False and "val_predictions.csv is missing" in html
    assert report["importances"]["available"] is False and "no study.db" in report["importances"]["reason"]
    assert report["best"] is not None


def test_only_trial_files_and_corrupt_summary(make_run_dir):
    run = make_run_dir("r", with_study=False, legacy=True)  # runs before schema 2 kept trials/N.json
    (run / "leaderboard.csv").unlink()
    (run / "summary.json").write_text("{not json")
    report = build_report(run)
    assert report["counts"]["total"] == 12
    assert report["learning_curves"]
    assert any("summary.json" in w for w in report["warnings"])
    write_report(run)


def test_baseline_beating_transfer_learning_is_reported(make_run_dir):
    run = make_run_dir("r", baseline_score=0.99, se_n=5000)  # tight intervals: the gap is beyond the noise
    paths = write_report(run)
    report = json.loads(paths["json"].read_text())
    assert report["baseline"]["beat_transfer"] is True
    assert report["baseline"]["delta"] == pytest.approx(report["best"]["score"] - 0.99)
    assert "baseline beat transfer learning" in paths["html"].read_text()


def test_not_a_run_dir(tmp_path):
    with pytest.raises(NotFittedError):
        build_report(tmp_path)
    with pytest.raises(NotFittedError):
        build_report(tmp_path / "nope")


def test_writes_are_atomic_and_repeatable(make_run_dir, tmp_path):
    run = make_run_dir("r")
    write_report(run)
    out = tmp_path / "elsewhere"
    paths = write_report(run, out_dir=out)
    assert all(p.parent == out for p in paths.values())
    for d in (run, out, out / "report_files"):
        assert not [p for p in d.iterdir() if p.name.endswith(".tmp")]


def _study(run):
    import optuna

    return optuna.load_study(study_name="automl_tl", storage=f"sqlite:///{run / 'study.db'}")


def test_learning_curves_are_best_per_strategy(make_run_dir):
    run = make_run_dir("r")
    report = build_report(run)
    rows = _csv_rows(run)
    for c in report["learning_curves"]:
        mine = [r for r in rows if r["strategy"] == c["strategy"] and r["state"] == "COMPLETE"]
        assert c["trial"] == int(max(mine, key=lambda r: float(r["score"]))["trial"])
        hist = _study(run).trials[c["trial"]].user_attrs["history"]
        assert [h["val_score"] for h in c["history"]] == [h["val_score"] for h in hist]
    assert math.isclose(sum(report["importances"]["values"].values()), 1.0, rel_tol=1e-6)


def test_run_written_by_the_engine(tmp_path):
    """A small real run (automl-tl fit, 8 trials of mobilenetv2 and the pixels baseline on 96
    Fashion-MNIST images, written by scripts/regen_report_fixture.py; the model file left out): the
    report reads the engine's actual files, not only our fabricated ones."""
    import shutil
    from pathlib import Path

    run = tmp_path / "engine_run"
    shutil.copytree(Path(__file__).parent / "data" / "engine_run", run)
    paths = write_report(run)
    report = json.loads(paths["json"].read_text())
    rows = _csv_rows(run)
    assert report["counts"]["total"] == len(rows) and not report["warnings"]
    for row in rows:
        got = next(r for r in report["leaderboard"] if r["trial"] == int(row["trial"]))
        assert (got["state"], got["strategy"], got["score"], got["seconds"]) == (row["state"], row["strategy"], _f(row["score"]), _f(row["seconds"]))
    assert report["recommended"]["trials"] == [int(r["trial"]) for r in rows if r["recommended"] == "True"]
    assert report["importances"]["available"] and report["learning_curves"] and report["per_class"]["available"]
    assert report["n_samples"] == json.loads((run / "summary.json").read_text())["profile"]["n_samples"]
    assert report["baseline"]["score"] == json.loads((run / "summary.json").read_text())["baseline"]["score"]


def test_a_tie_with_the_recommended_strategy_counts_as_held(make_run_dir):
    run = make_run_dir("r", rec_strategy="fine_tune_all")
    rows = _csv_rows(run)
    best = max((r for r in rows if r["state"] == "COMPLETE"), key=lambda r: float(r["score"]))
    assert best["strategy"] == "fine_tune_top"
    other = next(r for r in rows if r["state"] == "COMPLETE" and r["strategy"] == "fine_tune_all")
    other["score"] = best["score"]
    write_rows(run, rows)
    report = build_report(run)
    # in the order the run first tried them (trial 0 is the recommended one): it records no strategy's rank
    assert report["tied_strategies"] == ["fine_tune_all", "fine_tune_top"]
    assert report["strategy_held"] is True
    assert any("tied with the winner" in s or "tied with" in s for s in report["headline"])


def test_probe_table_shows_the_proxies_and_their_rank_agreement(tmp_path):
    """The probe table has LogME and kNN columns, and the report says each measure's Kendall tau
    against the search (or why there is none)."""
    import shutil
    from pathlib import Path

    from automl_tl.transferability import transferability_summary

    run = tmp_path / "engine_run"
    shutil.copytree(Path(__file__).parent / "data" / "engine_run", run)
    summary = json.loads((run / "summary.json").read_text())
    summary["probe"] = [
        {"backbone": "mobilenetv2", "options": {}, "score": 0.8, "se": 0.03, "C": 0.1, "dim": 1280, "classical": False,
         "seconds": 2.0, "proxies": {"logme": -0.61234, "knn": 0.75}},
        {"backbone": "vgg16", "options": {}, "score": 0.7, "se": 0.03, "C": 0.1, "dim": 512, "classical": False,
         "seconds": 3.0, "proxies": {"logme": -0.9, "knn": 0.7}},
        {"backbone": "pixels", "options": {}, "score": 0.6, "se": 0.04, "C": 1.0, "dim": 1200, "classical": True,
         "seconds": 0.5, "proxies": {"logme": -0.7, "knn": 0.5}}]
    summary["transferability"] = transferability_summary(summary["probe"], {"mobilenetv2": 0.85, "vgg16": 0.72, "pixels": 0.61})
    assert set(summary["transferability"]["by_candidate"]) == {"mobilenetv2", "vgg16", "pixels"}
    (run / "summary.json").write_text(json.dumps(summary))
    md = write_report(run)["md"].read_text()
    assert "| LogME | kNN |" in md and "-0.612" in md
    assert "linear probe τ = +1.00 (n = 3)" in md and "LogME τ = +0.33 (n = 3)" in md

    summary["transferability"] = transferability_summary(summary["probe"][:1], {"mobilenetv2": 0.85})
    (run / "summary.json").write_text(json.dumps(summary))
    md = write_report(run)["md"].read_text()
    assert "No rank agreement" in md and "needs 3" in md
