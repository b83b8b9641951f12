"""From what the user hands over (a folder, a table, a DataFrame, lists) to :class:`LabelledData`.

Every input that cannot be used is either a clear :class:`DataError` (nothing usable, one class,
wrong columns, ...) or a counted :class:`Skip` that the profile and the summary report. Nothing
is dropped silently.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import math
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, NamedTuple, Sequence

import numpy as np

from automl_tl.errors import ConfigError, DataError
from automl_tl.modalities import Skip

__all__ = ["LabelledData", "load_data", "evaluation_plan", "listed", "with_embedded_files", "held_inputs_as_files",
           "TABLE_SUFFIXES"]

TABLE_SUFFIXES = (".csv", ".tsv", ".parquet", ".pq", ".jsonl", ".json", ".arrow")
_log = logging.getLogger("automl_tl")

PATH_COLUMN_GUESSES = ("path", "file", "filename", "filepath", "image", "audio", "image_path", "file_name",
                       "file_path", "image_file", "audio_path", "audio_file")
TEXT_COLUMN_GUESSES = ("text", "sentence", "review", "document", "content", "comment", "tweet", "message",
                       "utterance", "body")
LABEL_COLUMN_GUESSES = ("label", "labels", "class", "target", "category", "y", "sentiment", "intent", "topic",
                        "emotion", "tag")


@dataclass(frozen=True, kw_only=True)
class LabelledData:
    """Usable inputs with their labels, plus everything that was left out and why."""

    modality: str
    items: tuple[Any, ...]
    labels: tuple[str, ...]
    source: str
    skips: tuple[Skip, ...] = ()
    groups: tuple[str, ...] | None = None
    split: tuple[str, ...] | None = None  # "train" / "val" per item, when the user fixed the split
    #: a table's (inputs, labels) column names: ``predict`` reads new tables by them
    columns: tuple[str, str] | None = None
    #: the sources the items seem to come from (speakers, sessions), found when ``groups`` was not
    #: given (:mod:`automl_tl.sources`); the run validates by them unless told not to
    found: Any = None

    @property
    def classes(self) -> list[str]:
        return sorted(set(self.labels))

    def class_counts(self) -> dict[str, int]:
        counts = Counter(self.labels)
        return {c: counts[c] for c in self.classes}

    def fingerprint(self) -> str:
        """Identifies the exact inputs: texts by content, files by path, size and mtime
        (computed once: every trial asks, and 60 000 files take a noticeable moment to stat)."""
        known = self.__dict__.get("_fingerprint")
        if known is None:
            known = self._fingerprint_now()
            object.__setattr__(self, "_fingerprint", known)
        return known

    def subset(self, index) -> "LabelledData":
        """The items at positions ``index`` (a sample), with their labels, groups and split."""
        def pick(seq):
            return None if seq is None else tuple(seq[i] for i in index)

        return LabelledData(modality=self.modality, items=pick(self.items), labels=pick(self.labels),
                            source=self.source, groups=pick(self.groups), split=pick(self.split),
                            columns=self.columns, found=None if self.found is None else self.found.subset(index))

    def _fingerprint_now(self) -> str:
        h = hashlib.sha256()
        for item in self.items:
            h.update(str(item).encode("utf-8", "surrogateescape"))
            if isinstance(item, str) and os.path.isabs(item) and os.path.exists(item):
                st = os.stat(item)
                h.update(f":{st.st_size}:{int(st.st_mtime)}".encode())
            h.update(b"\0")
        return h.hexdigest()[:20]

    def labels_fingerprint(self) -> str:
        return hashlib.sha256("\0".join(self.labels).encode("utf-8", "surrogateescape")).hexdigest()[:20]

    def skip_summary(self) -> dict:
        by_reason = Counter(_reason_kind(s.reason) for s in self.skips)
        return {"count": len(self.skips), "by_reason": dict(by_reason),
                "examples": [s.to_dict() for s in self.skips[:20]]}


def _reason_kind(reason: str) -> str:
    return reason.split(":", 1)[0].strip()


# ---------------------------------------------------------------------------------------- loading
def load_data(source: Any, labels: Sequence[Any] | None = None, *, modalities, modality: str | None = None,
              text_column: str | None = None, label_column: str | None = None,
              path_column: str | None = None, group_column: str | None = None,
              split_column: str | None = None, progress: bool = False) -> LabelledData:
    """Load a dataset from a folder of class sub-folders, a table file, a DataFrame, or lists.

    :param source: a folder (one sub-folder per class), a ``.csv/.tsv/.parquet/.jsonl`` table, a
        pandas DataFrame, or a sequence of inputs (then ``labels`` is required).
    :param modalities: the :class:`ModalityRegistry` that knows which inputs are which.
    :param split_column: a table column of ``train`` / ``val`` fixing the validation split.
    """
    import pandas as pd

    if isinstance(source, pd.DataFrame):
        return _from_frame(with_embedded_files(source.copy(), "<DataFrame>"), "<DataFrame>", None,
                           modalities=modalities, modality=modality,
                           text_column=text_column, label_column=label_column,
                           path_column=path_column, group_column=group_column,
                           split_column=split_column, progress=progress)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise DataError(f"{path}: no such file or folder. Give a folder with one sub-folder per "
                            f"class, or a table ({', '.join(TABLE_SUFFIXES)}).")
        saved = (_saved_dataset(path) or _split_tables(path)) if path.is_dir() else None
        if path.is_dir() and saved is None:
            return _from_folder(path, modalities=modalities, modality=modality, progress=progress)
        if saved is not None or path.suffix.lower() in TABLE_SUFFIXES:
            frame, splits, base = saved or (_read_table(
                path, (text_column, label_column, path_column, group_column, split_column)), None, path.parent)
            return _from_frame(frame, str(path), base, modalities=modalities, modality=modality,
                               text_column=text_column, label_column=label_column,
                               path_column=path_column, group_column=group_column,
                               split_column=split_column or splits, progress=progress)
        hint = (" Save the sheet as CSV (File > Save As > .csv) and give that."
                if path.suffix.lower() in (".xlsx", ".xls", ".ods", ".numbers") else "")
        raise DataError(f"{path}: not a folder and not a table ({', '.join(TABLE_SUFFIXES)}).{hint}")
    if labels is None:
        raise DataError("inputs were given as a list without labels: pass labels too (fit(X, y)).")
    items = list(source)
    if len(items) != len(labels):
        raise DataError(f"{len(items)} inputs but {len(labels)} labels: they must pair up one to one.")
    items = (held_inputs_as_files(items, "<lists>") or (items,))[0]
    frame = pd.DataFrame({"__input": items, "__label": list(labels)})
    mod = modality or _guess_inline_modality(items, modalities)
    if mod is not None and modalities.get(mod).inline:
        return _from_frame(frame, "<lists>", None, modalities=modalities, modality=mod,
                           text_column="__input", label_column="__label", progress=progress)
    return _from_frame(frame, "<lists>", None, modalities=modalities, modality=mod,
                       path_column="__input", label_column="__label", progress=progress)


def _guess_inline_modality(items, modalities) -> str | None:
    sample = [x for x in items[:50] if isinstance(x, str)]
    if sample and all(modalities.for_extension(Path(x).suffix) is None for x in sample):
        inline = [n for n in modalities.names() if modalities.get(n).inline]
        return inline[0] if inline else None
    return None


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


#: the first bytes of a file -> its suffix, for a file held inside a table without a name
_MAGIC = ((b"\x89PNG", ".png"), (b"\xff\xd8", ".jpg"), (b"GIF8", ".gif"), (b"BM", ".bmp"), (b"fLaC", ".flac"),
          (b"OggS", ".ogg"), (b"ID3", ".mp3"), (b"\xff\xfb", ".mp3"), (b"II*\x00", ".tif"), (b"MM\x00*", ".tif"))


def _embedded_suffix(data: bytes, name: str | None) -> str:
    suffix = Path(name or "").suffix.lower()
    if suffix:
        return suffix
    if data[:4] == b"RIFF":
        return {b"WAVE": ".wav", b"WEBP": ".webp"}.get(data[8:12], "")
    return next((s for magic, s in _MAGIC if data.startswith(magic)), "")


def _image_png(value) -> bytes | None:
    """An image held in memory (a PIL image; an array H x W, H x W x 1/3/4 or channels first, of
    0-255 or of 0-1 floats, as ``keras.datasets`` and torchvision give them) as PNG bytes; None
    for anything else."""
    import io

    from PIL import Image

    if not isinstance(value, Image.Image):
        if not isinstance(value, np.ndarray) or value.ndim not in (2, 3) or value.dtype == object:
            return None
        a = value
        if a.ndim == 3 and a.shape[0] in (1, 3, 4) and a.shape[-1] not in (1, 3, 4):
            a = np.moveaxis(a, 0, -1)  # channels first (torchvision)
        if a.ndim == 3 and a.shape[-1] == 1:
            a = a[..., 0]
        if (a.ndim == 3 and a.shape[-1] not in (3, 4)) or min(a.shape[:2]) < 2:
            return None
        if a.dtype != np.uint8:
            a = np.nan_to_num(a.astype(np.float64))
            a = np.clip(np.rint(a * 255 if a.size and a.min() >= 0 and a.max() <= 1 else a), 0, 255).astype(np.uint8)
        value = Image.fromarray(a)
    buf = io.BytesIO()
    value.save(buf, format="PNG")
    return buf.getvalue()


def _held_file(value) -> tuple[bytes | None, str | None]:
    """``(bytes, name)`` of an input held in memory rather than in a file: a Hugging Face ``Image``
    or ``Audio`` cell (``{"bytes": ..., "path": ...}``, as the Hub's Parquet files and
    ``Dataset.to_pandas()`` give them; bytes None when it names a file), or an image
    (:func:`_image_png`); ``(None, None)`` for anything else."""
    if isinstance(value, dict) and "bytes" in value:
        return (bytes(value["bytes"]) if value["bytes"] else None), value.get("path")
    return _image_png(value), None


def held_inputs_as_files(values: Iterable, where: str, *, strict: bool = True, shown_as: str | None = None):
    """``(paths, shown)`` for ``values`` when they are inputs held in memory (:func:`_held_file`):
    each written once, named by its content, under the cache folder (automl-tl's image and audio
    plugins read files; ``AUTOML_TL_CACHE_DIR`` moves it), ``shown`` the name each had; None
    when the first value is not such an input. ``strict``: any other value among them is an
    error (inputs given as a list; a table's column is only converted when it holds them).
    ``shown_as``: what a value without a name is shown as, before its number (``where #``)."""
    sample = next((v for v in itertools.islice(values, 100) if not _missing(v)), None)
    if sample is None or not isinstance(sample, dict) and _held_file(sample)[0] is None:
        if strict and isinstance(sample, np.ndarray):
            raise DataError(f"{where}: the inputs are arrays of shape {sample.shape}: automl-tl takes images "
                            f"as arrays H x W or H x W x 3 (or 1, 4; channels first too), texts as strings, "
                            f"files as paths; a vector of numbers is a table of numeric features, which it "
                            f"does not classify.")
        return None
    # imported here, past the check every table column goes through: automl_tl.cache imports Keras
    from automl_tl.atomic import atomic_write_bytes
    from automl_tl.cache import default_cache_dir

    folder = default_cache_dir() / "inputs"
    paths, shown, written = [], [], 0
    for row, value in enumerate(values, start=1):
        data, name = _held_file(value)
        shown.append(name or f"{shown_as or where + ' #'}{row}")
        if data is None:
            if strict and not isinstance(value, dict):
                raise DataError(f"{where}: input {row} is a {type(value).__name__}, not an image like the "
                                f"others.")
            paths.append(name)
            continue
        target = folder / (hashlib.sha1(data).hexdigest()[:24] + _embedded_suffix(data, name))
        if not target.is_file():
            atomic_write_bytes(target, data)
            written += 1
        paths.append(str(target))
    # said once, when it writes (the first run over a dataset); a later run reads what is there
    (_log.info if written else _log.debug)("%s: %d inputs held in memory, read from files under %s (%d written "
                                           "now)", where, len(paths), folder, written)
    return paths, shown


def with_embedded_files(frame, where: str):
    """``frame`` with each column of inputs held in memory (:func:`held_inputs_as_files`) as a
    column of file paths; ``frame.attrs["shown"][column]``: the name each had (what predict
    shows, not the cache's)."""
    for column in list(frame.columns):
        # the column itself, not a list of it: a wide table (785 pixel columns) was copied cell by cell
        got = held_inputs_as_files(frame[column], f"{where} column {column!r}", strict=False,
                                   shown_as=f"{Path(where).name} row ")
        if got is not None:
            frame[column] = got[0]
            frame.attrs.setdefault("shown", {})[column] = got[1]
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


#: names listed in a one-line message (a table's columns, classes); the rest are counted
NAMES_SHOWN = 8


def listed(names: Sequence[str], shown: int = NAMES_SHOWN) -> str:
    """``a, b, c and 5 more``: 785 pixel columns made a 7 000-character error line, 174
    single-example classes a 3 000-character one."""
    head = ", ".join(names[:shown])
    return head + (f" and {len(names) - shown} more" if len(names) > shown else "")


def _pick_column(frame, given: str | None, guesses: Sequence[str], what: str, where: str,
                 flag: str, required: bool = True) -> str | None:
    cols = [str(c) for c in frame.columns]
    if given is not None:
        if given in cols:
            return given
        # --text-column review for a column "Review" or "review text" for "Review Text"
        near = [c for c in cols if _plain_name(c) == _plain_name(given)]
        if len(near) == 1:
            _log.info("%s: column %r taken for %s %s", where, near[0], flag, given)
            return near[0]
        raise DataError(f"{where}: no column {given!r} for the {what} (columns: "
                        f"{listed(cols)}). Pass the right name with {flag}.")
    lower = {_plain_name(c): c for c in cols}
    for g in guesses:
        if g in lower:
            return lower[g]
    # a guess as the last word of one name (airline_sentiment, review_text), where only one has it
    ends = [c for c in cols if any(_plain_name(c).endswith("_" + g) for g in guesses)]
    if len(ends) == 1:
        _log.info("%s: %s read from column %r (by its name; %s chooses otherwise)", where, what, ends[0], flag)
        return ends[0]
    if required:
        head = frame.head(100)  # a table may be read as strings: numbers are what parses as one
        numeric = sum(_all_numbers(head[c]) for c in head.columns)
        hint = (f" {numeric} of its {len(cols)} columns are numbers: automl-tl classifies images, texts "
                f"and audio (files, or a column of texts), not a table of numeric features; images "
                f"stored as pixel columns can be saved as image files in class folders."
                if numeric > len(cols) / 2 and numeric >= 4 else "")
        raise DataError(f"{where}: cannot tell which column holds the {what} (columns: "
                        f"{listed(cols)}). Name it with {flag}.{hint}")
    return None


def _file_name_column(frame, exts, taken: set, where: str) -> str | None:
    """The one column (not in ``taken``) whose first values are mostly file names with ``exts``
    (UrbanSound8K's ``slice_file_name``: 100032-3-0-0.wav), or None. Whether the files exist is
    for the rows to say (missing ones are counted skips; none found at all is an error saying
    where they were looked for)."""
    found = []
    for c in frame.columns:
        sample = [] if str(c) in taken else _first_values(frame[c])
        if sample and sum(len(v.split()) == 1 and "://" not in v and os.path.splitext(v)[1].lower() in exts
                          for v in sample) > 0.8 * len(sample):
            found.append(str(c))
    if len(found) != 1:
        return None
    _log.info("%s: file paths read from column %r (its values are file names; pass --path-column to "
              "choose otherwise)", where, found[0])
    return found[0]


#: column names that say which split a row belongs to, read as --split-column when their values do
SPLIT_COLUMNS = ("split", "subset", "partition", "set", "data_split", "dataset_split")


def _split_column(frame, taken: set, where: str) -> str | None:
    """A column named like a split (``split``, ``subset``, ...) whose values all say train, val
    or test: read as ``--split-column`` (a table's own test rows were trained on)."""
    for c in frame.columns:
        if str(c) in taken or _plain_name(str(c)) not in SPLIT_COLUMNS:
            continue
        values = {str(v).strip().lower() for v in frame[c].dropna()}
        if len(values) >= 2 and values <= set(_SPLIT_FOLDERS):
            _log.info("%s: column %r read as the split (%s; pass --split-column to name another)", where,
                      str(c), ", ".join(sorted(values)))
            return str(c)
    return None


def _all_numbers(values) -> bool:
    """Every value of a column parses as a number (a table may be read as strings)."""
    import pandas as pd

    return bool(pd.to_numeric(values, errors="coerce").notna().all())


def _names_over_codes(frame, label_col: str, where: str) -> str:
    """The labels column: ``label_col``, unless its labels are numbers and another column of a
    labels name says the same with names (ESC-50's ``target`` 0-49 and ``category`` dog, rain,
    ...): the names are what a user wants predicted."""
    codes = frame[label_col].dropna().astype(str)
    if codes.empty or not _all_numbers(codes):
        return label_col
    for c in frame.columns:
        c = str(c)
        if c == label_col or _plain_name(c) not in LABEL_COLUMN_GUESSES:
            continue
        pair = frame[[label_col, c]].dropna().astype(str)
        if (not _all_numbers(pair[c]) and len(pair) == len(codes)
                and (pair.groupby(label_col)[c].nunique() == 1).all()
                and (pair.groupby(c)[label_col].nunique() == 1).all()):
            _log.info("%s: labels read from column %r, the names of the codes in %r (pass --label-column "
                      "to choose otherwise)", where, c, label_col)
            return c
    return label_col


def _plain_name(column: str) -> str:
    """A column name as the guesses spell them: ``"Review Text"``, ``review-text`` -> ``review_text``."""
    return re.sub(r"[\s\-.]+", "_", column.strip().lower())


def _two_columns_by_content(frame, where: str) -> tuple[str, str] | None:
    """(inputs, labels) of a table of exactly two columns whose names say nothing: the labels
    are the column whose values repeat (at most half as many distinct values as rows), the
    inputs the other, which must have more distinct values. None when that does not decide."""
    if frame.shape[1] != 2 or len(frame) < 4:
        return None
    a, b = (str(c) for c in frame.columns)
    distinct = {c: frame[c].dropna().astype(str).nunique() for c in (a, b)}
    labels = min((a, b), key=distinct.get)
    inputs = b if labels == a else a
    if distinct[labels] < 2 or distinct[labels] > len(frame) / 2 or distinct[labels] >= distinct[inputs]:
        return None
    _log.info("%s: labels read from column %r (%d distinct values) and inputs from %r (the names say "
              "neither; pass --label-column to choose otherwise)", where, labels, distinct[labels], inputs)
    return inputs, labels


def _web_addresses(values) -> bool:
    """Most of the first 20 non-empty values are http(s) addresses."""
    sample = [v.strip().lower() for v in values if isinstance(v, str) and v.strip()][:20]
    return bool(sample) and sum(v.startswith(("http://", "https://")) for v in sample) > len(sample) / 2


def _missing(value) -> bool:
    """An empty table cell as pandas gives it: None or NaN."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def _other_column(frame, taken: set) -> str | None:
    """The one column of ``frame`` not in ``taken``, or None when there are more (or none)."""
    rest = [str(c) for c in frame.columns if str(c) not in taken]
    return rest[0] if len(rest) == 1 else None


def _native(value):
    """A relative path written on Windows (``images\\cat\\1.jpg``) as this system writes it; other
    values as they are."""
    if os.sep == "/" and isinstance(value, str) and "\\" in value and "://" not in value:
        return value.replace("\\", "/")
    return value


def _looks_like_paths(values, base: Path | None) -> bool:
    """Most of the first 20 non-empty values name existing files (relative ones from ``base``)."""
    sample = [str(v) for v in values if isinstance(v, str) and v.strip()][:20]

    def exists(v: str) -> bool:
        p = Path(_native(v))
        if not p.is_absolute() and base is not None:
            p = base / p
        try:
            return p.is_file()
        except (OSError, ValueError):
            return False

    return bool(sample) and sum(map(exists, sample)) > len(sample) / 2


#: a table's folder is searched this many levels down, and over at most this many files, for the
#: files its rows name by file name or id only
FIND_DEPTH, FIND_MAX_FILES = 3, 200_000


def _file_index(base: Path, exts: Sequence[str]) -> dict[str, list[str]]:
    """Files with ``exts`` under ``base`` (hidden folders skipped), by name and by name without
    suffix."""
    index: dict[str, list[str]] = {}
    n, top = 0, len(base.parts)
    for folder, subfolders, files in os.walk(base):
        deep = len(Path(folder).parts) - top >= FIND_DEPTH
        subfolders[:] = [] if deep else sorted(d for d in subfolders if not d.startswith((".", "__MACOSX")))
        for name in files:
            stem, ext = os.path.splitext(name)
            if ext.lower() in exts:
                path = os.path.join(folder, name)
                index.setdefault(name, []).append(path)
                index.setdefault(stem, []).append(path)
                n += 1
                if n >= FIND_MAX_FILES:
                    return index
    return index


def _first_values(values, n: int = 20) -> list[str]:
    """The first ``n`` non-empty cells of a column, as stripped strings (ids read as numbers too)."""
    return [str(v).strip() for v in values if not _missing(v)][:n]


def _files_named(values, base: Path | None, exts: Sequence[str], table: str = "") -> dict[str, str] | None:
    """``value -> file`` for a table that names its files by file name or id only
    (``image_id: 1000015157.jpg`` or ``1000015157``, the files in ``train_images/``): each value
    that names exactly one file under the table's folder (:data:`FIND_DEPTH` levels down), or
    exactly one in a folder named like the ``table`` file (``train.csv``: ``train_images/``, when
    ``test_images/`` holds a file of the same name); None unless most of the first 20 values do.
    Values with spaces are texts, not looked for."""
    sample = _first_values(values)
    if base is None or not sample or any(len(v.split()) != 1 or len(v) > 200 for v in sample):
        return None
    stem = Path(table).stem.lower()
    # the table's folder, else the one above it: datasets keep their table in meta/ and the
    # files in a sibling (ESC-50: meta/esc50.csv and audio/; UrbanSound8K: metadata/, audio/fold1/)
    for root in dict.fromkeys((base, base.parent)):
        index = _file_index(root, exts)

        def one(v: str) -> str | None:
            hits = index.get(v) or index.get(os.path.basename(v)) or []
            if len(hits) > 1 and stem:
                hits = [h for h in hits if any(part.lower().startswith(stem)
                                               for part in Path(h).relative_to(root).parts[:-1])]
            return hits[0] if len(hits) == 1 else None

        if sum(one(v) is not None for v in sample) > len(sample) / 2:
            return {str(v).strip(): f for v in values if not _missing(v) and (f := one(str(v).strip()))}
    return None


def _path_base(values, base: Path | None, where: str) -> Path | None:
    """The folder a table's relative paths are read from: the table's own (``base``), unless
    they name files only from the current folder (``data/labels.csv`` listing
    ``data/imgs/a.png``, run from the project's root): then the current folder (None)."""
    if base is None or _looks_like_paths(values, base) or not _looks_like_paths(values, None):
        return base
    _log.info("%s: relative paths read from the current folder %s, where they exist (not from the "
              "table's folder %s)", where, Path.cwd(), base)
    return None


def _table_files(values, folder: Path | None, exts: Sequence[str], table: str,
                 named: dict[str, str] | None = None) -> tuple[Path | None, dict[str, str]]:
    """Where a table's column of files points, for fit and predict alike: the folder its
    relative paths are read from (:func:`_path_base`), and, when they are not paths from there,
    ``value -> file`` for the files they name by name or id (:func:`_files_named`; ``named``
    when the caller already looked)."""
    base = _path_base(values, folder, table)
    if named is None and not _looks_like_paths(values, base):
        named = _files_named(values, folder, exts, table)
    return base, named or {}


_SPLIT_NAMES = {"train": "train", "training": "train", "val": "val", "valid": "val",
                "validation": "val", "dev": "val"}
#: what a split folder or a split column's value may say: the test part is left out of the search
_SPLIT_FOLDERS = _SPLIT_NAMES | {"test": "test", "testing": "test"}


def _from_frame(frame, where: str, base: Path | None, *, modalities, modality, text_column=None,
                label_column=None, path_column=None, group_column=None, split_column=None,
                progress=False) -> LabelledData:
    if len(frame) == 0:
        raise DataError(f"{where}: the table has no rows.")
    # the columns the user named, as the table spells them (--text-column review: "Review")
    text_column, path_column, group_column, split_column = (
        None if given is None else _pick_column(frame, given, (), what, where, flag)
        for given, what, flag in ((text_column, "texts", "--text-column"), (path_column, "file paths", "--path-column"),
                                  (group_column, "groups", "--group-column"),
                                  (split_column, "train/val split", "--split-column")))
    texts_named = text_column is not None
    label_col = _pick_column(frame, label_column, LABEL_COLUMN_GUESSES, "labels", where, "--label-column",
                             required=False)
    if label_column is None and label_col is not None:
        label_col = _names_over_codes(frame, label_col, where)
    several = next((v for v in frame[label_col].head(1000) if isinstance(v, (list, tuple, np.ndarray))),
                   None) if label_col is not None else None
    if several is not None:  # a Hugging Face Sequence(ClassLabel) column: read as strings, "[0 1]" made a class
        raise DataError(f"{where}: column {label_col!r} holds several labels per row (e.g. "
                        f"{np.asarray(several).tolist()}): automl-tl learns one label per input (multi-class, "
                        f"not multi-label). Give a column with one label per row (--label-column).")
    inline_mods = [n for n in modalities.names() if modalities.get(n).inline]
    file_exts = {e.lower() for n in modalities.names() if not modalities.get(n).inline
                 for e in modalities.get(n).extensions}
    extra = {c for c in (group_column, split_column) if c}
    named = None  # value -> file, for a column that names files by name or id (_files_named)
    if text_column is None and path_column is None:
        text_only = modality is not None and modalities.get(modality).inline
        if not text_only:
            path_column = _pick_column(frame, None, PATH_COLUMN_GUESSES, "file paths", where, "--path-column",
                                       required=False) or _file_name_column(frame, file_exts, {label_col} | extra,
                                                                            where)
        if path_column is None and (text_only or inline_mods):
            text_column = _pick_column(frame, None, TEXT_COLUMN_GUESSES, "texts", where, "--text-column",
                                       required=False)
        by_content = None
        if label_col is None and path_column is None and text_column is None and not extra:
            # no name says which column is which: of two, the one whose values repeat is the labels
            by_content = _two_columns_by_content(frame, where)
            label_col = (by_content or (None, None))[1]
        other = None if label_col is None else _other_column(frame, {label_col} | extra)
        if path_column is None and text_column is None and other is not None:
            # no known name, but one column besides the labels: it holds the inputs
            if not text_only and (not inline_mods or _looks_like_paths(frame[other], base)
                                  or _looks_like_paths(frame[other], None)  # from the current folder
                                  or (named := _files_named(frame[other], base, file_exts, where))):  # names, ids
                path_column = other
            else:
                text_column = other
            if by_content is None:  # else already said
                _log.info("%s: inputs read from column %r (the only column besides the labels)", where, other)
        if path_column is None and text_column is None:
            what, flag = (("texts", "--text-column") if text_only else
                          ("file paths", "--path-column") if not inline_mods else
                          ("texts or file paths", "--text-column or --path-column"))
            if label_col is None:
                what, flag = "labels", "--label-column"
            _pick_column(frame, None, (), what, where, flag)  # raises, naming the columns
    input_col = text_column or path_column
    if text_column is None:  # a table written on Windows: images\cat\1.jpg
        frame = frame.assign(**{input_col: frame[input_col].map(_native)})
    if not texts_named and _web_addresses(frame[input_col]):
        raise DataError(f"{where}: column {input_col!r} holds web addresses (http://...): automl-tl reads local "
                        f"files only. Download the files and list their paths, or, if these are texts to "
                        f"classify, name the column with --text-column.")
    if label_col is None:
        label_col = _other_column(frame, {input_col} | extra)
        if label_col is None:
            _pick_column(frame, None, (), "labels", where, "--label-column")  # raises
        _log.info("%s: labels read from column %r (the only column besides the inputs)", where, label_col)
    groups_col = group_column  # named ones were checked and spelled as the table does, above
    split_col = split_column or _split_column(frame, {input_col, label_col, group_column}, where)
    parts = None
    if split_col is not None:
        parts = [_SPLIT_FOLDERS.get(str(v).strip().lower()) for v in frame[split_col]]
        bad = sorted({str(v) for v, p in zip(frame[split_col], parts) if p is None})
        if bad:
            raise DataError(f"{where}: column {split_col!r} must say train, val or test (also: validation, "
                            f"valid, dev, training, testing); found {listed([repr(b) for b in bad], 5)}.")
        n_test = parts.count("test")
        if n_test:
            _log.warning("%s: %d row(s) marked test in column %r are left out of the search (they stay "
                         "yours for a final test)", where, n_test, split_col)
        if "val" not in parts:  # train and test only: validation is drawn from the training rows
            parts = [None if p == "train" else p for p in parts]

    skips: list[Skip] = []
    labels_raw = frame[label_col]
    missing_label = labels_raw.isna() | (labels_raw.astype(str).str.strip() == "")
    if bool(missing_label.all()):
        raise DataError(f"{where}: every value in the label column {label_col!r} is missing. "
                        f"Fill in labels, or name the right column with --label-column.")
    rows = []
    for pos, (inp, lab, is_missing) in enumerate(zip(frame[input_col], labels_raw, missing_label)):
        if is_missing:
            skips.append(Skip(item=f"row {pos + 2}", reason="missing label"))
            continue
        grp = None if groups_col is None else str(frame[groups_col].iloc[pos])
        part = None if parts is None else parts[pos]
        if part == "test":
            continue
        rows.append((inp, label_str(lab), grp, part, pos + 2))
    # the other columns, where a source may be named (speaker, session): automl_tl.sources
    side_cols = [] if groups_col is not None else [
        c for c in frame.columns if c not in {input_col, label_col, split_col}][:50]

    if text_column is not None:
        mod_name = modality or (inline_mods[0] if inline_mods else None)
        if mod_name is None:
            raise ConfigError("no installed plugin handles text: pip install 'automl-tl[text]'.")
        items = [r[0] for r in rows]
    else:
        items = []
        folder = base
        base, named = _table_files([r[0] for r in rows], folder, file_exts, where, named)
        if named:
            _log.info("%s: column %r names files by name; found %d of them under %s", where, input_col,
                      len(named), os.path.commonpath(list(named.values())[:1000]))
        for r in rows:
            p = r[0]
            if _missing(p) or str(p).strip() == "":
                items.append(None)
                continue
            if str(p).strip() in named:
                items.append(named[str(p).strip()])
                continue
            p = Path(str(p))
            if not p.is_absolute() and base is not None:
                p = base / p
            items.append(str(p.resolve()) if p.exists() else str(p))
        mod_name = modality or _modality_of_paths(items, modalities, where)
    mod = modalities.get(mod_name)
    if text_column is None:
        # The table names files: missing ones are counted skips, whatever the modality.
        keep = []
        for i, p in enumerate(items):
            if p is None:
                skips.append(Skip(item=f"row {rows[i][4]}", reason="missing path"))
            elif not os.path.exists(p):
                skips.append(Skip(item=str(p), reason="file not found"))
            else:
                keep.append(i)
        rows = [rows[i] for i in keep]
        items = [items[i] for i in keep]
        if mod.inline:  # e.g. a column of .txt paths: the input is each file's content
            keep, items = _read_text_files(items, skips)
            rows = [rows[i] for i in keep]
    columns = None if where in ("<lists>",) else (str(input_col), str(label_col))
    side = {str(c): [frame[c].iloc[r[4] - 2] for r in rows] for c in side_cols}
    return _checked(mod, items, [r[1] for r in rows], [r[2] for r in rows] if groups_col else None,
                    where, skips, progress, [r[3] for r in rows] if parts and "val" in parts else None, columns,
                    side=side)


class PredictionInput(NamedTuple):
    """One input of ``automl-tl predict``: what is classified, its true label where the data says
    it (else None), and how it is shown (a text file's path, while its content is classified)."""

    value: str
    truth: str | None = None
    name: str | None = None

    @property
    def shown(self) -> str:
        return self.value if self.name is None else self.name


def prediction_inputs(sources: Sequence[str], modality, column: str | None = None,
                      fit_columns: Sequence[str] | None = None) -> list[PredictionInput]:
    """The inputs ``automl-tl predict`` classifies, in order, each with its true label where the
    data says it (else None): a table file (.csv, .tsv, .parquet, .jsonl, .json, .arrow; a folder
    Hugging Face ``datasets`` saved) stands for its
    rows (``column``, else the column of inputs the run was fitted from (``fit_columns``: its
    inputs and labels columns), else the text or path column its name says, else its only column
    that is not a label, else of two columns the one whose values do not repeat; relative paths
    from the table's folder; the truth from the fit's label column or one named as
    :func:`load_data` knows it), a folder for the files in it with ``modality``'s extensions
    (sorted, sub-folders included; the truth is the name of the folder a file is in: a caller
    counts it only when it names a class); anything else is one input (a file, or for text the
    text itself). For a modality of inline inputs (text) an existing file stands for its
    content, as a ``.txt`` file does in a folder dataset; an empty argument is an empty input."""
    out: list[PredictionInput] = []
    exts = tuple(e.lower() for e in modality.extensions)

    def is_file_of_modality(p: Path) -> bool:
        return p.suffix.lower() in exts and _is_file(p)

    def entry(p: Path, truth: str | None) -> PredictionInput:
        if not modality.inline:
            return PredictionInput(str(p), truth)
        return PredictionInput(read_text_file(p)[0], truth, str(p))

    for src in sources:
        path = Path(str(src))
        given = bool(str(src))  # an empty argument is an empty input, not the folder "." (Path(""))
        try:
            is_table = given and path.suffix.lower() in TABLE_SUFFIXES and path.is_file()
            is_dir = given and path.is_dir() and (not modality.inline or bool(exts))
        except (OSError, ValueError):  # a long text is not a path
            is_table = is_dir = False
        if is_dir and (path / "dataset_dict.json").is_file():
            splits = sorted(d.name for d in _class_dirs(path))
            raise DataError(f"{path}: a saved Hugging Face DatasetDict of {len(splits)} splits ({listed(splits)}): "
                            f"give the folder of the split to classify (automl-tl predict RUN "
                            f"{path / ('test' if 'test' in splits else splits[0] if splits else 'test')}).")
        by_split = _tables_by_split(path) if is_dir and not (path / "state.json").is_file() else None
        if by_split is not None and not any(is_file_of_modality(f) for f in path.rglob("*")):
            folder, found = by_split
            test = next((files for name, files in found.items() if _SPLIT_FOLDERS[name.lower()] == "test"),
                        next(iter(found.values())))
            raise DataError(f"{path}: a dataset of tables by split ({listed(sorted(found))}): give the table(s) "
                            f"to classify (automl-tl predict RUN {' '.join(map(str, test[:3]))}).")
        saved = (_saved_dataset(path) or (None,))[0] if is_dir else None
        if is_table or saved is not None:
            fit_inputs, fit_labels = fit_columns or (None, None)
            # a one-column table of texts to classify: a name of two words is more likely its
            # first text than a header (losing a text silently is worse than classifying a name)
            frame = saved if saved is not None else _read_table(path, (column, fit_inputs, fit_labels),
                                                                texts=modality.inline)
            names = [str(c) for c in frame.columns]
            guesses = TEXT_COLUMN_GUESSES if modality.inline else PATH_COLUMN_GUESSES
            label_col = fit_labels if fit_labels in names else _pick_column(
                frame, None, LABEL_COLUMN_GUESSES, "labels", str(path), "", required=False)
            col = column or (fit_inputs if fit_inputs in names else None) or _pick_column(
                frame, None, guesses, "inputs", str(path), "--column", required=False)
            if col is None:
                col = _other_column(frame, {label_col} if label_col else set())
            if col is None and label_col is None:
                by_content = _two_columns_by_content(frame, str(path))
                col, label_col = by_content or (None, None)
            col = _pick_column(frame, col, (), "inputs", str(path), "--column")  # raises when none or absent
            truths = frame[label_col] if label_col and label_col != col else [None] * len(frame)
            # the files its rows name, found as load_data finds them
            base, named = (None, {}) if modality.inline else _table_files(
                list(frame[col].map(_native)), path if saved is not None else path.parent, exts, str(path))
            shown = frame.attrs.get("shown", {}).get(col) or [None] * len(frame)
            for cell, truth, name in zip(frame[col], truths, shown):
                cell = "" if _missing(cell) else str(cell)
                value = cell if modality.inline else _native(cell)
                if value.strip() in named:
                    value = named[value.strip()]
                elif base is not None and value and not Path(value).is_absolute():
                    value = str(base / value)
                # shown as the table writes it (an id for a submission file), the file read where it is
                name = name or cell
                out.append(PredictionInput(value, None if _missing(truth) else label_str(truth),
                                           name if name != value else None))
        elif is_dir:
            files = sorted(f for f in path.rglob("*") if is_file_of_modality(f))
            out += [entry(f, f.parent.name) for f in files]
        elif modality.inline and given and _is_file(path):
            # any existing file stands for its content (a .txt, a .md, ...); one that is not text
            # (an image given to a text model) is then skipped by the modality's check as such,
            # instead of its path being classified as a text
            out.append(entry(path, None))
        else:
            out.append(PredictionInput(str(src)))
    return out


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):  # a long text is not a path
        return False


#: bytes below 0x20 that no text holds (tab, line feed, form feed and carriage return it may)
_TEXT_CONTROLS = bytes(b for b in range(32) if b not in (9, 10, 12, 13))


def _legacy_text(data: bytes) -> tuple[str, str]:
    """``(text, encoding)`` of bytes that are not UTF-8: Windows-1252, the legacy encoding of most
    older Western corpora (a superset of Latin-1's letters), else Latin-1, which reads any byte.
    Why not a detector: charset_normalizer read short French reviews as cp1006 (Urdu) and cp1250,
    German as cp1250; a fixed rule is right where the data is Western and says which it used."""
    try:
        return data.decode("cp1252"), "Windows-1252"
    except UnicodeDecodeError:
        return data.decode("latin-1"), "Latin-1"


def read_text_file(path) -> tuple[str, str | None]:
    """The text of a file, and the encoding it was read with when that is not UTF-8
    (:func:`_legacy_text`): every Latin-1 file of an older corpus (20 Newsgroups) was skipped as
    "not valid UTF-8"."""
    data = Path(path).read_bytes()
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError:
        if data[:4096].translate(None, _TEXT_CONTROLS) != data[:4096]:  # control bytes: not a text (an image)
            return data.decode("utf-8", errors="surrogateescape"), None  # for the modality to skip as such
        return _legacy_text(data)


def _read_text_files(paths, skips) -> tuple[list[int], list[str]]:
    """Contents of text files (:func:`read_text_file`); an unreadable file is a counted skip.
    Returns the kept indices and the texts; files not in UTF-8 are said in one line, with the
    first one's text as read, so that a wrong guess shows."""
    keep, texts, legacy = [], [], []
    for i, p in enumerate(paths):
        try:
            text, encoding = read_text_file(p)
        except OSError as exc:
            skips.append(Skip(item=str(p), reason=f"unreadable: {exc}"))
            continue
        texts.append(text)
        keep.append(i)
        if encoding:
            legacy.append((p, encoding, text))
    if legacy:
        first, _, text = legacy[0]
        _log.warning("%d text file(s) are not UTF-8: read as %s (%s: %r). If that reads wrong, save them as UTF-8",
                     len(legacy), " or ".join(sorted({e for _, e, _ in legacy})),
                     f"{Path(first).parent.name}/{Path(first).name}", " ".join(text.split())[:60])
    return keep, texts


def label_str(value) -> str:
    """A label as the engine stores it: ``1.0`` becomes ``"1"``, whitespace is stripped."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _modality_of_paths(paths, modalities, where) -> str:
    counts = Counter()
    for p in paths:
        if p is None:
            continue
        m = modalities.for_extension(Path(p).suffix)
        if m is not None:
            counts[m.name] += 1
    if not counts:
        raise DataError(f"{where}: none of the files has a suffix any installed plugin reads "
                        f"(known modalities: {', '.join(modalities.names())}).")
    return counts.most_common(1)[0][0]


#: sub-folder names that say their files have no label (aclImdb's ``train/unsup``, 50 000 reviews;
#: STL-10's ``unlabeled``): never a class
_UNLABELLED_FOLDERS = {"unsup", "unsupervised", "unlabeled", "unlabelled"}


def _class_dirs(root: Path, *, say: bool = False, within: Path | None = None) -> list[Path]:
    """The sub-folders of ``root`` that may be classes; ``say``: warn about each one left out
    because its name says it is unlabelled, or because it is a link to a folder outside the data
    folder ``within`` (default ``root``)."""
    from automl_tl.schema import RUN_MARKERS

    # a run directory written inside the data folder is not a class (its files are ours, not data)
    dirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")
                  and not any((d / m).exists() for m in RUN_MARKERS))
    # a link to a folder elsewhere (data/etc -> /etc) would be walked as a class, every file below
    # it listed as skipped; a link to a folder inside the data folder is read like any class
    top = (within or root).resolve()
    outside = []
    for d in dirs:
        try:
            inside = d.resolve().is_relative_to(top)
        except (OSError, RuntimeError):  # a loop of links
            inside = False
        if not inside:
            outside.append(d)
            if say:
                _log.warning("class %r is a link to %s (outside the data folder): left out (to train on it, "
                             "make %s a folder of its files, or of links to them)", d.name, os.path.realpath(d), d)
    unlabelled = [d for d in dirs if d.name.lower() in _UNLABELLED_FOLDERS and d not in outside]
    for d in unlabelled if say else ():
        _log.warning("%s/ is left out: its name says its files have no label (rename it to train on it as "
                     "a class)", d)
    return [d for d in dirs if d not in unlabelled and d not in outside]


def _split_layout(root: Path, subdirs: list[Path]) -> dict[str, Path] | None:
    """``{"train": folder, "val": folder?, "test": folder?}`` when ``root`` holds split folders
    (``train/``, ``val/``, ``test/`` ... each with class sub-folders) rather than classes."""
    names = {d.name.lower(): d for d in subdirs}
    if not names or not set(names) <= set(_SPLIT_FOLDERS) or "train" not in {_SPLIT_FOLDERS[n] for n in names}:
        return None
    parts = {_SPLIT_FOLDERS[n]: d for n, d in sorted(names.items())}
    return parts if _class_dirs(parts["train"]) else None


#: a file name that says its class before a number: cat.0.jpg, Abyssinian_12.jpg, dog (3).png
_NAMED_LABEL = re.compile(r"^(?P<label>.*?[^\W\d_].*?)[\s._\-]*\(?\d+\)?$")


def _labels_from_names(root: Path, files, modalities, modality, progress) -> LabelledData | None:
    """A flat folder whose file names say their class before a number (Kaggle's dogs-vs-cats
    ``cat.0.jpg``, Oxford pets ``Abyssinian_1.jpg``): labelled by those names, when 80 % of the
    files of one modality do and that makes at least two classes of at least two files each;
    else None (``IMG_0001.jpg`` names no class)."""
    by_mod = Counter(m.name for f in files if (m := modalities.get(modality) if modality
                                               else modalities.for_extension(f.suffix)) is not None)
    if not by_mod:
        return None
    mod = modalities.get(modality or by_mod.most_common(1)[0][0])
    mine = sorted(f for f in files if f.suffix.lower() in mod.extensions)
    found = [(f, m.group("label")) for f in mine if (m := _NAMED_LABEL.match(f.stem))]
    counts = Counter(label for _, label in found)
    if (len(found) < 0.8 * len(mine) or len(counts) < 2 or min(counts.values()) < 2
            or len(counts) > len(found) / 2):
        return None
    _log.info("%s: no class sub-folders; labels read from the file names (%s -> %r): %d classes. Put each "
              "class's files in a sub-folder to label them otherwise", root, found[0][0].name, found[0][1],
              len(counts))
    labelled = {f for f, _ in found}
    skips = [Skip(item=str(f), reason="no class in its name") for f in mine if f not in labelled]
    items = [str(f.resolve()) for f, _ in found]
    labels = [label for _, label in found]
    paths = items
    if mod.inline:
        keep, items = _read_text_files(items, skips)
        labels, paths = [labels[i] for i in keep], [paths[i] for i in keep]
    return _checked(mod, items, labels, None, str(root), skips, progress, paths=paths)


#: files beside a dataset's folders that are about it, not in it
_NOT_INPUTS = {"README", "LICENSE", "LICENCE", "COPYING", "CITATION", "NOTICE", "AUTHORS"}


def _from_folder(root: Path, *, modalities, modality, progress) -> LabelledData:
    top = root  # the data folder: a class folder that is a link to a folder outside it is left out
    subdirs = _class_dirs(root, say=True, within=top)
    known = {e.lower() for n in ([modality] if modality else modalities.names()) for e in modalities.get(n).extensions}

    def inputs_beside(folder: Path) -> bool:  # a README.txt or LICENSE beside the data is not an input
        return any(f.is_file() and f.suffix.lower() in known and f.stem.upper() not in _NOT_INPUTS
                   for f in folder.iterdir())

    # one folder inside, as an archive often unpacks (flowers/flowers/daisy/...): the classes are
    # its sub-folders (was "only one class")
    while len(subdirs) == 1 and len(inner := _class_dirs(subdirs[0], within=top)) >= 2 and not inputs_beside(root):
        _log.info("%s: one folder inside, %s/: its %d sub-folders are read as the classes (or splits)", root,
                  subdirs[0].name, len(inner))
        root, subdirs = subdirs[0], _class_dirs(subdirs[0], say=True, within=top)
    if not subdirs:
        files = [f for f in root.iterdir() if f.is_file() and not f.name.startswith(".")]
        if not files:
            raise DataError(f"{root}: the folder is empty. Put one sub-folder per class inside, "
                            f"each holding that class's files.")
        named = _labels_from_names(root, files, modalities, modality, progress)
        if named is not None:
            return named
        raise DataError(f"{root}: found {len(files)} files but no class sub-folders. Put each "
                        f"class's files in a sub-folder named after the class (e.g. {root}/cat/1.jpg).")
    layout = _split_layout(root, subdirs)
    if layout is None:
        tables = _labelling_tables(root, {d.name for d in subdirs})
        if tables:
            raise DataError(f"{root}: it holds {listed([t.name for t in tables], 3)} with a column of labels "
                            f"that are not its sub-folders' names ({listed([d.name for d in subdirs], 3)}), "
                            f"which a folder would be read as: the classes. Give the table instead "
                            f"(automl-tl fit {tables[0]}), or move it out of the folder.")
    sources = [(d, None) for d in subdirs]
    if layout is not None:
        # data already split: train/ (and val/ as the fixed validation split) are searched; test/
        # is left for the user's own final evaluation, never seen by the search
        sources = [(d, part) for part in ("train", "val") if part in layout
                   for d in _class_dirs(layout[part], say=True, within=top)]
        if "test" in layout:
            _log.warning("%s: %s/ is left out of the search (it stays yours for a final test: "
                         "automl-tl predict RUN %s)", root, layout["test"].name, layout["test"])
        _log.info("%s: split folders %s: training on %s", root, ", ".join(sorted(d.name for d in layout.values())),
                  " + ".join(layout[p].name for p in ("train", "val") if p in layout))
    skips: list[Skip] = []
    items, labels, parts = [], [], []
    by_modality = Counter()
    candidates = []
    for d, part in sources:
        # rglob follows the class folder itself (a link into the data folder works), not the links
        # to folders below it: a link there to /etc is not walked
        for f in sorted(d.rglob("*")):
            if not f.is_file() or f.name.startswith("."):
                continue
            m = modalities.get(modality) if modality else modalities.for_extension(f.suffix)
            if m is None or (modality and f.suffix.lower() not in m.extensions and m.extensions):
                candidates.append((f, d.name, None, part))
            else:
                by_modality[m.name] += 1
                candidates.append((f, d.name, m.name, part))
    if not candidates:
        raise DataError(f"{root}: the class sub-folders ({listed([d.name for d in subdirs], 5)}) hold no "
                        f"files.")
    if not by_modality:
        raise DataError(f"{root}: none of the {len(candidates)} files is an image, audio clip or other "
                        f"input that an installed plugin reads (known suffixes: "
                        f"{', '.join(sorted({e for n in modalities.names() for e in modalities.get(n).extensions}))}).")
    mod_name = modality or by_modality.most_common(1)[0][0]
    for f, label, m, part in candidates:
        if m != mod_name:
            skips.append(Skip(item=str(f), reason=f"unsupported file type: {f.suffix or 'no suffix'}"))
            continue
        items.append(str(f.resolve()))
        labels.append(label)
        parts.append(part)
    paths = items
    if modalities.get(mod_name).inline:  # e.g. a folder of .txt files: the input is the content
        keep, items = _read_text_files(items, skips)
        labels, parts, paths = [labels[i] for i in keep], [parts[i] for i in keep], [paths[i] for i in keep]
    used = set(labels)
    for d, _ in sources:
        if d.name not in used:
            skips.append(Skip(item=str(d), reason="empty class folder: no usable files"))
    split = parts if layout is not None and "val" in layout else None
    # the folder level below a class folder is read relative to the folder that holds the classes
    return _checked(modalities.get(mod_name), items, labels, None, str(root), skips, progress, split,
                    paths=paths, root=str(root.resolve()))


def _labelling_tables(root: Path, class_names: set[str]) -> list[Path]:
    """The tables at the top of a class-folder dataset whose labels column (by its name) names
    none of the sub-folders: Kaggle's ``train.csv`` (``image_id,label``) beside ``train_images/``
    and ``test_images/`` made a classifier of train vs test images. A table whose labels are
    the folders' names (a ``metadata.csv`` beside the class folders) agrees with them."""
    found = []
    for f in sorted(root.iterdir()):
        if f.suffix.lower() not in TABLE_SUFFIXES or not f.is_file() or f.stat().st_size > 100 * 2**20:
            continue
        try:
            frame = _read_table_as(f)
        except DataError:
            continue
        cols = {_plain_name(str(c)): c for c in frame.columns}
        col = next((cols[g] for g in LABEL_COLUMN_GUESSES if g in cols), None)
        if col is not None and not {label_str(v) for v in frame[col].head(10_000).dropna()} & class_names:
            found.append(f)
    # the one to suggest first: a training table (train.csv before sample_submission.csv)
    return sorted(found, key=lambda f: ("train" not in f.name.lower(), -f.stat().st_size, f.name))


def _checked(mod, items, labels, groups, where, skips, progress, split=None, columns=None, *,
             paths=None, side=None, root=None) -> LabelledData:
    """The usable items (the modality's check), and the sources they seem to come from when no
    groups were given: from ``side`` (the table's other columns), else the ``paths`` of the files
    the items were read from (a folder level below ``root``'s classes, a part of the names)."""
    from automl_tl.sources import detect

    result = mod.check(items, progress=progress)
    skips = list(skips) + list(result.skips)

    def kept(values):
        return tuple(values[i] for i in result.keep) if values is not None else None

    found = None
    if groups is None and split is None:
        found = detect(kept(paths) or tuple(result.items), kept(labels), root=root,
                       columns={c: kept(v) for c, v in (side or {}).items()}, modality=mod.name)
    data = LabelledData(modality=mod.name, items=tuple(result.items), labels=kept(labels),
                        source=where, skips=tuple(skips), groups=kept(groups), split=kept(split),
                        columns=columns, found=found)
    validate(data)
    return data


def validate(data: LabelledData) -> None:
    """Errors for data no search can use; say what to do. Labels that differ only in case or
    spacing (``Positive``, ``positive``) are warned about: two classes, or one written two ways?"""
    where = data.source
    if not data.items:
        reasons = data.skip_summary()["by_reason"]
        detail = f" ({len(data.skips)} inputs skipped: {reasons})" if data.skips else ""
        if data.skips and set(reasons) == {"file not found"}:
            raise DataError(f"{where}: none of the {len(data.skips)} files it names exists (the first was "
                            f"looked for as {data.skips[0].item}). Relative paths are read from the table's "
                            f"folder (or the current folder); file names alone are looked for under the "
                            f"table's folder and the one above it. Put the files there, or fix the paths (or, if the "
                            f"column holds texts to classify, name it with --text-column).")
        raise DataError(f"{where}: no usable inputs{detail}.")
    counts = data.class_counts()
    if len(counts) < 2:
        only = next(iter(counts))
        raise DataError(f"{where}: only one class ({only!r}, {counts[only]} inputs). Classification "
                        f"needs at least two classes: add a folder or label for another class.")
    tiny = [c for c, n in counts.items() if n < 2]
    if tiny:
        named = listed([repr(c) for c in tiny], 5)
        hint = ""
        if len(tiny) > len(counts) / 2:
            col = f" {data.columns[1]!r}" if data.columns else ""
            hint = (f" {len(tiny)} of the {len(counts)} classes have one example: is the column{col} "
                    f"the labels? --label-column names another.")
        raise DataError(f"{where}: class{'es' if len(tiny) > 1 else ''} {named} "
                        f"ha{'ve' if len(tiny) > 1 else 's'} a single example; each class needs at least "
                        f"2 (one to train, one to validate). Add examples or remove that class.{hint}")
    spellings: dict[str, list[str]] = {}
    for c in counts:
        spellings.setdefault(_text_key(c), []).append(c)
    twins = [" / ".join(repr(c) for c in group) for group in spellings.values() if len(group) > 1]
    if twins:
        _log.warning("%s: labels %s differ only in case or spacing and are kept as different classes; "
                     "write each class one way if they are one", where, listed(twins, 3))


# ---------------------------------------------------------------------------------------- split
def evaluation_plan(data: LabelledData, y, *, val_fraction: float = 0.2, seed: int = 0, quiet: bool = False):
    """The run's folds for ``data`` (:func:`automl_tl.evaluation.make_plan`): stratified k-fold
    on small data, grouped when ``data.groups`` is set, exactly the user's split when
    ``data.split`` is set; ``plan.train`` / ``plan.val`` is the hold-out split."""
    from automl_tl.evaluation import make_plan

    fixed = None
    if data.split is not None:
        fixed = np.asarray(data.split) == "val"
        if fixed.all() or not fixed.any():
            raise DataError(f"{data.source}: the split column leaves {int((~fixed).sum())} training and "
                            f"{int(fixed.sum())} validation rows; both need some.")
    ids, copies = duplicate_groups(data) if data.groups is None and fixed is None else (None, 0)
    if not copies:
        return make_plan(y, groups=data.groups, fixed_val=fixed, val_fraction=val_fraction, seed=seed)
    # The folds are drawn over one input of each set of copies, and each copy goes where its first
    # input went: the same stratified folds as for unique data, in linear time (scikit-learn's
    # StratifiedGroupKFold took 6 s over 60 000 groups of one).
    from automl_tl.evaluation import EvaluationPlan

    if not quiet:
        _say_conflicts(data, ids, y)
    firsts = np.unique(ids, return_index=True)[1]  # ids count up from 0 in order of first appearance
    plan = make_plan(np.asarray(y)[firsts], val_fraction=val_fraction, seed=seed)  # over distinct inputs
    folds = tuple((np.flatnonzero(np.isin(ids, tr)), np.flatnonzero(np.isin(ids, va))) for tr, va in plan.folds)
    why = (f"{copies} input{'s are exact copies' if copies > 1 else ' is an exact copy'} of another: "
           f"each set of copies stays on one side of every split (else a copy in validation scores "
           f"what was learned from its twin)")
    if not quiet:
        _log.info("%s: %s", data.source, why)
    return EvaluationPlan(folds=folds, kind=plan.kind, reason=f"{plan.reason}; {why}")


def _say_conflicts(data: LabelledData, ids: np.ndarray, y) -> None:
    """Warn about copies of one input labelled as different classes (a text pasted under two
    labels, an image listed once per object in it): the model is taught both answers and
    validation counts one of them wrong whatever it learns."""
    y = np.asarray(y)
    order = np.argsort(ids, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(ids[order]) != 0])
    conflicts = [order[s:e] for s, e in zip(starts, np.r_[starts[1:], len(order)])
                 if len(set(y[order[s:e]].tolist())) > 1]
    if not conflicts:
        return
    first = conflicts[0]
    shown = str(data.items[first[0]])
    shown = os.path.basename(shown) if _is_file(Path(shown)) else shown  # a file by its name
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    names = sorted({str(data.labels[i]) for i in first})
    _log.warning("%s: %d input(s) appear more than once with different labels (e.g. %r as %s): the model "
                 "is taught both; give each input one label, or drop the copies", data.source,
                 len(conflicts), shown, " and ".join(repr(n) for n in names))


def duplicate_groups(data: LabelledData) -> tuple[np.ndarray | None, int]:
    """``(group id per item, number of items that copy an earlier one)``; ``(None, 0)`` when no
    two inputs are the same. Texts are the same when equal up to case and spacing; files when
    their bytes are (:func:`_file_digest`). The run's folds keep each set of copies together
    (:func:`evaluation_plan`), as ``--group-column`` keeps a speaker's clips together."""
    inline = not all(isinstance(x, str) and os.path.isfile(x) for x in data.items[:20])
    keys = [_text_key(x) if inline else _file_digest(x) for x in data.items]
    ids, seen = np.empty(len(keys), dtype=np.int64), {}
    for i, k in enumerate(keys):
        ids[i] = seen.setdefault(k, len(seen))
    copies = len(keys) - len(seen)
    return (ids, copies) if copies else (None, 0)


def _text_key(text) -> str:
    """A text as copies and labels are compared: case and spacing aside."""
    return " ".join(str(text).split()).casefold()


def _file_digest(path: str, chunk: int = 1 << 16, whole_below: int = 1 << 20) -> str:
    """A file's identity by content: all of its bytes up to ``whole_below``, else its size and
    three ``chunk``-sized pieces (start, middle, end), so that a folder of large photos is not
    read twice; a file that cannot be read is only itself."""
    try:
        size = os.path.getsize(path)
        h = hashlib.blake2b(str(size).encode(), digest_size=16)
        with open(path, "rb") as f:
            if size <= whole_below:
                h.update(f.read())
            else:
                for offset in (0, size // 2, size - chunk):
                    f.seek(offset)
                    h.update(f.read(chunk))
        return h.hexdigest()
    except OSError:
        return f"unreadable:{path}"
