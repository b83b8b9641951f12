"""A table file as a DataFrame: encodings, delimiters, header rows, Arrow and Parquet, Hugging Face
saved datasets and folders of tables by split."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Sequence

from automl_tl.data._cells import _missing
from automl_tl.data._columns import (LABEL_COLUMN_GUESSES, PATH_COLUMN_GUESSES, TEXT_COLUMN_GUESSES,
                                     _all_numbers, _plain_name)
from automl_tl.data._files import _is_file
from automl_tl.data._held import with_embedded_files
from automl_tl.data._messages import listed
from automl_tl.data._subfolders import _SPLIT_FOLDERS, _class_dirs
from automl_tl.data._text import _legacy_text
from automl_tl.errors import DataError

TABLE_SUFFIXES = (".csv", ".tsv", ".parquet", ".pq", ".jsonl", ".json", ".arrow")
_log = logging.getLogger("automl_tl")


def _table_encoding(path: Path, say: bool = True) -> str:
    """The encoding to read a text table with: UTF-8, unless more of its lines with other than
    ASCII bytes fail as UTF-8 than pass (a Latin-1 or Windows-1252 file: Kaggle's SMS spam table,
    where every accented letter and pound sign became U+FFFD): then :func:`_legacy_text`'s. ``say``:
    warn which lines are not UTF-8 (read as U+FFFD) or which encoding the table was read with."""
    bad, good = [], 0
    with open(path, "rb") as fh:
        for number, line in enumerate(fh, start=1):
            if line.isascii():
                continue
            try:
                line.decode("utf-8")
                good += 1
            except UnicodeDecodeError:
                bad.append(number)
    if not bad:
        return "utf-8"
    shown = ", ".join(map(str, bad[:10])) + (", ..." if len(bad) > 10 else "")
    if len(bad) > good:
        encoding = _legacy_text(path.read_bytes())[1]
        if say:
            _log.warning("%s: not UTF-8 (%d line(s) are not, lines %s): read as %s. If its accented letters read "
                         "wrong, save it as UTF-8", path, len(bad), shown, encoding)
        return {"Windows-1252": "cp1252", "Latin-1": "latin-1"}[encoding]
    if say:
        _log.warning(
            "%s: %d line(s) hold bytes that are not UTF-8 (lines %s); they were replaced by \ufffd. "
            "Save the table as UTF-8 to keep those characters.", path, len(bad), shown)
    return "utf-8"


def _read_table(path: Path, named: Sequence[str | None] = (), texts: bool = False):
    """A table file as a DataFrame of strings (.csv / .tsv) or as stored. A .csv / .tsv whose first
    line reads as data (:func:`_header_is_data`; ``named``: the columns the user named, which
    say it has a header; ``texts``: a one-column table holds texts) is read as having none, its
    columns named ``column_1``, ``column_2``, ..."""
    frame = _read_table_as(path)
    plain = {_plain_name(str(c)) for c in frame.columns}
    if path.suffix.lower() in (".csv", ".tsv") and not any(_plain_name(n) in plain for n in named if n):
        why = _header_is_data(frame, path.parent, 2 if texts and frame.shape[1] == 1 else 4)
        if why:
            frame = _read_table_as(path, header=None)
            frame.columns = [f"column_{i + 1}" for i in range(frame.shape[1])]
            _log.info("%s: its first line is data, not column names (%s): read as a table without a "
                      "header row; its columns are named %s", path, why, listed(list(frame.columns)))
    return _without_row_numbers(_without_empty_unnamed(frame, path), path)


def _without_empty_unnamed(frame, path: Path):
    """``frame`` less the columns without a name that are nearly all empty (a spreadsheet's stray
    trailing commas: the SMS spam table's ``v1,v2,,,``): as extra columns they hid which of the
    others is which."""
    unnamed = [c for c in frame.columns if str(c).startswith("Unnamed: ")]
    empty = [c for c in unnamed if frame[c].isna().mean() > 0.9]
    if not empty or len(empty) == frame.shape[1]:
        return frame
    _log.info("%s: %d column(s) without a name and nearly all empty left out", path, len(empty))
    return frame.drop(columns=empty)


def _without_row_numbers(frame, path: Path):
    """``frame`` less a first column of row numbers without a name (what pandas' ``to_csv`` writes
    unless told ``index=False``): it is neither inputs nor labels, and as a third column it hid
    which of the other two is which."""
    import pandas as pd

    if frame.shape[1] < 2 or not str(frame.columns[0]).startswith("Unnamed: 0"):
        return frame
    numbers = pd.to_numeric(frame.iloc[:, 0], errors="coerce")
    start = numbers.iloc[0] if len(numbers) else None
    if start not in (0, 1) or not numbers.diff().iloc[1:].eq(1).all():
        return frame
    _log.info("%s: its first column (no name, %d..%d) holds row numbers and is left out", path,
              int(start), int(start) + len(frame) - 1)
    return frame.iloc[:, 1:]


def _header_is_data(frame, folder: Path, sentence_words: int = 4) -> str:
    """Why the column names of a table read from a .csv look like its first row of data, or "":
    a name that is one of its own column's repeating values (``cat.jpg,cat``: the label ``cat``),
    that names an existing file, or that is a sentence (``sentence_words`` words or more). A table
    with a name automl-tl guesses from (``text``, ``label``, ``path``, ...) has a header."""
    cols = [str(c) for c in frame.columns]
    guesses = set(PATH_COLUMN_GUESSES) | set(TEXT_COLUMN_GUESSES) | set(LABEL_COLUMN_GUESSES)
    if not cols or any(_plain_name(c) in guesses for c in cols):
        return ""
    for c in cols:
        name = re.sub(r"\.\d+$", "", c).strip()  # pandas writes a repeated name "x.1"
        if not name or name.startswith("Unnamed: "):  # an empty header cell
            continue
        values = frame[c].head(1000).dropna().astype(str).str.strip()  # enough to see a repeating value
        if len(values) and values.nunique() <= len(values) / 2 and name in set(values):
            return f"{name!r} is also a value of that column"
        if len(name.split()) >= sentence_words:
            return f"{name[:40]!r} reads as a text"
        if Path(name).suffix and any(_is_file(p) for p in (folder / name, Path(name))):
            return f"{name!r} is a file"
    return ""


def _read_table_as(path: Path, header: int | None = 0):
    import pandas as pd

    suffix = path.suffix.lower()
    try:
        if suffix in (".csv", ".tsv"):
            encoding = _table_encoding(path, say=header is not None)  # said once: not again on a re-read

            def read(sep):
                return pd.read_csv(path, sep=sep, dtype=str, keep_default_na=True, encoding=encoding,
                                   encoding_errors="replace", header=header)

            if suffix == ".tsv":
                return read("\t")
            # a comma first; only a table that does not parse, or parses as one column, is
            # read with the delimiter the standard library's sniffer finds (';' from spreadsheets)
            try:
                frame, error = read(","), None
            except pd.errors.ParserError as exc:
                frame, error = None, exc
            if frame is None or frame.shape[1] == 1:
                sep = _csv_delimiter(path)
                if sep != ",":
                    return read(sep)
                if error is not None:
                    raise error
            return frame
        if suffix in (".parquet", ".pq", ".arrow"):
            return _arrow_frame(_arrow_table(path), path)
        return pd.read_json(path, lines=suffix == ".jsonl", dtype=False)
    except Exception as exc:  # pandas' parser errors have no common base outside ValueError
        # one line on the terminal: pandas' messages often end in a newline
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())
        raise DataError(f"{path}: cannot read this table ({reason}).") from exc


def _arrow_table(path: Path):
    """A Parquet file, or an Arrow file as Hugging Face ``datasets`` writes them (IPC stream) or
    as ``pyarrow.feather`` does (IPC file), as a ``pyarrow.Table``."""
    import pyarrow as pa

    if path.suffix.lower() != ".arrow":
        import pyarrow.parquet as pq

        return pq.read_table(path)
    with pa.memory_map(str(path)) as source:
        try:
            return pa.ipc.open_stream(source).read_all()
        except pa.ArrowInvalid:
            source.seek(0)
            return pa.ipc.open_file(source).read_all()


def _arrow_frame(table, path: Path):
    """``table`` as a DataFrame, a Hugging Face ``ClassLabel`` column's codes as their names (the
    names are kept in the schema: ``neg`` / ``pos``, not ``0`` / ``1``; ``-1``, an unlabelled row
    as GLUE's test splits write them, as missing), its images or clips held inside the table as
    files (:func:`with_embedded_files`)."""
    import json

    frame = with_embedded_files(table.to_pandas(), str(path))
    try:
        info = json.loads((table.schema.metadata or {}).get(b"huggingface", b"{}"))
        features = (info.get("info") or info).get("features") or {}
    except (ValueError, AttributeError):  # metadata written by something else: the codes stay
        return frame
    for column, feature in features.items() if isinstance(features, dict) else ():
        names = feature.get("names") if isinstance(feature, dict) and feature.get("_type") == "ClassLabel" else None
        if names and column in frame.columns and _all_numbers(frame[column].dropna()):
            frame[column] = [names[int(v)] if not _missing(v) and 0 <= int(v) < len(names) else None
                             for v in frame[column]]
    return frame


def _saved_dataset(root: Path):
    """A folder written by Hugging Face ``datasets``' ``save_to_disk`` as ``(frame, split column,
    root)``, as :func:`_split_tables` gives its tables, else None: a ``Dataset`` (``state.json``
    naming its ``.arrow`` files) as its rows (no split column); a ``DatasetDict``
    (``dataset_dict.json`` naming its splits, one such folder each) with a column saying each
    row's split (``train`` / ``validation`` / ``test``: read as a split column is)."""
    import json

    import pandas as pd

    def one(folder: Path):
        try:
            state = json.loads((folder / "state.json").read_text(encoding="utf-8"))
            files = [folder / f["filename"] for f in state["_data_files"]]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise DataError(f"{folder}: a saved Hugging Face dataset whose state.json cannot be read "
                            f"({type(exc).__name__}: {exc}).") from exc
        return pd.concat([_read_table(f) for f in files], ignore_index=True) if files else pd.DataFrame()

    if (root / "state.json").is_file() and any(root.glob("*.arrow")):
        return one(root), None, root
    if not (root / "dataset_dict.json").is_file():
        return None
    try:
        splits = json.loads((root / "dataset_dict.json").read_text(encoding="utf-8"))["splits"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{root}: a saved Hugging Face DatasetDict whose dataset_dict.json cannot be read "
                        f"({type(exc).__name__}: {exc}).") from exc
    _log.info("%s: a saved Hugging Face DatasetDict: splits %s (test rows are left out of the search)", root,
              listed([str(n) for n in splits]))
    return *_concat_splits([(name, one(root / name)) for name in splits]), root


def _concat_splits(parts):
    """``(frame, column)``: the splits' frames ``[(split name, frame), ...]`` as one, ``column``
    saying each row's split (``split`` unless a table has a column of that name)."""
    import pandas as pd

    taken = {str(c) for _, frame in parts for c in frame.columns}
    column = next(c for c in ("split", "split_", "automl_tl_split") if c not in taken)
    return pd.concat([frame.assign(**{column: name}) for name, frame in parts], ignore_index=True), column


#: a table named by its split: ``train.csv``, ``test.jsonl``, the Hub's ``train-00000-of-00002.parquet``
_SPLIT_TABLE = re.compile(r"^(?P<split>[A-Za-z]+)(?:-\d+-of-\d+)?$")


def _tables_by_split(root: Path):
    """``(folder, {split: [table, ...]})`` for a folder of tables by split, as a Hugging Face dataset
    repository holds them (``data/train-00000-of-00002.parquet``, ``data/test-...``; or
    ``plain_text/train/0000.parquet`` as the Hub's Parquet conversion) or as a text dataset often
    comes (``train.csv`` and ``test.csv``). Looked for in ``root`` and, when ``root`` holds
    no table and one sub-folder, in that. None unless every table there is named by its split (a
    ``sample_submission.csv`` beside them: a Kaggle folder, which says which table to give) and
    one is a training split."""
    def tables(folder: Path) -> list[Path]:
        return sorted(f for f in folder.iterdir() if f.is_file() and f.suffix.lower() in TABLE_SUFFIXES
                      and not f.name.startswith("."))

    def by_split(folder: Path) -> dict[str, list[Path]] | None:
        found: dict[str, list[Path]] = {}
        for f in tables(folder):
            m = _SPLIT_TABLE.match(f.stem)
            if not m or m.group("split").lower() not in _SPLIT_FOLDERS:
                return None
            found.setdefault(m.group("split"), []).append(f)
        for d in _class_dirs(folder):
            inside = tables(d)
            if d.name.lower() in _SPLIT_FOLDERS and inside and not _class_dirs(d):
                found.setdefault(d.name, []).extend(inside)
        return found if "train" in {_SPLIT_FOLDERS[n.lower()] for n in found} else None

    folder, found = root, by_split(root)
    subdirs = _class_dirs(root)
    if found is None and not tables(root) and len(subdirs) == 1:
        folder, found = subdirs[0], by_split(subdirs[0])
    return None if found is None else (folder, found)


def _split_tables(root: Path):
    """``(frame, split column, folder)`` of the tables :func:`_tables_by_split` finds, else None."""
    got = _tables_by_split(root)
    if got is None:
        return None
    folder, found = got
    _log.info("%s: tables by split: %s (test rows are left out of the search)", folder,
              ", ".join(f"{name} ({len(files)} file{'s' * (len(files) > 1)})" for name, files in found.items()))
    import pandas as pd

    frame, column = _concat_splits([(name, pd.concat([_read_table(f) for f in files], ignore_index=True))
                                    for name, files in found.items()])
    return frame, column, folder


def _csv_delimiter(path: Path) -> str:
    """The delimiter ``csv.Sniffer`` finds among ``, ; \\t |`` on the first lines; a comma when it
    cannot tell."""
    import csv

    with open(path, encoding="utf-8", errors="replace", newline="") as fh:
        head = fh.read(64 * 1024)
    try:
        return csv.Sniffer().sniff(head, delimiters=",;\t|").delimiter
    except csv.Error:  # one column, or nothing it can tell
        return ","
