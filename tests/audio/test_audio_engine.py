"""End to end through the engine (AutoTransfer), when it is present: the real speech embedding
(feature extraction, predict from the run's assets) and a tiny random Wav2Vec2 fine-tuned top-N."""

from __future__ import annotations

import glob

import numpy as np
import pytest
from automl_tl.testing import tiny_wav2vec2

pytestmark = pytest.mark.slow


def test_autotransfer_speech_embedding(digits_dir, digits_module, tmp_path):
    import csv

    from automl_tl import AutoTransfer

    est = AutoTransfer(backbones=["speech-embedding"], trials=1, run_dir=str(tmp_path / "run"),
                       cache_dir=str(tmp_path / "cache"), report=False, seed=0)
    est.fit(str(digits_dir))
    assert (tmp_path / "run" / "assets" / "speech-embedding.onnx").exists()
    items = sorted(glob.glob(str(digits_dir / "*" / "*.wav")))[:4]
    pred = est.predict(items)
    assert len(pred) == 4 and set(map(str, pred)) <= {str(d) for d in range(10)}
    # better than chance (0.1) on voices it never heard: 40 clips (two voices, two speeds), so
    # one lucky clip moves the accuracy by 0.025, not by 0.1
    new_voice = tmp_path / "new-voice"
    digits_module.make_dataset(new_voice, voices=["en-gb+m3", "en-us+m3"], speeds=[150, 175], pitches=[40])
    rows = list(csv.DictReader(open(new_voice / "metadata.csv")))
    got = est.predict([str(new_voice / r["path"]) for r in rows])
    assert len(rows) == 40
    accuracy = float(np.mean([str(p) == r["label"] for p, r in zip(got, rows)]))
    assert accuracy >= 0.3, accuracy


def test_autotransfer_fine_tunes_wav2vec2(digits_dir, tmp_path):
    from automl_tl import AutoTransfer

    tiny_wav2vec2(tmp_path / "w2v")
    est = AutoTransfer(backbones=["wav2vec2-base"], trials=1, run_dir=str(tmp_path / "run"),
                       cache_dir=str(tmp_path / "cache"), report=False, seed=0,
                       weights={"wav2vec2-base": str(tmp_path / "w2v")}, strategies=["fine_tune_top"])
    est.fit(str(digits_dir))
    items = sorted(glob.glob(str(digits_dir / "*" / "*.wav")))[:3]
    proba = est.predict_proba(items)
    assert proba.shape == (3, 10) and np.allclose(proba.sum(1), 1.0, atol=1e-5)
