"""Shared test settings: quiet TensorFlow, no network probes, a per-session embedding cache."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("AUTOML_TL_OFFLINE", "1")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import pytest  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def _session_cache(tmp_path_factory):
    if "AUTOML_TL_CACHE_DIR" not in os.environ:
        os.environ["AUTOML_TL_CACHE_DIR"] = str(tmp_path_factory.mktemp("embedding-cache"))
    yield
