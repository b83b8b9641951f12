"""Loaders fuzzed: whatever bytes a table, an image, an audio file or a run directory's files
hold, the result is a dataset, a counted skip or a user error (exit 2), never anything else.
"""

import json
import shutil
import tempfile
import warnings
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from automl_tl.data import load_data
from automl_tl.errors import AutoMLTLError

FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def pm():
    from automl_tl.plugin_manager import PluginManager

    return PluginManager()


def _outcome(fn):
    """"ok", or the exit code of the user error ``fn`` raised; any other exception fails the test."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            fn()
        except AutoMLTLError as exc:
            assert exc.exit_code == 2, f"{type(exc).__name__} with exit code {exc.exit_code}: {exc}"
            assert str(exc).strip()
            return 2
    return "ok"


@FUZZ
@given(body=st.binary(max_size=300), suffix=st.sampled_from([".csv", ".tsv", ".jsonl"]),
       header=st.sampled_from([b"", b"text,label\n", b"text\tlabel\n", b'{"text": "a", "label": "x"}\n']))
def test_table_bytes(pm, body, suffix, header):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"t{suffix}"
        path.write_bytes(header + body)
        _outcome(lambda: load_data(str(path), modalities=pm.modalities, text_column="text", label_column="label"))


@FUZZ
@given(st.text(max_size=40), st.text(max_size=40))
def test_table_cells(pm, a, b):
    """Any text in the cells (quotes, separators, newlines, control characters) of a sane table."""
    import csv

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "t.csv"
        with open(path, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["text", "label"])
            for i in range(6):
                w.writerow([a if i % 2 else b, "x" if i < 3 else "y"])
        _outcome(lambda: load_data(str(path), modalities=pm.modalities, text_column="text", label_column="label"))


MAGIC = {".png": b"\x89PNG\r\n\x1a\n", ".jpg": b"\xff\xd8\xff", ".wav": b"RIFF\x24\x00\x00\x00WAVEfmt ",
         ".flac": b"fLaC", ".ogg": b"OggS"}


@FUZZ
@given(suffix=st.sampled_from(sorted(MAGIC)), body=st.binary(max_size=200))
def test_media_headers(pm, suffix, body):
    """A class folder whose files carry a real format's magic bytes and then anything: each is read
    or skipped and counted; with nothing readable left the load is a user error."""
    with tempfile.TemporaryDirectory() as d:
        for cls in ("a", "b"):
            (Path(d) / cls).mkdir()
            for i in range(3):
                (Path(d) / cls / f"{i}{suffix}").write_bytes(MAGIC[suffix] + body[i:])
        result = {}

        def load():
            result["data"] = load_data(d, modalities=pm.modalities)

        if _outcome(load) == "ok":
            data = result["data"]
            assert len(data.items) + len(data.skips) == 6


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory):
    """A real saved model (a linear head on MobileNetV2 features) to damage."""
    from automl_tl import AutoTransfer
    from automl_tl.demo import fashion_mnist, mnist_5k, write_image_folder

    try:
        images, labels, names = fashion_mnist()
    except Exception:  # noqa: BLE001
        images, labels, names = mnist_5k()
    root = tmp_path_factory.mktemp("fuzz-run")
    folder = write_image_folder(root / "data", images, labels, names, per_class=8, classes=(0, 1))
    est = AutoTransfer(backbones=["mobilenetv2"], strategies=["feature_extraction"], trials=1, patience=0,
                       report=False, run_dir=str(root / "run")).fit(str(folder))
    return Path(est.run_dir_).resolve()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(["config.json", "labels.json"]),
       content=st.one_of(st.binary(max_size=200), st.recursive(
           st.none() | st.booleans() | st.integers() | st.text(max_size=10),
           lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4),
           max_leaves=8).map(lambda v: json.dumps(v).encode())))
def test_run_directory_files(saved_run, name, content):
    from automl_tl.artifacts import Predictor

    with tempfile.TemporaryDirectory() as d:
        run = Path(d) / "run"
        shutil.copytree(saved_run / "current", run)  # the model's own folder, plain files
        (run / name).write_bytes(content)
        _outcome(lambda: Predictor(run))
