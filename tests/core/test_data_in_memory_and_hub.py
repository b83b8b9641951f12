"""Data as Hugging Face ``datasets`` leaves it: the Hub's Parquet files (labels as ``ClassLabel``
codes, images inside the table) and folders written by ``save_to_disk``; images held in memory
(arrays, PIL images) given to the Python API. The files are written
here with pyarrow as ``datasets`` writes them (schema metadata ``huggingface``, Arrow IPC streams,
``state.json``, ``dataset_dict.json``); ``datasets`` itself is not a dependency."""

import io
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from automl_tl.data import held_inputs_as_files, load_data, prediction_inputs, with_embedded_files
from automl_tl.errors import DataError

TEXTS = {"pos": ["a gripping, lovely film", "warm and funny throughout", "a triumph of acting",
                 "beautifully shot and moving", "the best film this year"],
         "neg": ["dull and far too long", "a mess from start to end", "the plot makes no sense",
                 "flat, lifeless acting", "i wanted my money back"]}
FEATURES = {"text": {"dtype": "string", "_type": "Value"},
            "label": {"names": ["neg", "pos"], "_type": "ClassLabel"}}


def _table(rows, features=FEATURES):
    columns = {k: [r[k] for r in rows] for k in rows[0]}
    return pa.table(columns).replace_schema_metadata({"huggingface": json.dumps({"info": {"features": features}})})


def _text_rows(labelled=True):
    return [{"text": t, "label": (["neg", "pos"].index(c) if labelled else -1)} for c in TEXTS for t in TEXTS[c]]


def _save(folder: Path, table) -> None:
    """One split as ``Dataset.save_to_disk`` writes it."""
    folder.mkdir(parents=True)
    with pa.OSFile(str(folder / "data-00000-of-00001.arrow"), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    (folder / "state.json").write_text(json.dumps({"_data_files": [{"filename": "data-00000-of-00001.arrow"}]}))
    (folder / "dataset_info.json").write_text(json.dumps({"features": FEATURES}))


def test_class_label_codes_are_read_as_their_names(pm, tmp_path):
    """The Hub's Parquet export of a text dataset: labels 0 / 1, their names in the schema. They
    were fitted as classes '0' and '1'; -1 (GLUE's unlabelled test rows) was a third class."""
    rows = _text_rows() + [{"text": "no label here", "label": -1}]
    pq.write_table(_table(rows), tmp_path / "train-00000-of-00001.parquet")
    data = load_data(tmp_path / "train-00000-of-00001.parquet", modalities=pm.modalities)
    assert data.class_counts() == {"neg": 5, "pos": 5}
    assert "no label here" not in data.items


def test_a_saved_dataset_dict(pm, tmp_path):
    """``DatasetDict.save_to_disk``: train/, validation/, test/ (unlabelled), dataset_dict.json.
    It was read as a folder of class folders holding no inputs. The train and validation rows are
    fitted (validation as the fixed validation split), the test rows left out; predict takes one
    split's folder and says so when given the whole dict."""
    root = tmp_path / "rt"
    _save(root / "train", _table(_text_rows()))
    _save(root / "validation", _table(_text_rows()[::3]))
    _save(root / "test", _table(_text_rows(labelled=False)))
    (root / "dataset_dict.json").write_text(json.dumps({"splits": ["train", "validation", "test"]}))
    data = load_data(root, modalities=pm.modalities)
    assert data.class_counts() == {"neg": 7, "pos": 7}
    assert sorted(data.split) == ["train"] * 10 + ["val"] * 4
    text = pm.modalities.get("text")
    got = prediction_inputs([str(root / "test")], text)
    assert [x.value for x in got] == [t for c in TEXTS for t in TEXTS[c]] and all(x.truth is None for x in got)
    with pytest.raises(DataError, match=r"DatasetDict of 3 splits .* predict RUN .*test"):
        prediction_inputs([str(root)], text)


def _png_bytes(value):
    buf = io.BytesIO()
    Image.new("RGB", (24, 24), (value, 255 - value, 90)).save(buf, format="PNG")
    return buf.getvalue()


def test_images_held_inside_a_table(pm, tmp_path):
    """The Hub's image datasets keep each image in its row (``{"bytes": ..., "path": ...}``): an
    internal error (the bytes taken for a file name). They are written once each under the cache
    folder and read from there; predict shows each by the name it had; a DataFrame of them (as
    ``Dataset.to_pandas()`` gives) is read the same."""
    rows = [{"image": {"bytes": _png_bytes(20 * i + 100 * (i % 2)), "path": f"leaf_{i}.png"}, "labels": i % 2}
            for i in range(8)]
    features = {"image": {"_type": "Image"}, "labels": {"names": ["healthy", "rust"], "_type": "ClassLabel"}}
    pq.write_table(_table(rows, features), tmp_path / "beans.parquet")
    data = load_data(tmp_path / "beans.parquet", modalities=pm.modalities)
    cache = Path(os.environ["AUTOML_TL_CACHE_DIR"]) / "inputs"
    assert data.class_counts() == {"healthy": 4, "rust": 4} and not data.skips
    assert all(Path(x).parent == cache and Path(x).suffix == ".png" for x in data.items)
    got = prediction_inputs([str(tmp_path / "beans.parquet")], pm.modalities.get("image"))
    assert [x.shown for x in got] == [f"leaf_{i}.png" for i in range(8)]
    assert [Path(x.value).read_bytes() for x in got] == [r["image"]["bytes"] for r in rows]
    frame = pd.DataFrame({"image": [r["image"] for r in rows], "labels": [r["labels"] for r in rows]})
    assert load_data(frame, modalities=pm.modalities).items == data.items
    assert with_embedded_files(frame, "<x>")["image"].tolist() == list(data.items)


def test_several_labels_per_row_are_refused(pm, tmp_path):
    """A multi-label dataset (``Sequence(ClassLabel)``: go_emotions) was fitted with classes such as
    '[0 1]' and '[1]', without a word. One label per input is what automl-tl learns: exit 2."""
    rows = [{"text": t, "labels": [0, 1] if i % 3 == 0 else [i % 2]}
            for i, t in enumerate(TEXTS["pos"] + TEXTS["neg"])]
    features = {"text": {"dtype": "string", "_type": "Value"},
                "labels": {"feature": {"names": ["joy", "anger"], "_type": "ClassLabel"}, "_type": "Sequence"}}
    pq.write_table(_table(rows, features), tmp_path / "go.parquet")
    with pytest.raises(DataError, match=r"'labels' holds several labels per row \(e.g. \[0, 1\]\).*multi-label"):
        load_data(tmp_path / "go.parquet", modalities=pm.modalities)


def test_images_held_in_memory(pm):
    """``fit(X, y)`` with ``X`` an array of images (``keras.datasets``: N x H x W x 3 uint8, or
    floats of 0-1, or N x H x W; torchvision's channels first) or a list of PIL images was an
    internal error (the array's text taken for a file name). Each is read as the same image,
    whatever the form; a vector of numbers (a numeric feature table) is told apart."""
    rng = np.random.default_rng(0)
    x = np.clip(rng.normal(0, 25, (8, 20, 24, 3)) + np.repeat([60, 190], 4)[:, None, None, None], 0, 255)
    x = x.astype(np.uint8)
    y = ["dark"] * 4 + ["bright"] * 4
    data = load_data(x, y, modalities=pm.modalities)
    assert data.modality == "image" and data.class_counts() == {"bright": 4, "dark": 4}
    for same in (x / 255.0, x.astype(np.float32) / 255, np.moveaxis(x, -1, 1), [Image.fromarray(a) for a in x]):
        assert held_inputs_as_files(list(same), "<x>")[0] == list(data.items)
    assert np.array_equal(np.asarray(Image.open(data.items[0])), x[0])
    gray = held_inputs_as_files(list(x[..., 0]), "<x>")[0]
    assert np.array_equal(np.asarray(Image.open(gray[1])), x[1, ..., 0])
    with pytest.raises(DataError, match=r"arrays of shape \(64,\).*numeric features"):
        load_data(rng.random((8, 64)), y, modalities=pm.modalities)


def test_tables_by_split(pm, tmp_path):
    """A Hugging Face dataset repository (``data/train-00000-of-00002.parquet``, ...,
    ``validation-...``, ``test-...``) and the common ``train.csv`` + ``test.csv`` folder: the first
    was "none of the 4 files is an image ...", the second "found 2 files but no class sub-folders".
    Each table's split is its name's: train and validation fitted (validation as the fixed split),
    test left out; predict given the folder names the test table to give."""
    repo = tmp_path / "repo"
    (repo / "data").mkdir(parents=True)
    (repo / "README.md").write_text("# a dataset card\n")
    rows = _text_rows()
    pq.write_table(_table(rows[:6]), repo / "data" / "train-00000-of-00002.parquet")
    pq.write_table(_table(rows[6:]), repo / "data" / "train-00001-of-00002.parquet")
    pq.write_table(_table(rows[::2]), repo / "data" / "validation-00000-of-00001.parquet")
    pq.write_table(_table(_text_rows(labelled=False)), repo / "data" / "test-00000-of-00001.parquet")
    data = load_data(repo, modalities=pm.modalities)
    assert data.class_counts() == {"neg": 7, "pos": 8}
    assert sorted(data.split) == ["train"] * 10 + ["val"] * 5
    with pytest.raises(DataError, match=r"tables by split \(test, train, validation\).*test-00000-of-00001"):
        prediction_inputs([str(repo)], pm.modalities.get("text"))
    plain = tmp_path / "plain"
    plain.mkdir()
    frame = pd.DataFrame(rows).assign(label=lambda f: f["label"].map({0: "neg", 1: "pos"}))
    frame.to_csv(plain / "train.csv", index=False)
    frame.to_csv(plain / "test.csv", index=False)
    data = load_data(plain, modalities=pm.modalities)
    assert data.class_counts() == {"neg": 5, "pos": 5} and data.split is None
    (plain / "sample_submission.csv").write_text("id,label\n1,pos\n")  # a Kaggle folder: not read as splits
    with pytest.raises(DataError):
        load_data(plain, modalities=pm.modalities)
