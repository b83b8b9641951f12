"""The text plugin inside the real engine (AutoTransfer): a tiny end-to-end run (slow)."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.slow


def test_autotransfer_on_reviews(minilm_weights, rt_texts, tmp_path):
    import pandas as pd

    from automl_tl import AutoTransfer

    texts, labels = rt_texts
    frame = pd.DataFrame({"text": texts[:60] + ["", None], "label": labels[:60] + ["fresh", "rotten"]})
    clf = AutoTransfer(backbones=["minilm-l6"], trials=2, seed=0, run_dir=str(tmp_path / "run"),
                       cache_dir=str(tmp_path / "cache"), text_column="text", label_column="label",
                       report=False)
    clf.fit(frame)
    assert len(clf.skipped_) == 2
    prof = clf.profile_.to_dict()
    assert prof["backbones"]["minilm-l6"]["input_config"]["sequence_length"] in (32, 64)
    assert prof["backbones"]["minilm-l6"]["similarity"] > 0.8
    pred = clf.predict(["A gorgeous, witty, seductive movie.", "Dull and lifeless."])
    assert set(pred) <= {"fresh", "rotten"}
    # better than chance on the 140 reviews it never saw (majority class: 0.51)
    held, truth = texts[60:], labels[60:]
    accuracy = float(np.mean(np.array(clf.predict(held)) == np.array(truth)))
    majority = max(truth.count(c) for c in set(truth)) / len(truth)
    assert accuracy >= majority + 0.08, (accuracy, majority)
    saved = clf.save(tmp_path / "model")
    again = AutoTransfer.load(saved)
    np.testing.assert_allclose(again.predict_proba(texts[60:70]), clf.predict_proba(texts[60:70]), atol=1e-5)
    # a fresh process (nothing imported yet) loads and predicts: custom layers get registered
    import json
    import subprocess
    import sys

    code = ("import json, sys; from automl_tl import AutoTransfer; "
            "c = AutoTransfer.load(sys.argv[1]); "
            "print(json.dumps(c.predict_proba(json.loads(sys.argv[2])).tolist()))")
    out = subprocess.run([sys.executable, "-c", code, str(saved), json.dumps(texts[60:63])],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    fresh = np.array(json.loads(out.stdout.strip().splitlines()[-1]))
    np.testing.assert_allclose(fresh, clf.predict_proba(texts[60:63]), atol=1e-5)
