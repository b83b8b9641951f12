"""The classical text baseline: TF-IDF learned from the dataset's texts, searched with a logistic
regression head like any backbone, saved with its vocabulary, delivered when it wins."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

from automl_tl.weights import ResolvedWeights


def test_vocabulary_round_trips_through_the_saved_assets(rt_texts, tmp_path):
    from automl_tl_text._tfidf import MAX_FEATURES, fit_tfidf, featurize, make_adapter

    texts, _ = rt_texts
    fit_tfidf(texts, str(tmp_path))
    fitted = ResolvedWeights(backbone="tfidf", kind="fitted", location=str(tmp_path))
    adapter = make_adapter({}, fitted)
    x = featurize(fitted, {})(adapter(texts[:8]))
    assert x.dtype == np.float32 and x.shape[0] == 8 and 0 < x.shape[1] <= 2 * MAX_FEATURES
    # each analyser's rows are l2-normalised: two blocks of norm 1
    assert np.allclose(np.linalg.norm(x, axis=1) ** 2, 2.0, atol=1e-4)
    assets = tmp_path / "assets"
    assets.mkdir()
    adapter.save_assets(str(assets))
    again = featurize(ResolvedWeights(backbone="tfidf", kind="assets", location=str(assets)), {})
    np.testing.assert_array_equal(again(make_adapter({}, None, str(assets))(texts[:8])), x)


def test_tfidf_is_searched_and_delivered_as_the_baseline(rt_texts, tmp_path, pm):
    from automl_tl import AutoTransfer

    texts, labels = rt_texts
    est = AutoTransfer(backbones=["tfidf"], trials=2, run_dir=str(tmp_path / "run"), report=False,
                       cache_dir=str(tmp_path / "cache"), plugin_manager=pm, patience=0).fit(texts, labels)
    assert est.delivered_["kind"] == "classical baseline" and est.delivered_["refit"] is True
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["baseline"]["backbone"] == "tfidf" and 0.5 < summary["baseline"]["score"] <= 1.0
    probe = summary["probe"][0]
    assert probe["backbone"] == "tfidf" and probe["score"] == summary["baseline"]["score"]
    # the saved model predicts raw texts in a fresh process, exactly as in this one
    sample = texts[:5]
    here = list(est.predict(sample))
    # ... given as texts, and as a table's rows (the column that is not the labels)
    import pandas as pd

    pd.DataFrame({"blurb": sample, "label": here}).to_csv(tmp_path / "new.csv", index=False)
    out = subprocess.run([sys.executable, "-m", "automl_tl.cli", "predict", str(tmp_path / "run"), *sample,
                          str(tmp_path / "new.csv"), "--json"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = [json.loads(line) for line in out.stdout.strip().splitlines()]
    assert [r["label"] for r in lines] == here + here
    assert [r["input"] for r in lines[5:]] == sample
    assert "accuracy 1.0000 on the 5 inputs whose label the data gives" in out.stderr  # its label column
    # the Python API reads the same: a table file for its rows, a DataFrame for its one column,
    # one string for one text (not its characters)
    assert list(est.predict(str(tmp_path / "new.csv"))) == here
    assert list(est.predict(pd.DataFrame({"blurb": sample}))) == here
    assert list(est.predict(sample[0])) == here[:1]
