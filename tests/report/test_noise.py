"""Verdicts that know about noise (a gap within one standard error is a tie), and what was delivered and why."""

from __future__ import annotations

import csv
import json

from automl_tl.report import build_comparison, build_report, write_comparison, write_report

from .conftest import XSS_CLASS, XSS_LABEL, write_rows


def _rows(run):
    with (run / "leaderboard.csv").open(newline="") as fh:
        return list(csv.DictReader(fh))


def _write_rows(run, rows):
    write_rows(run, rows)


def _edit_summary(run, fn):
    summary = json.loads((run / "summary.json").read_text())
    fn(summary)
    (run / "summary.json").write_text(json.dumps(summary))


def _complete(rows, strategy=None):
    return [r for r in rows if r["state"] == "COMPLETE" and (strategy is None or r["strategy"] == strategy)]


def _recommended_strategy_behind(run, gap, se):
    """The recommended strategy (fine_tune_all) finishes ``gap`` behind the winner (fine_tune_top), both with standard error ``se``."""
    rows = _rows(run)
    best = max(_complete(rows), key=lambda r: float(r["score"]))
    assert best["strategy"] == "fine_tune_top"
    rec = max(_complete(rows, "fine_tune_all"), key=lambda r: float(r["score"]))
    rec["score"] = str(round(float(best["score"]) - gap, 6))
    best["score_se"] = rec["score_se"] = str(se)
    _write_rows(run, rows)
    return int(best["trial"]), int(rec["trial"])


def test_a_gap_within_one_standard_error_is_a_tie_and_the_table_held(make_run_dir):
    run = make_run_dir("r", rec_strategy="fine_tune_all")
    _, rec_trial = _recommended_strategy_behind(run, gap=0.012, se=0.03)  # one image of 80: the docs/example-report case
    paths = write_report(run)
    report = json.loads(paths["json"].read_text())
    v = report["strategy_verdict"]
    assert report["winner_strategy"] == "fine_tune_top"
    assert report["strategy_held"] is True and v["within_noise"] is True
    assert v["verdict"] == "held (a tie within noise)" and v["rec_best_trial"] == rec_trial
    assert abs(v["gap"] - 0.012) < 1e-9 and v["se"] == 0.03
    assert "fine_tune_all" in report["tied_strategies"]
    html, md = paths["html"].read_text(), paths["md"].read_text()
    for text in (html, md):
        assert "held (a tie within noise)" in text
        assert "did not hold" not in text
        assert "1.2 points below the winner fine_tune_top" in text and "within one standard error (3.0 points)" in text
    assert next(s for s in report["strategies"] if s["strategy"] == "fine_tune_all")["tied_with_best"] is True


def test_a_gap_beyond_one_standard_error_did_not_hold(make_run_dir):
    run = make_run_dir("r", rec_strategy="fine_tune_all")
    _recommended_strategy_behind(run, gap=0.012, se=0.004)
    paths = write_report(run)
    report = json.loads(paths["json"].read_text())
    assert report["strategy_held"] is False and report["strategy_verdict"]["verdict"] == "did not hold"
    assert "fine_tune_all" not in report["tied_strategies"]
    sentence = next(s for s in report["headline"] if s.startswith("The strategy table did"))
    assert "did not hold" in sentence and "1.2 points lower, beyond one standard error (0.4 points)" in sentence
    assert "0.0040" in sentence  # the intervals are in the sentence
    assert "did not hold" in paths["html"].read_text() and "tie within noise" not in paths["html"].read_text()


def test_a_tie_the_selection_found_on_shared_items_is_a_tie_in_the_verdicts(make_run_dir):
    """A fine-tuned winner scored on a small hold-out against a cross-validated probe: their plain
    gap is beyond the band, but the run's selection compared them on the items both were scored on
    and found them tied. The verdicts follow the selection, never contradict it."""
    run = make_run_dir("r", rec_strategy="fine_tune_all")
    best_trial, rec_trial = _recommended_strategy_behind(run, gap=0.012, se=0.004)
    rows = _rows(run)
    best = next(r for r in rows if int(r["trial"]) == best_trial)
    _edit_summary(run, lambda s: s.update(selection={
        "trial": rec_trial, "score": float(best["score"]) - 0.012, "se": 0.004, "top_trial": best_trial,
        "top_score": float(best["score"]), "top_se": 0.004, "tied": [best_trial, rec_trial],
        "rule": "one standard error (paired, on the items both trials were scored on)", "reason": "x"}))
    paths = write_report(run)
    report = json.loads(paths["json"].read_text())
    v = report["strategy_verdict"]
    assert report["strategy_held"] is True and v["within_noise"] is True and v["paired"] is True
    assert "fine_tune_all" in report["tied_strategies"]
    for text in (paths["html"].read_text(), paths["md"].read_text()):
        assert "did not hold" not in text and "compared on the items both were scored on" in text
    comparison = build_comparison([run])
    assert not any("beyond" in s for s in comparison["headline"])
    # a tie the selection found against another top score says nothing about this one
    _edit_summary(run, lambda s: s["selection"].update(top_score=0.5))
    assert build_report(run)["strategy_held"] is False


def test_without_standard_errors_the_selections_band_or_equality_decides(make_run_dir):
    run = make_run_dir("r", rec_strategy="fine_tune_all", legacy=True)
    rows = _rows(run)
    best = max(_complete(rows), key=lambda r: float(r["score"]))
    rec = max(_complete(rows, "fine_tune_all"), key=lambda r: float(r["score"]))
    rec["score"] = str(round(float(best["score"]) - 0.012, 6))
    _write_rows(run, rows)
    assert build_report(run)["strategy_held"] is False  # an old run: no SE, only equal scores tie
    _edit_summary(run, lambda s: s.update(selection={"trial": int(best["trial"]), "score": float(best["score"]), "se": 0.03, "top_trial": int(best["trial"]),
                                                      "top_score": float(best["score"]), "top_se": 0.03, "tied": [], "rule": "one standard error", "reason": "x"}))
    report = build_report(run)
    assert report["strategy_held"] is True and report["strategy_verdict"]["within_noise"] is True and report["strategy_verdict"]["se"] == 0.03


def test_a_baseline_within_one_standard_error_is_not_called_a_win(make_run_dir):
    run = make_run_dir("r")
    best = max(_complete(_rows(run)), key=lambda r: float(r["score"]))
    _edit_summary(run, lambda s: s["baseline"].update(score=round(float(best["score"]) + 0.01, 6), score_se=0.03))
    paths = write_report(run)
    report = json.loads(paths["json"].read_text())
    b = report["baseline"]
    assert b["beat_transfer"] is False and b["tie"] is True and b["within_noise"] is True
    assert b["best_trial"] == int(best["trial"]) and abs(b["delta"] + 0.01) < 1e-9
    assert "tie within noise" in b["sentence"] and "beat" not in b["sentence"]
    html = paths["html"].read_text()
    assert "baseline beat transfer learning" not in html and "tie within noise" in html
    assert f"{float(b['score']):.4f} ± 0.0300" in html  # the baseline table shows its interval
    # and beyond the noise it is a win
    _edit_summary(run, lambda s: s["baseline"].update(score=round(float(best["score"]) + 0.01, 6), score_se=0.001))
    _write_rows(run, [dict(r, score_se="0.001") if r["trial"] == best["trial"] else r for r in _rows(run)])
    report = build_report(run)
    assert report["baseline"]["beat_transfer"] is True and "by more than" not in report["baseline"]["sentence"]
    assert "beyond one standard error (0.1 points)" in report["baseline"]["sentence"]


def test_the_delivered_section_shows_the_one_se_selection_and_the_refit(make_run_dir):
    run = make_run_dir("r", seed=0)
    summary = json.loads((run / "summary.json").read_text())
    sel = summary["selection"]
    assert sel["trial"] != sel["top_trial"]  # this seed: the one-SE rule picks a simpler trial than the top one
    paths = write_report(run)
    report = json.loads(paths["json"].read_text())
    d = report["delivered"]
    assert (d["trial"], d["top_trial"], d["is_top"]) == (sel["trial"], sel["top_trial"], False)
    assert report["best"]["trial"] == sel["top_trial"]  # "best" stays the top-scoring trial
    assert d["refit"] is True and d["n_train"] == 1200 and d["kind"] == "transfer learning"
    assert any("rather than the top-scoring trial" in s and "one-standard-error rule" in s for s in d["sentences"])
    assert any(s.startswith("Delivered: trial") for s in report["headline"])
    assert [r["trial"] for r in report["leaderboard"] if r["delivered"]] == [sel["trial"]]
    assert report["evaluation"]["kind"] == "cv" and report["evaluation"]["k"] == 5
    assert report["stop"]["kind"] == "trials"
    assert [p["backbone"] for p in report["probe"] if p["classical"]] == ["pixels"] and report["probe"][-1]["skipped"]
    html, md = paths["html"].read_text(), paths["md"].read_text()
    for text in (html, md):
        assert "What was delivered and why" in text
        assert "refitted on all 1200 labelled items" in text
        assert "one-standard-error rule" in text and sel["reason"][:40] in text
        assert "5-fold cross-validation" in text and "the trial budget (12) is used" in text
        assert "Linear probe" in text and "skipped: the time budget for probing ran out" in text
    assert '<section id="delivered">' in html and 'class="delivered"' in html
    assert f"{report['best']['score']:.4f} ± {report['best']['score_se']:.4f}" in html  # leaderboard, headline, matrix
    assert "baseline.json" not in html  # the baseline is in summary.json: not a missing file


def test_no_refit_early_stop_and_not_started_trials(make_run_dir):
    run = make_run_dir("r")
    rows = _rows(run)
    rows.append(dict(rows[-1], trial="12", state="PRUNED", score="", score_se="", evaluation="", n_eval="", seconds="", recommended="False",
                     fail_reason="not started: its predicted cost (900 s) exceeds the time left (120 s)"))
    _write_rows(run, rows)

    def edit(s):
        s["delivered"].update(refit=False, n_train=1140, refit_reason="not refitted (--no-refit): the search's model is delivered")
        s["delivered"].pop("refit_seconds")
        s["stop"] = {"kind": "patience", "reason": "no improvement beyond half a standard error in the last 15 trials", "seconds": 600.0,
                     "seconds_saved": 120.0, "trials_saved": 5}
        s["counts"]["not_started"] = 1

    _edit_summary(run, edit)
    paths = write_report(run)
    report = json.loads(paths["json"].read_text())
    assert report["delivered"]["refit"] is False
    assert report["counts"]["not_started"] == 1 and report["counts"]["pruned"] == 2 and report["counts"]["other"] == 0
    assert sum(c["n_trials"] for c in report["matrix"]["cells"]) == 12  # never started: not in the matrix
    assert next(r for r in report["leaderboard"] if r["trial"] == 12)["not_started"] is True
    stop = "Stopping early saved about 2 min 00 s and 5 trials of the budget."
    assert any(stop in s for s in report["headline"])
    html = paths["html"].read_text()
    assert "It was not refitted (--no-refit): the search&#x27;s model is delivered. It was trained on the 1140 training items only." in html
    assert stop in html and "not started" in html


def test_a_delivered_classical_baseline(make_run_dir):
    run = make_run_dir("r")
    rows = _rows(run)
    best = max(_complete(rows), key=lambda r: float(r["score"]))
    rows.append(dict(best, trial="12", backbone="pixels", strategy="feature_extraction", unfreeze_blocks="", backbone_lr="",
                     score=str(round(float(best["score"]) + 0.005, 6)), evaluation="cv", recommended="False"))
    _write_rows(run, rows)

    def edit(s):
        s["selection"].update(trial=12, top_trial=12, tied=[12], reason="trial 12 has the top score")
        s["delivered"].update(trial=12, kind="classical baseline")

    _edit_summary(run, edit)
    paths = write_report(run)
    report = json.loads(paths["json"].read_text())
    d = report["delivered"]
    assert d["classical"] is True and d["backbone"] == "pixels" and d["is_top"] is True
    assert any("The delivered model is the classical baseline (pixels" in s for s in d["sentences"])
    # the baseline is compared with the best transfer-learning trial, not with the classical trial
    assert report["baseline"]["best_trial"] == int(best["trial"])
    assert "The delivered model is the classical baseline" in paths["html"].read_text()


def test_an_old_run_without_the_new_fields_still_renders(make_run_dir):
    run = make_run_dir("r", legacy=True)
    assert "score_se" not in _rows(run)[0] and (run / "baseline.json").is_file()
    _edit_summary(run, lambda s: s.pop("baseline"))  # baseline.json only
    paths = write_report(run)
    report = json.loads(paths["json"].read_text())
    assert report["delivered"] is None and report["stop"] is None and report["evaluation"] is None and report["probe"] == []
    assert all(r["score_se"] is None for r in report["leaderboard"])
    assert report["baseline"]["score"] == 0.71 and report["baseline"]["score_se"] is None
    assert report["strategy_held"] is False and report["strategy_verdict"]["verdict"] == "did not hold"
    html, md = paths["html"].read_text(), paths["md"].read_text()
    assert "Not recorded" in html and "Not recorded" in md
    assert "±" not in html.split('id="leaderboard"')[1].split("<table")[1].split("</table>")[0]  # no intervals to show
    assert "scored on" not in html


def test_interrupted_and_all_failed_runs_with_the_new_fields(make_run_dir):
    run = make_run_dir("i", kind="interrupted")
    report = build_report(run)
    assert report["delivered"] is not None and report["delivered"]["delivered"] is False and report["stop"] is None
    assert "has not delivered its model yet" in write_report(run)["html"].read_text()
    run = make_run_dir("f", kind="all_failed")
    paths = write_report(run)
    report = json.loads(paths["json"].read_text())
    assert report["delivered"] is None and report["stop"]["kind"] == "trials" and report["strategy_held"] is None
    assert "the trial budget (3) is used" in paths["html"].read_text()


def test_new_fields_are_escaped(make_run_dir):
    run = make_run_dir("r")
    payloads = (XSS_CLASS, XSS_LABEL, '"><svg onload=alert(5)>', "<iframe src=javascript:alert(6)>", "<b onmouseover=alert(7)>b</b>")

    def edit(s):
        s["selection"]["reason"] = payloads[0]
        s["delivered"]["refit_reason"] = payloads[1]
        s["stop"]["reason"] = payloads[2]
        s["evaluation"]["reason"] = payloads[3]
        s["probe"][0].update(backbone=payloads[4], options={payloads[2]: payloads[3]})
        s["probe"][-1]["skipped"] = payloads[1]
        s["baseline"]["name"] = payloads[0]

    _edit_summary(run, edit)
    rows = _rows(run)
    rows[0]["evaluation"] = payloads[4]
    _write_rows(run, rows)
    paths = write_report(run)
    html, md = paths["html"].read_text(), paths["md"].read_text()
    for p in payloads:
        assert p not in html and p not in md, p
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script" not in html.lower() and "<iframe" not in html.lower() and "<svg" not in html.lower()


def test_compare_calls_a_gap_within_noise_a_tie(make_run_dir, tmp_path):
    a = make_run_dir("a", n_samples=300, rec_strategy="fine_tune_all", seed=1)
    _recommended_strategy_behind(a, gap=0.012, se=0.03)
    b = make_run_dir("b", n_samples=900, rec_strategy="fine_tune_all", seed=2)
    _recommended_strategy_behind(b, gap=0.012, se=0.004)
    c = build_comparison([a, b])
    assert [(r["agrees"], r["within_noise"]) for r in c["strategy_table"]] == [(True, True), (False, False)]
    assert [d["n_samples"] for d in c["disagreements"]] == [900] and c["disagreements"][0]["se"] == 0.004
    assert any("300 samples" in s and "a tie within noise" in s for s in c["headline"])
    assert any("900 samples" in s and "beyond one standard error" in s for s in c["headline"])
    assert all(r["best_se"] is not None for r in c["runs"])
    paths = write_comparison([a, b], tmp_path / "cmp")
    assert "tie within noise" in paths["html"].read_text() and "tie within noise" in paths["md"].read_text()
    assert " ± " in paths["md"].read_text()
