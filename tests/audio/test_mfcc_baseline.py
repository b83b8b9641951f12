"""The classical audio baseline (MFCC statistics) is a featurizer the search delivers like any
other: grouped folds, a logistic-regression head, a saved model that reads raw clips."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd


def test_mfcc_baseline_is_delivered_with_grouped_folds(digit_files, tmp_path):
    from automl_tl import AutoTransfer
    from automl_tl.plugin_manager import PluginManager

    items, labels, voices = digit_files
    frame = pd.DataFrame({"path": items, "label": labels, "voice": voices})
    est = AutoTransfer(backbones=["mfcc"], trials=2, run_dir=str(tmp_path / "run"), report=False,
                       cache_dir=str(tmp_path / "cache"), path_column="path", label_column="label",
                       group_column="voice", plugin_manager=PluginManager(), patience=0).fit(frame)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["evaluation"]["kind"] == "cv" and summary["evaluation"]["k"] == 3  # one fold per voice
    split = json.loads((tmp_path / "run" / "split.json").read_text())
    train_voices = {voices[items.index(p)] for p in split["train"]["items"]}
    val_voices = {voices[items.index(p)] for p in split["val"]["items"]}
    assert not train_voices & val_voices
    assert est.delivered_["kind"] == "classical baseline"
    assert summary["baseline"]["backbone"] == "mfcc"
    proba = est.predict_proba(items[:4])
    assert proba.shape == (4, len(set(labels))) and np.allclose(proba.sum(1), 1, atol=1e-4)
