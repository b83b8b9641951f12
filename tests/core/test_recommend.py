"""`automl-tl recommend`: ranked recommendations with their evidence, without a search."""

import json

import pytest

from automl_tl import cli


def test_recommend_ranks_backbones_with_their_evidence(image_folder, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("AUTOML_TL_CACHE_DIR", str(tmp_path / "cache"))
    assert cli.main(["recommend", str(image_folder), "--backbones", "mobilenetv2,vgg16,pixels", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    recs = out["recommendations"]
    assert [r["backbone"] for r in recs] and {r["backbone"] for r in recs} <= {"mobilenetv2", "vgg16"}
    assert len(recs) == 2  # the classical featurizer is the baseline, never a recommendation
    assert out["baseline"]["backbone"] == "pixels"
    scores = [r["evidence"]["probe"]["score"] for r in recs]
    assert scores == sorted(scores, reverse=True) and [r["rank"] for r in recs] == [1, 2]
    for r in recs:
        ev = r["evidence"]
        assert set(ev["proxies"]) == {"logme", "knn"} and set(ev["ranks"]) == {"linear_probe", "logme", "knn"}
        assert r["config"]["backbone"] == r["backbone"] and r["config"]["strategy"] == r["strategy"]
        assert r["rule"] and r["reason"]
    # the text output says the same, best first
    assert cli.main(["recommend", str(image_folder), "--backbones", "mobilenetv2,vgg16,pixels", "--top", "1"]) == 0
    text = capsys.readouterr().out
    assert f"1. {recs[0]['strategy']} with {recs[0]['backbone']}" in text and "2. " not in text
    assert "classical baseline: pixels" in text
    # the nearest past tasks (the shipped prior has image tasks): what each search selected, and
    # its top score where that differs
    assert out["nearest_tasks"] and all(t["meta"]["modality"] == "image" for t in out["nearest_tasks"])
    for t in out["nearest_tasks"]:
        sel, best = t["selected"] or t["best"], t["best"]
        assert sel["score"] <= best["score"]
        differs = (sel["strategy"], sel["backbone"]) != (best["strategy"], best["backbone"])
        assert (f"{t['label']}" in text) and (("its search selected" in text) or not differs)


def test_recommend_rejects_a_bad_top(image_folder):
    assert cli.main(["recommend", str(image_folder), "--top", "0"]) == 2
