"""Bad input gives a clear, specific error (or a counted, reported skip)."""

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from automl_tl.cli import main
from automl_tl.data import load_data
from automl_tl.errors import DataError, NotFittedError


def _load(pm, src, **kw):
    return load_data(src, modalities=pm.modalities, **kw)


def _png(path, value=128, size=(20, 20), mode="L"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, value if mode == "L" else (value,) * len(mode)).save(path)


def test_empty_folder(pm, tmp_path):
    with pytest.raises(DataError, match="folder is empty"):
        _load(pm, tmp_path)


def test_one_class_only(pm, tmp_path):
    for i in range(3):
        _png(tmp_path / "cat" / f"{i}.png", i * 40)
    with pytest.raises(DataError, match="only one class .'cat', 3 inputs"):
        _load(pm, tmp_path)


def test_class_with_single_image(pm, tmp_path):
    for i in range(3):
        _png(tmp_path / "cat" / f"{i}.png", i * 40)
    _png(tmp_path / "dog" / "0.png")
    with pytest.raises(DataError, match="class 'dog' has a single example") as err:
        _load(pm, tmp_path)
    assert "is the column" not in str(err.value)


def test_a_label_column_of_mostly_single_examples_is_one_short_line(pm, tmp_path):
    """A table labelled by a column of names (one speech per speaker): five named, the rest
    counted, and the likely cause said."""
    texts = [f"speech number {i} about the economy" for i in range(40)]
    pd.DataFrame({"text": texts, "speaker": [f"speaker {i}" for i in range(38)] + ["speaker 0", "speaker 1"]}
                 ).to_csv(tmp_path / "s.csv", index=False)
    with pytest.raises(DataError) as err:
        _load(pm, tmp_path / "s.csv", label_column="speaker")
    msg = str(err.value)
    assert "'speaker 10', 'speaker 11', 'speaker 12', 'speaker 13', 'speaker 14' and 31 more have a single" in msg
    assert "36 of the 38 classes have one example: is the column 'speaker' the labels?" in msg
    assert len(msg) < 400 and "\n" not in msg


def test_folder_of_non_images(pm, tmp_path):
    for c in ("a", "b"):
        (tmp_path / c).mkdir()
        for i in range(3):
            (tmp_path / c / f"{i}.xyz").write_text("not an image")
    with pytest.raises(DataError, match="none of the 6 files is an image"):
        _load(pm, tmp_path)


def test_csv_without_named_columns(pm, tmp_path):
    csv = tmp_path / "t.csv"
    pd.DataFrame({"foo": ["x.png"], "bar": ["a"]}).to_csv(csv, index=False)
    with pytest.raises(DataError, match="none of the 1 files it names exists .*x.png"):
        _load(pm, csv)  # the column of file names is the inputs; the file is nowhere
    pd.DataFrame({"foo": ["x y"], "bar": ["a"]}).to_csv(csv, index=False)
    with pytest.raises(DataError, match="cannot tell which column holds the labels"):
        _load(pm, csv)
    with pytest.raises(DataError, match="no column 'nope' for the labels .*--label-column"):
        _load(pm, csv, label_column="nope")


def test_labels_all_missing(pm, tmp_path):
    for i in range(4):
        _png(tmp_path / f"{i}.png", i * 50)
    csv = tmp_path / "t.csv"
    pd.DataFrame({"path": [f"{i}.png" for i in range(4)], "label": [None] * 4}).to_csv(csv, index=False)
    with pytest.raises(DataError, match="every value in the label column 'label' is missing"):
        _load(pm, csv)


def test_some_labels_missing_are_counted_skips(pm, tmp_path):
    for i in range(6):
        _png(tmp_path / f"{i}.png", i * 40)
    csv = tmp_path / "t.csv"
    pd.DataFrame({"path": [f"{i}.png" for i in range(6)],
                  "label": ["a", "b", None, "a", "b", "a"]}).to_csv(csv, index=False)
    data = _load(pm, csv)
    assert len(data.items) == 5
    assert data.skip_summary()["by_reason"] == {"missing label": 1}


def test_corrupt_and_odd_images(pm, tmp_path):
    """Corrupt files are skipped and counted; grey, RGBA, palette and 16-bit images load."""
    from automl_tl_vision._images import load_rgb

    _png(tmp_path / "a" / "grey.png")
    _png(tmp_path / "a" / "rgba.png", mode="RGBA")
    Image.new("P", (30, 10)).save(tmp_path / "a" / "palette.png")
    _png(tmp_path / "b" / "ok.png", 200)
    Image.fromarray(np.full((8, 8), 60000, np.uint16)).save(tmp_path / "b" / "16bit.png")
    (tmp_path / "b" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    (tmp_path / "b" / "truncated.jpg").write_bytes(_jpeg_bytes()[:200])
    (tmp_path / "b" / "notes.txt").write_text("hello")
    data = _load(pm, tmp_path)
    assert sorted(data.class_counts().items()) == [("a", 3), ("b", 2)]
    reasons = data.skip_summary()["by_reason"]
    assert reasons.get("corrupt image", 0) + reasons.get("not an image", 0) + reasons.get("unreadable", 0) == 2
    assert reasons["unsupported file type"] == 1
    for p in data.items:
        arr = load_rgb(p, 32)
        assert arr.shape == (32, 32, 3) and arr.dtype == np.uint8


def _jpeg_bytes():
    import io

    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


def test_huge_image_is_skipped_not_decoded(pm, tmp_path, monkeypatch):
    import automl_tl_vision._images as images

    monkeypatch.setattr(images, "MAX_PIXELS", 10_000)
    for c in ("a", "b"):
        for i in range(2):
            _png(tmp_path / c / f"{i}.png", 30 * i)
    _png(tmp_path / "a" / "huge.png", size=(200, 200))
    data = _load(pm, tmp_path)
    assert data.skip_summary()["by_reason"] == {"too large": 1}


def test_predict_on_run_dir_without_model(tmp_path, capsys):
    from automl_tl.artifacts import load_predictor

    with pytest.raises(NotFittedError, match="no saved model here"):
        load_predictor(tmp_path)
    assert main(["predict", str(tmp_path), "x.png"]) == 2
    assert "no saved model here" in capsys.readouterr().err


def test_cli_exit_code_for_bad_data(tmp_path, capsys):
    assert main(["profile", str(tmp_path)]) == 2
    assert "folder is empty" in capsys.readouterr().err
    assert main(["profile", str(tmp_path / "missing")]) == 2


@pytest.mark.parametrize("option", ["--trials", "--per-class"])
def test_demo_counts_of_zero_are_exit_2_before_anything_is_written(tmp_path, capsys, option):
    out = tmp_path / "demo_data"
    with pytest.raises(SystemExit) as stop:
        main(["demo", "--out", str(out), "--run-dir", str(tmp_path / "run"), option, "0"])
    assert stop.value.code == 2
    assert "must be 1 or more" in capsys.readouterr().err
    assert not out.exists() and not (tmp_path / "run").exists()


def test_fixed_split_column(pm, tmp_path):
    from automl_tl.data import evaluation_plan

    for i in range(8):
        _png(tmp_path / f"{i}.png", i * 30)
    frame = pd.DataFrame({"path": [f"{i}.png" for i in range(8)], "label": ["a", "b"] * 4,
                          "part": ["train"] * 6 + ["validation"] * 2})
    frame.to_csv(tmp_path / "t.csv", index=False)
    data = _load(pm, tmp_path / "t.csv", split_column="part")
    s = evaluation_plan(data, [0, 1] * 4)
    assert s.kind == "holdout" and list(s.train) == [0, 1, 2, 3, 4, 5] and list(s.val) == [6, 7]
    frame.assign(part=["train"] * 7 + ["holdout"]).to_csv(tmp_path / "u.csv", index=False)
    with pytest.raises(DataError, match="must say train, val or test.*'holdout'"):
        _load(pm, tmp_path / "u.csv", split_column="part")


def test_a_split_column_with_test_rows_keeps_them_out(pm, tmp_path, caplog):
    """A table's ``split`` column of train / val / test: the test rows were trained on (without
    --split-column) or refused ("must say train or val"). They are left out, the column read as
    the split by its name and values."""
    from automl_tl.data import evaluation_plan

    for i in range(10):
        _png(tmp_path / f"{i}.png", i * 25)
    split = ["train"] * 6 + ["val"] * 2 + ["Test"] * 2
    pd.DataFrame({"path": [f"{i}.png" for i in range(10)], "label": ["a", "b"] * 5, "split": split}).to_csv(
        tmp_path / "t.csv", index=False)
    data = _load(pm, tmp_path / "t.csv")
    assert [Path(x).name for x in data.items] == [f"{i}.png" for i in range(8)]
    plan = evaluation_plan(data, [0, 1] * 4)
    assert plan.kind == "holdout" and list(plan.val) == [6, 7]
    assert "2 row(s) marked test in column 'split' are left out of the search" in caplog.text
    # train and test only: the test rows out, validation drawn from the training rows
    pd.DataFrame({"path": [f"{i}.png" for i in range(10)], "label": ["a", "b"] * 5,
                  "subset": ["train"] * 8 + ["test"] * 2}).to_csv(tmp_path / "u.csv", index=False)
    data = _load(pm, tmp_path / "u.csv")
    assert len(data.items) == 8 and data.split is None


def test_folder_of_text_files_reads_their_content(pm, tmp_path):
    for label, words in (("pos", ["great fun", "a joy", "superb"]), ("neg", ["dull", "too long", "awful"])):
        (tmp_path / label).mkdir()
        for i, w in enumerate(words):
            (tmp_path / label / f"{i}.txt").write_text(w)
    (tmp_path / "neg" / "3.txt").write_bytes(b"caf\xe9 latin-1 \x93quoted\x94")  # Windows-1252
    data = _load(pm, tmp_path)
    assert data.modality == "text"
    assert "great fun" in data.items and not any(str(tmp_path) in x for x in data.items)
    # a file not in UTF-8 (older corpora: Latin-1, Windows-1252) is read, not skipped
    assert "caf\u00e9 latin-1 \u201cquoted\u201d" in data.items and data.skip_summary()["count"] == 0


def test_table_of_text_file_paths_reads_content(pm, tmp_path):
    for i, (w, lab) in enumerate([("great fun", "pos"), ("a joy", "pos"), ("dull", "neg"), ("awful", "neg")]):
        (tmp_path / f"{i}.txt").write_text(w)
    pd.DataFrame({"path": [f"{i}.txt" for i in range(4)] + ["gone.txt", None],
                  "label": ["pos", "pos", "neg", "neg", "neg", "pos"]}).to_csv(tmp_path / "t.csv", index=False)
    data = _load(pm, tmp_path / "t.csv")
    assert data.modality == "text" and sorted(data.items) == ["a joy", "awful", "dull", "great fun"]
    assert data.skip_summary()["by_reason"] == {"file not found": 1, "missing path": 1}
    assert {"item": "row 7", "reason": "missing path"} in data.skip_summary()["examples"]


def test_run_dir_of_someone_elses_files_is_refused_untouched(tmp_path, image_folder, capsys):
    """A --run-dir holding the user's own files: exit 2 naming it, and nothing in it changes."""
    import hashlib

    from automl_tl.cli import main

    theirs = tmp_path / "mine"
    (theirs / "assets").mkdir(parents=True)
    for name, text in (("config.json", "{}"), ("report.html", "<p>mine</p>"), ("leaderboard.csv", "a,b\n"),
                       ("notes.txt", "keep"), ("assets/logo.png", "png")):
        (theirs / name).write_text(text)
    before = {p: hashlib.sha1(p.read_bytes()).hexdigest() for p in theirs.rglob("*") if p.is_file()}
    rc = main(["fit", str(image_folder), "--trials", "1", "--run-dir", str(theirs), "--backbones", "mobilenetv2",
               "--quiet", "--no-report", "--cache-dir", str(tmp_path / "cache")])
    err = capsys.readouterr().err
    assert rc == 2 and "not an automl-tl run" in err and str(theirs) in err
    assert {p: hashlib.sha1(p.read_bytes()).hexdigest() for p in theirs.rglob("*") if p.is_file()} == before
    assert not (tmp_path / "cache").exists()  # refused before the profile and the probe, not after them


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_run_dir_that_cannot_be_written_is_exit_2(tmp_path, image_folder, capsys):
    from automl_tl.cli import main

    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        rc = main(["fit", str(image_folder), "--trials", "1", "--run-dir", str(locked / "run"), "--quiet"])
    finally:
        locked.chmod(0o700)
    assert rc == 2 and "cannot write to the run directory" in capsys.readouterr().err


def test_run_dir_that_is_a_file_is_exit_2(tmp_path, image_folder, capsys):
    from automl_tl.cli import main

    (tmp_path / "afile").write_text("x")
    rc = main(["fit", str(image_folder), "--trials", "1", "--run-dir", str(tmp_path / "afile"), "--quiet"])
    assert rc == 2 and "is an existing file" in capsys.readouterr().err
    assert (tmp_path / "afile").read_text() == "x"


def test_views_get_the_users_umask(tmp_path):
    from automl_tl.atomic import atomic_write_text

    atomic_write_text(tmp_path / "v.json", "{}")
    mask = os.umask(0o022)
    os.umask(mask)
    assert (tmp_path / "v.json").stat().st_mode & 0o777 == 0o666 & ~mask


def test_run_dir_under_proc_is_exit_2(image_folder, capsys, monkeypatch):
    import automl_tl.probe
    from automl_tl.cli import main

    def probe(*a, **k):
        raise AssertionError("the probe ran before the run directory was refused")

    monkeypatch.setattr(automl_tl.probe, "probe_candidates", probe)  # refused first: no minutes of probing
    rc = main(["fit", str(image_folder), "--trials", "1", "--run-dir", "/proc/automl-tl-cannot-be-here", "--quiet"])
    assert rc == 2 and "cannot write to the run directory" in capsys.readouterr().err


def test_latin1_byte_in_a_table_is_read_and_named(pm, tmp_path, caplog):
    rows = [b"text,label", "good morning,a".encode(), "pantal\xf3n roto,b".encode("latin-1"),
            b"nice one,a", b"bad one,b", b"more good,a", b"more bad,b"]
    (tmp_path / "t.csv").write_bytes(b"\n".join(rows) + b"\n")
    with caplog.at_level("WARNING", logger="automl_tl"):
        data = load_data(str(tmp_path / "t.csv"), modalities=pm.modalities, text_column="text",
                         label_column="label")
    # its only line with other than ASCII is not UTF-8: the table is Latin-1 / Windows-1252
    assert len(data.items) == 6 and "pantal\u00f3n roto" in data.items
    assert any("not UTF-8" in r.message and "lines 3" in r.message and "Windows-1252" in r.message
               for r in caplog.records)
    # a UTF-8 table with one stray byte: UTF-8 it stays, the byte replaced and its line named
    rows[1:1] = ["caf\u00e9 cr\u00e8me,a".encode(), "na\u00efve,b".encode()]
    (tmp_path / "u.csv").write_bytes(b"\n".join(rows) + b"\n")
    caplog.clear()
    with caplog.at_level("WARNING", logger="automl_tl"):
        data = load_data(str(tmp_path / "u.csv"), modalities=pm.modalities, text_column="text",
                         label_column="label")
    assert "caf\u00e9 cr\u00e8me" in data.items and any("\ufffd" in t for t in data.items)
    assert any("replaced by" in r.message and "lines 5" in r.message for r in caplog.records)


def test_a_run_dir_inside_the_data_folder_is_not_a_class(pm, image_folder):
    run = image_folder / "myrun"
    (run / "assets").mkdir(parents=True)
    (run / "summary.json").write_text("{}")
    src = next(image_folder.glob("*/*.png"))
    (run / "assets" / "copy.png").write_bytes(src.read_bytes())
    data = load_data(str(image_folder), modalities=pm.modalities)
    assert "myrun" not in data.classes and len(data.classes) == 3


def test_table_paths_outside_its_folder_are_read_as_given(pm, tmp_path):
    """Absolute and ../ paths in a table are read (documented in docs/errors.md); a missing one is
    skipped and counted."""
    images = tmp_path / "images"
    images.mkdir()
    for i in range(6):
        _png(images / f"{i}.png", i * 40)
    (tmp_path / "tables").mkdir()
    paths = [str(images / "0.png"), str(images / "1.png"), "../images/2.png", "../images/3.png",
             str(images / "4.png"), "../images/5.png", "../images/missing.png"]
    pd.DataFrame({"path": paths, "label": ["a", "b", "a", "b", "a", "b", "a"]}).to_csv(
        tmp_path / "tables" / "t.csv", index=False)
    data = _load(pm, tmp_path / "tables" / "t.csv", path_column="path", label_column="label")
    assert len(data.items) == 6 and len(data.skips) == 1


def test_the_one_column_besides_the_known_one_is_used(pm, tmp_path):
    """A table of two columns where only one name is known: the other holds the inputs (texts,
    or file paths when its values name files) or the labels; with more columns it stays an error."""
    texts = [f"review number {i} says {'good' if i % 2 else 'bad'} things" for i in range(8)]
    verdicts = ["pos" if i % 2 else "neg" for i in range(8)]
    pd.DataFrame({"review": texts, "verdict": verdicts}).to_csv(tmp_path / "a.csv", index=False)
    data = _load(pm, tmp_path / "a.csv")  # a known text column: the other one holds the labels
    assert data.modality == "text" and list(data.labels) == verdicts and list(data.items) == texts
    pd.DataFrame({"blurb": texts, "label": verdicts}).to_csv(tmp_path / "b.csv", index=False)
    data = _load(pm, tmp_path / "b.csv")  # a known label column: the other one holds the texts
    assert data.modality == "text" and list(data.items) == texts
    for i in range(8):
        _png(tmp_path / "img" / f"{i}.png", i * 30)
    pd.DataFrame({"picture": [f"img/{i}.png" for i in range(8)], "label": verdicts}).to_csv(
        tmp_path / "c.csv", index=False)
    data = _load(pm, tmp_path / "c.csv")  # ... or the file paths, when its values name files
    assert data.modality == "image" and len(data.items) == 8
    pd.DataFrame({"blurb": texts, "label": verdicts, "source": ["x"] * 8}).to_csv(tmp_path / "d.csv", index=False)
    with pytest.raises(DataError, match="cannot tell which column holds the texts or file paths"):
        _load(pm, tmp_path / "d.csv")
    pd.DataFrame({"review": texts, "verdict": verdicts, "source": ["x"] * 8}).to_csv(tmp_path / "e.csv",
                                                                                   index=False)
    with pytest.raises(DataError, match="cannot tell which column holds the labels"):
        _load(pm, tmp_path / "e.csv")
    data = _load(pm, tmp_path / "e.csv", split_column=None, group_column="source")  # groups are not labels
    assert list(data.labels) == verdicts


def test_tables_as_spreadsheets_write_them(pm, tmp_path):
    """A ';'-separated .csv with a byte-order mark and names the guesses spell differently
    ("Review Text"); two columns whose names say nothing are told apart by their values; a table
    that does not parse is one line naming the file."""
    texts = [f"review number {i} says {'good' if i % 2 else 'bad'} things; really" for i in range(10)]
    verdicts = ["pos" if i % 2 else "neg" for i in range(10)]
    pd.DataFrame({"Review Text": texts, "Verdict": verdicts}).to_csv(tmp_path / "a.csv", sep=";", index=False,
                                                                      encoding="utf-8-sig")
    data = _load(pm, tmp_path / "a.csv")
    assert data.modality == "text" and list(data.items) == texts and list(data.labels) == verdicts
    pd.DataFrame({"polarity": verdicts, "phrase": texts}).to_csv(tmp_path / "b.csv", index=False)
    data = _load(pm, tmp_path / "b.csv")  # neither name is known: the repeating column is the labels
    assert list(data.items) == texts and list(data.labels) == verdicts
    pd.DataFrame({"x": texts, "y2": texts}).to_csv(tmp_path / "c.csv", index=False)
    with pytest.raises(DataError, match="cannot tell which column holds the labels"):
        _load(pm, tmp_path / "c.csv")  # nothing repeats: still the message naming the columns
    # predict reads a new table by the columns the run was fitted from, or else tells them apart too
    from automl_tl.data import prediction_inputs

    text = pm.modalities.get("text")
    pd.DataFrame({"Note": ["n"] * 10, "Review Text": texts, "Verdict": verdicts}).to_csv(tmp_path / "new.csv",
                                                                                       index=False)
    assert data.columns == ("phrase", "polarity")
    assert [x[:2] for x in prediction_inputs([str(tmp_path / "new.csv")], text, None, ("Review Text", "Verdict"))] \
        == list(zip(texts, verdicts))
    assert [x[:2] for x in prediction_inputs([str(tmp_path / "b.csv")], text)] == list(zip(texts, verdicts))
    # a text model's .txt files (and folders of them) stand for their content, shown by their path
    (tmp_path / "docs" / "pos").mkdir(parents=True)
    (tmp_path / "docs" / "pos" / "a.txt").write_text(texts[1])
    (tmp_path / "b.txt").write_text(texts[0])
    got = prediction_inputs([str(tmp_path / "b.txt"), str(tmp_path / "docs"), "b.txt is a text"], text)
    assert [(x.value, x.truth, x.shown) for x in got] == [
        (texts[0], None, str(tmp_path / "b.txt")), (texts[1], "pos", str(tmp_path / "docs" / "pos" / "a.txt")),
        ("b.txt is a text", None, "b.txt is a text")]
    # any other existing file too: an image given to a text model is then skipped as not text
    # (its path was classified as a text); an empty argument is an empty text, not the folder "."
    _png(tmp_path / "photo.png")
    (tmp_path / "notes.md").write_text(texts[2])
    got = prediction_inputs([str(tmp_path / "photo.png"), str(tmp_path / "notes.md"), ""], text)
    assert [x.shown for x in got] == [str(tmp_path / "photo.png"), str(tmp_path / "notes.md"), ""]
    checked = text.check([x.value for x in got])
    assert checked.items == (texts[2],) and [s.reason for s in checked.skips] == [
        "not valid UTF-8 (undecodable bytes in the file)", "empty text"]
    urls = [f"https://example.com/{i}.jpg" for i in range(10)]
    pd.DataFrame({"image_url": urls, "label": verdicts}).to_csv(tmp_path / "u.csv", index=False)
    with pytest.raises(DataError, match="holds web addresses .* reads local files only"):
        _load(pm, tmp_path / "u.csv")  # not classified as texts, not ten "file not found" skips
    assert list(_load(pm, tmp_path / "u.csv", text_column="image_url").items) == urls  # unless said so
    (tmp_path / "sheet.xlsx").write_bytes(b"PK")
    with pytest.raises(DataError, match="Save the sheet as CSV"):
        _load(pm, tmp_path / "sheet.xlsx")
    (tmp_path / "d.csv").write_text('text,label\n"an open quote,pos\n')
    with pytest.raises(DataError) as err:
        _load(pm, tmp_path / "d.csv")
    assert "d.csv: cannot read this table" in str(err.value) and "\n" not in str(err.value)


def test_a_folder_already_split_into_train_val_test(pm, tmp_path, caplog):
    """train/ (and val/) with class sub-folders are searched, val/ as the fixed validation split;
    test/ is never read; classes whose folders hold files directly stay classes."""
    for split, n in (("train", 4), ("val", 2), ("test", 3)):
        for cls, v in (("cat", 40), ("dog", 200)):
            for i in range(n):
                _png(tmp_path / "d" / split / cls / f"{i}.png", v + i)
    with caplog.at_level("WARNING", logger="automl_tl"):
        data = _load(pm, tmp_path / "d")
    assert sorted(set(data.labels)) == ["cat", "dog"] and len(data.items) == 12
    assert not any("/test/" in item for item in data.items)
    assert sorted(data.split) == ["train"] * 8 + ["val"] * 4
    assert all(("/val/" in item) == (part == "val") for item, part in zip(data.items, data.split))
    assert "test/ is left out of the search" in caplog.text
    (tmp_path / "d" / "val").rename(tmp_path / "val-elsewhere")  # train/ + test/: no fixed split
    data = _load(pm, tmp_path / "d")
    assert len(data.items) == 8 and data.split is None
    for cls in ("train", "test"):  # two classes that happen to be called so: files directly inside
        for i in range(3):
            _png(tmp_path / "e" / cls / f"{i}.png", 50 * i)
    assert sorted(set(_load(pm, tmp_path / "e").labels)) == ["test", "train"]


def test_time_budgets_are_read_as_people_write_them():
    import argparse

    from automl_tl.cli import _time_budget

    assert [_time_budget(t) for t in ("90", "90s", "20m", "1.5h", "1h30m", "2 min", "1h 5m 30s")] == \
        [90, 90, 1200, 5400, 5400, 120, 3930]
    for bad in ("1h30", "abc", "-5", "0", "", "1x"):
        with pytest.raises(argparse.ArgumentTypeError):
            _time_budget(bad)
    # the Python API reads them the same way (time_budget="10m" was a TypeError deep in fit)
    from automl_tl import AutoTransfer
    from automl_tl.budget import seconds
    from automl_tl.errors import ConfigError

    assert [seconds(v) for v in (90, 2.5, "10m", "1h30m")] == [90, 2.5, 600, 5400]
    for bad in (0, -1, "1h30", True):
        with pytest.raises(ConfigError):
            seconds(bad)
    with pytest.raises(ConfigError, match="'ten minutes' is not a duration"):
        AutoTransfer(time_budget="ten minutes").fit(["a", "b"], ["x", "y"])


def test_a_table_of_pixel_columns_is_one_short_line_saying_why(pm, tmp_path):
    """A Kaggle-style digits CSV (label + 784 pixel columns): the columns are counted, not all
    listed (a 7 000-character line), and the message says numeric features are not an input."""
    frame = pd.DataFrame(np.random.default_rng(0).integers(0, 255, (20, 784)), columns=[f"pixel{i}" for i in range(784)])
    frame.insert(0, "label", [i % 2 for i in range(20)])
    frame.to_csv(tmp_path / "train.csv", index=False)
    with pytest.raises(DataError) as err:
        _load(pm, tmp_path / "train.csv")
    msg = str(err.value)
    assert "(columns: label, pixel0, pixel1, pixel2, pixel3, pixel4, pixel5, pixel6 and 777 more)" in msg
    assert "785 of its 785 columns are numbers" in msg and len(msg) < 600
    with pytest.raises(DataError, match="no column 'pix' .*pixel6 and 777 more"):
        _load(pm, tmp_path / "train.csv", text_column="pix")
    # a table with one unnamed text column among a few numbers gets no such hint
    pd.DataFrame({"a": ["x y"] * 4, "b": [1, 2, 3, 4], "c": [1, 2, 3, 4], "label": [0, 1, 0, 1]}).to_csv(
        tmp_path / "few.csv", index=False)
    with pytest.raises(DataError) as err:
        _load(pm, tmp_path / "few.csv")
    assert "are numbers" not in str(err.value)


def test_paths_relative_to_the_current_folder_are_found(pm, tmp_path, monkeypatch):
    """data/labels.csv listing data/imgs/a.png, run from the project's root: the paths name files
    from the current folder, not from the table's (every row was 'file not found')."""
    from automl_tl.data import prediction_inputs

    rows = []
    for c in ("cat", "dog"):
        for i in range(3):
            _png(tmp_path / "data" / "imgs" / c / f"{i}.png", 40 * i + (100 if c == "dog" else 0))
            rows.append((f"data/imgs/{c}/{i}.png", c))
    pd.DataFrame(rows, columns=["path", "label"]).to_csv(tmp_path / "data" / "labels.csv", index=False)
    monkeypatch.chdir(tmp_path)
    data = _load(pm, "data/labels.csv")
    assert len(data.items) == 6 and not data.skips
    got = prediction_inputs(["data/labels.csv"], pm.modalities.get("image"))
    assert all(Path(x.value).is_file() for x in got) and [x.truth for x in got] == [r[1] for r in rows]
    # paths that name files from the table's folder are read from there, as before
    pd.DataFrame([(p.removeprefix("data/"), c) for p, c in rows], columns=["path", "label"]).to_csv(
        tmp_path / "data" / "own.csv", index=False)
    monkeypatch.chdir(tmp_path / "data" / "imgs")
    assert len(_load(pm, tmp_path / "data" / "own.csv").items) == 6


def test_a_table_naming_its_files_by_name_or_id_finds_them_under_its_folder(pm, tmp_path):
    """Kaggle's layout: train.csv (image_id, label) beside train_images/. The ids were taken for
    texts and a text classifier was trained on the file names (exit 0, accuracy at chance)."""
    from automl_tl.data import prediction_inputs

    names, labels = [], []
    for i in range(8):
        _png(tmp_path / "train_images" / f"{1000 + i}.png", 30 * i)
        names.append(f"{1000 + i}.png")
        labels.append("a" if i % 2 else "b")
    pd.DataFrame({"image_id": names, "label": labels}).to_csv(tmp_path / "train.csv", index=False)
    pd.DataFrame({"id": [int(n[:-4]) for n in names], "label": labels}).to_csv(tmp_path / "ids.csv", index=False)
    for table in ("train.csv", "ids.csv"):
        data = _load(pm, tmp_path / table)
        assert data.modality == "image" and not data.skips
        assert [Path(x).name for x in data.items] == names and list(data.labels) == labels
        got = prediction_inputs([str(tmp_path / table)], pm.modalities.get("image"))
        assert [Path(x.value).name for x in got] == names and all(Path(x.value).is_file() for x in got)
    # the same names in test_images/ too: train.csv's rows are the files of train_images/
    for i in range(8):
        _png(tmp_path / "test_images" / f"{1000 + i}.png", 255 - 30 * i)
    data = _load(pm, tmp_path / "train.csv")
    assert [Path(x).parent.name for x in data.items] == ["train_images"] * 8
    pd.DataFrame({"image_id": names}).to_csv(tmp_path / "test.csv", index=False)
    got = prediction_inputs([str(tmp_path / "test.csv")], pm.modalities.get("image"))
    assert [Path(x.value).parent.name for x in got] == ["test_images"] * 8
    assert [x.shown for x in got] == names  # shown as the table writes them: a submission's ids
    # file names whose files are nowhere: exit 2 saying so, not a text classifier of file names
    far = tmp_path / "far" / "elsewhere"
    far.mkdir(parents=True)
    pd.DataFrame({"image_id": names, "label": labels}).to_csv(far / "t.csv", index=False)
    with pytest.raises(DataError, match="none of the 8 files it names exists .*1000.png.*--text-column"):
        _load(pm, far / "t.csv")
    assert _load(pm, far / "t.csv", text_column="image_id").modality == "text"  # if said


def test_a_table_in_its_own_folder_beside_the_files(pm, tmp_path, caplog):
    """ESC-50 (meta/esc50.csv: filename, fold, target, category; the clips in audio/) and
    UrbanSound8K (metadata/UrbanSound8K.csv: slice_file_name, ..., classID, class; audio/fold1/):
    every row was "file not found", the second table's file column was not found at all, and
    ESC-50's labels were its numeric codes."""
    from automl_tl.data import prediction_inputs

    names = ["dog", "rain", "dog", "rain", "dog", "rain", "dog", "rain"]
    files = []
    for i, name in enumerate(names):
        files.append(f"{i % 2 + 1}-{100 + i}-A-{i % 2}.png")
        _png(tmp_path / "esc" / "audio" / files[-1], 30 * i)
        _png(tmp_path / "us8k" / "audio" / f"fold{i % 2 + 1}" / files[-1], 30 * i)
    (tmp_path / "esc" / "meta").mkdir()
    pd.DataFrame({"filename": files, "fold": [1, 2] * 4, "target": [i % 2 for i in range(8)], "category": names}
                 ).to_csv(tmp_path / "esc" / "meta" / "esc50.csv", index=False)
    (tmp_path / "us8k" / "metadata").mkdir()
    pd.DataFrame({"slice_file_name": files, "fsID": range(8), "start": 0.0, "salience": 1, "fold": [1, 2] * 4,
                  "classID": [i % 2 for i in range(8)], "class": names}
                 ).to_csv(tmp_path / "us8k" / "metadata" / "us8k.csv", index=False)
    for table, folder in (("esc/meta/esc50.csv", "esc/audio"), ("us8k/metadata/us8k.csv", "us8k/audio")):
        caplog.clear()
        data = _load(pm, tmp_path / table)
        assert data.found is not None and data.found.how == "column 'fold'"  # the folds keep related clips together
        assert [Path(x).name for x in data.items] == files and not data.skips
        assert all(str(tmp_path / folder) in x for x in data.items)
        assert list(data.labels) == names  # the names, not the codes 0 and 1
        got = prediction_inputs([str(tmp_path / table)], pm.modalities.get("image"), None, data.columns)
        assert [(Path(x.value).name, x.truth) for x in got] == list(zip(files, names))
    # a label column named by the user is read as given, codes and all
    assert set(_load(pm, tmp_path / "esc/meta/esc50.csv", label_column="target").labels) == {"0", "1"}


def test_a_table_without_a_header_row_keeps_its_first_row(pm, tmp_path):
    """A .csv written without column names (``direct free kick,SOCCER``): its first line was taken
    for the names and that example lost (in predict: the first text of a one-column file never
    classified). A first line that reads as data is read as a row."""
    from automl_tl.data import prediction_inputs

    texts = [f"review number {i} of the film" for i in range(12)]
    labels = ["pos", "neg", "meh"] * 4
    (tmp_path / "t.csv").write_text("".join(f"{t},{lab}\n" for t, lab in zip(texts, labels)))
    data = _load(pm, tmp_path / "t.csv")  # 'pos' names the labels column and is one of its values
    assert list(data.items) == texts and list(data.labels) == labels
    assert data.columns == ("column_1", "column_2")
    files = [tmp_path / f"{i}.png" for i in range(12)]
    for f in files:
        _png(f)
    (tmp_path / "p.csv").write_text("".join(f"{f.name},{lab}\n" for f, lab in zip(files, labels)))
    assert list(_load(pm, tmp_path / "p.csv").items) == [str(f) for f in files]  # '0.png' is a file
    # predict: a one-column file of texts; its first line is a text of two words or more
    text = pm.modalities.get("text")
    (tmp_path / "new.csv").write_text("great fun\nawful\nfine enough\n")
    assert [x.value for x in prediction_inputs([str(tmp_path / "new.csv")], text, None, ("text", "label"))] \
        == ["great fun", "awful", "fine enough"]
    # a header stays a header: names automl-tl knows, a name the user gave, or names that say nothing
    (tmp_path / "h.csv").write_text("text\ngreat fun\nawful\n")
    assert [x.value for x in prediction_inputs([str(tmp_path / "h.csv")], text)] == ["great fun", "awful"]
    (tmp_path / "g.csv").write_text("Customer Said,Verdict\n" + "".join(f"{t},{lab}\n" for t, lab in
                                                                     zip(texts, labels)))
    assert list(_load(pm, tmp_path / "g.csv").items) == texts
    (tmp_path / "v.csv").write_text("phrase of it all,pos\n" + "".join(f"{t},{lab}\n" for t, lab in
                                                                       zip(texts, labels)))
    assert list(_load(pm, tmp_path / "v.csv", text_column="phrase of it all").items) == texts


def test_row_numbers_written_by_pandas_are_left_out(pm, tmp_path):
    """``df.to_csv("t.csv")`` writes the row numbers as a first column without a name: as a third
    column it stopped the two-column guess ("cannot tell which column holds the labels")."""
    texts = [f"review {i} of the film, {'good' if i % 2 else 'bad'}" for i in range(12)]
    labels = ["pos" if i % 2 else "neg" for i in range(12)]
    pd.DataFrame({"review_body": texts, "stars": labels}).to_csv(tmp_path / "t.csv")
    data = _load(pm, tmp_path / "t.csv")
    assert list(data.items) == texts and list(data.labels) == labels and data.columns == ("review_body", "stars")
    # a first column without a name that is not a count of rows stays a column
    pd.DataFrame({"": [f"nowhere-{i}.png" for i in range(12)], "stars": labels}).to_csv(tmp_path / "u.csv",
                                                                                     index=False)
    with pytest.raises(DataError, match="none of the 12 files it names exists"):
        _load(pm, tmp_path / "u.csv")


def test_tables_as_found_on_data_sites(pm, tmp_path):
    """The SMS spam table (``v1,v2,,,``: labels, texts and three stray empty columns) and the
    airline tweets (``airline_sentiment`` among a dozen columns): "cannot tell which column holds
    the labels"."""
    texts = [f"message {i}: {'win a prize now' if i % 2 else 'see you at lunch'}" for i in range(12)]
    labels = ["spam" if i % 2 else "ham" for i in range(12)]
    (tmp_path / "spam.csv").write_text("v1,v2,,,\n" + "".join(
        f"{lab},{t},{'x' if i == 3 else ''},,\n" for i, (t, lab) in enumerate(zip(texts, labels))))
    data = _load(pm, tmp_path / "spam.csv")
    assert list(data.items) == texts and list(data.labels) == labels and data.columns == ("v2", "v1")
    pd.DataFrame({"tweet_id": range(12), "airline_sentiment": labels, "airline_sentiment_confidence": 1.0,
                  "airline": "X", "text": texts}).to_csv(tmp_path / "air.csv", index=False)
    data = _load(pm, tmp_path / "air.csv")
    assert list(data.items) == texts and list(data.labels) == labels
    # two names ending like a guess: no guess, the message naming the columns
    pd.DataFrame({"user_label": labels, "gold_label": labels, "text": texts}).to_csv(tmp_path / "two.csv",
                                                                                   index=False)
    with pytest.raises(DataError, match="cannot tell which column holds the labels"):
        _load(pm, tmp_path / "two.csv")


def test_column_names_and_labels_written_two_ways(pm, tmp_path, caplog):
    """``--text-column review`` for a column ``Review`` was "no column 'review'"; labels written
    ``Positive`` and ``positive`` became two classes without a word."""
    texts = [f"review {i} of the film" for i in range(12)]
    labels = ["Positive", "positive", "negative"] * 4
    pd.DataFrame({"Review": texts, "Verdict": labels, "Note": "x"}).to_csv(tmp_path / "t.csv", index=False)
    data = _load(pm, tmp_path / "t.csv", text_column="review", label_column="verdict")
    assert list(data.items) == texts and sorted(data.class_counts()) == ["Positive", "negative", "positive"]
    assert "labels 'Positive' / 'positive' differ only in case or spacing" in caplog.text
    with pytest.raises(DataError, match="no column 'reviews' for the texts"):
        _load(pm, tmp_path / "t.csv", text_column="reviews", label_column="Verdict")


def test_a_competition_folder_is_not_read_as_classes_of_its_subfolders(pm, tmp_path):
    """Kaggle's folder (train.csv, sample_submission.csv, train_images/, test_images/) given as
    the data: it was read as two classes, train_images and test_images, and fitted (exit 0)."""
    for i in range(6):
        _png(tmp_path / "comp" / "train_images" / f"{i}.png", 40 * i)
        _png(tmp_path / "comp" / "test_images" / f"{10 + i}.png", 40 * i)
    pd.DataFrame({"image_id": [f"{i}.png" for i in range(6)], "label": ["a", "b"] * 3}).to_csv(
        tmp_path / "comp" / "train.csv", index=False)
    pd.DataFrame({"image_id": [f"{10 + i}.png" for i in range(6)], "label": 0}).to_csv(
        tmp_path / "comp" / "sample_submission.csv", index=False)
    with pytest.raises(DataError, match=r"holds train.csv, sample_submission.csv with a column of labels .* "
                                        r"\(automl-tl fit .*train.csv\)"):
        _load(pm, tmp_path / "comp")
    assert set(_load(pm, tmp_path / "comp" / "train.csv").labels) == {"a", "b"}
    # a table whose labels are the class folders' names agrees with them (the audio demo's metadata.csv)
    for c in ("cat", "dog"):
        for i in range(3):
            _png(tmp_path / "pets" / c / f"{i}.png", 40 * i + (c == "dog"))
    pd.DataFrame({"path": [f"cat/{i}.png" for i in range(3)], "label": "cat"}).to_csv(
        tmp_path / "pets" / "metadata.csv", index=False)
    assert sorted(set(_load(pm, tmp_path / "pets").labels)) == ["cat", "dog"]


def test_paths_written_on_windows_are_read(pm, tmp_path):
    """A table written on Windows lists ``imgs\\cat\\1.png``: every row was "file not found"."""
    from automl_tl.data import prediction_inputs

    rel = []
    for c in ("cat", "dog"):
        for i in range(3):
            _png(tmp_path / "imgs" / c / f"{i}.png", 40 * i + (c == "dog") * 7)
            rel.append(f"imgs\\{c}\\{i}.png")
    pd.DataFrame({"path": rel, "label": ["cat"] * 3 + ["dog"] * 3}).to_csv(tmp_path / "t.csv", index=False)
    data = _load(pm, tmp_path / "t.csv")
    assert not data.skips and [Path(x).relative_to(tmp_path).as_posix() for x in data.items] == \
        [r.replace("\\", "/") for r in rel]
    got = prediction_inputs([str(tmp_path / "t.csv")], pm.modalities.get("image"), None, data.columns)
    assert all(Path(x.value).is_file() for x in got) and [x.shown for x in got] == rel


def test_a_flat_folder_whose_file_names_say_the_class(pm, tmp_path):
    """Kaggle's dogs-vs-cats train/ (cat.0.jpg, dog.0.jpg, ...) and Oxford pets (Abyssinian_1.jpg):
    "found 8 files but no class sub-folders". The names' classes label them; names that say no
    class (IMG_0001.jpg) are still the message saying how to lay the folder out."""
    for i in range(4):
        _png(tmp_path / "flat" / f"cat.{i}.png", 30 * i)
        _png(tmp_path / "flat" / f"dog.{i}.png", 30 * i + 5)
    _png(tmp_path / "flat" / "notes.png", 9)  # names no class: a counted skip
    data = _load(pm, tmp_path / "flat")
    assert data.class_counts() == {"cat": 4, "dog": 4}
    assert [s.reason for s in data.skips] == ["no class in its name"]
    for i in range(4):
        _png(tmp_path / "camera" / f"IMG_{i:04d}.png", 30 * i)
    with pytest.raises(DataError, match="found 4 files but no class sub-folders"):
        _load(pm, tmp_path / "camera")


def test_a_folder_named_unlabelled_is_not_a_class(pm, tmp_path, caplog):
    """aclImdb's train/ holds pos/, neg/ and unsup/ (50 000 unlabelled reviews): unsup was fitted as a
    third class, the largest. A sub-folder whose name says unlabelled is left out, with a warning."""
    for split in ("train", "test"):
        for c in ("pos", "neg"):
            for i in range(3):
                _png(tmp_path / "acl" / split / c / f"{i}_7.png", 40 * i + (c == "neg") * 9)
    for i in range(4):
        _png(tmp_path / "acl" / "train" / "unsup" / f"{i}_0.png", 11 * i)
    with caplog.at_level("WARNING", logger="automl_tl"):
        data = _load(pm, tmp_path / "acl")
    assert data.class_counts() == {"neg": 3, "pos": 3}
    assert any("unsup/ is left out" in r.getMessage() for r in caplog.records)


def test_one_folder_inside_holding_the_classes(pm, tmp_path, caplog):
    """An archive unpacked as flowers/flowers/daisy/...: "only one class ('flowers')". With one
    folder inside and nothing else to read, that folder's sub-folders are the classes."""
    for c in ("daisy", "rose"):
        for i in range(3):
            _png(tmp_path / "flowers" / "flowers" / c / f"{i}.png", 40 * i + (c == "rose") * 9)
    (tmp_path / "flowers" / "LICENSE.txt").write_text("CC-BY\n")  # not an input of the images found
    with caplog.at_level("INFO", logger="automl_tl"):
        data = _load(pm, tmp_path / "flowers")
    assert data.class_counts() == {"daisy": 3, "rose": 3}
    assert any("one folder inside, flowers/" in r.getMessage() for r in caplog.records)
    for i in range(3):
        _png(tmp_path / "one" / "cat" / "indoor" / f"{i}.png", 40 * i)
    with pytest.raises(DataError, match="only one class"):  # one sub-folder inside: still one class
        _load(pm, tmp_path / "one")
