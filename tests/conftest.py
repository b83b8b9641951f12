"""Shared test settings: quiet TensorFlow, no network probes, and caches of the test session's own.

Nothing a user's earlier runs left in their caches is read: the embedding cache
(``AUTOML_TL_CACHE_DIR``), Keras' home (``~/.keras``: its config and downloaded weights) and the
Hugging Face cache (``~/.cache/huggingface``) and the knowledge base of past searches all point into one temporary folder for the session,
set here, before anything imports Keras or huggingface_hub. Weights come from installed packages.
"""

import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("AUTOML_TL_OFFLINE", "1")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
_HOME = tempfile.mkdtemp(prefix="automl-tl-tests-")
os.environ["AUTOML_TL_CACHE_DIR"] = os.path.join(_HOME, "embedding-cache")
os.environ["KERAS_HOME"] = os.path.join(_HOME, "keras")
os.environ["HF_HOME"] = os.path.join(_HOME, "huggingface")
# fits write their records to a knowledge base of the session's own, and search without warm
# start (tests/core/test_knowledge.py turns it on): a trial sequence must not depend on which
# tests ran before
os.environ["AUTOML_TL_KNOWLEDGE"] = os.path.join(_HOME, "knowledge.jsonl")
os.environ["AUTOML_TL_WARM_START"] = "0"
os.environ.pop("AUTOML_TL_PRIOR", None)  # the shipped prior, whatever the developer's shell says

import shutil  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def _session_home():
    yield
    shutil.rmtree(_HOME, ignore_errors=True)
