"""The inputs ``automl-tl predict`` classifies: files, folders, tables, texts, each with its truth where known."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, NamedTuple, Sequence

from automl_tl.data._cells import _missing, _native
from automl_tl.data._columns import (LABEL_COLUMN_GUESSES, PATH_COLUMN_GUESSES, TEXT_COLUMN_GUESSES,
                                     _other_column, _pick_column, _two_columns_by_content)
from automl_tl.data._files import _is_file, _table_files
from automl_tl.data._labelled import label_str
from automl_tl.data._messages import listed
from automl_tl.data._subfolders import _SPLIT_FOLDERS, _class_dirs
from automl_tl.data._tables import TABLE_SUFFIXES, _read_table, _saved_dataset, _tables_by_split
from automl_tl.data._text import read_text_file
from automl_tl.errors import DataError


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
        saved = _saved_rows(path, is_file_of_modality) if is_dir else None
        if is_table or saved is not None:
            out += _table_inputs(path, saved, modality, exts, column, fit_columns)
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


def _saved_rows(path: Path, is_file_of_modality):
    """The rows of a folder Hugging Face ``datasets`` saved (one ``Dataset``), else None; a
    saved ``DatasetDict`` or a folder of tables by split (without inputs of the modality) is an
    error naming what to give instead."""
    if (path / "dataset_dict.json").is_file():
        splits = sorted(d.name for d in _class_dirs(path))
        raise DataError(f"{path}: a saved Hugging Face DatasetDict of {len(splits)} splits ({listed(splits)}): "
                        f"give the folder of the split to classify (automl-tl predict RUN "
                        f"{path / ('test' if 'test' in splits else splits[0] if splits else 'test')}).")
    by_split = _tables_by_split(path) if not (path / "state.json").is_file() else None
    if by_split is not None and not any(is_file_of_modality(f) for f in path.rglob("*")):
        folder, found = by_split
        test = next((files for name, files in found.items() if _SPLIT_FOLDERS[name.lower()] == "test"),
                    next(iter(found.values())))
        raise DataError(f"{path}: a dataset of tables by split ({listed(sorted(found))}): give the table(s) "
                        f"to classify (automl-tl predict RUN {' '.join(map(str, test[:3]))}).")
    return (_saved_dataset(path) or (None,))[0]


def _table_inputs(path: Path, saved, modality, exts: tuple, column: str | None,
                  fit_columns: Sequence[str] | None) -> list[PredictionInput]:
    """The rows of a table file (or of ``saved``, a saved dataset's rows) as inputs, each with
    its truth where a labels column gives it (:func:`prediction_inputs` says which columns)."""
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
    out = []
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
    return out


def api_inputs(X, modality: str, columns: Mapping[str, str | None]) -> list:
    """The inputs ``X`` given to ``AutoTransfer.predict`` stands for, as ``automl-tl predict`` reads
    them: a table file or a folder for its rows or files, a DataFrame for its column of inputs (the
    fitted one, ``columns["inputs"]``, or its only column), one path or text for itself, anything
    else iterated; images held in memory (arrays, PIL images, a Hugging Face dataset's cells) are
    written to files first."""
    import os

    import pandas as pd

    from automl_tl.data._held import held_inputs_as_files

    if isinstance(X, (str, os.PathLike)):
        return [x.value for x in prediction_inputs([os.fspath(X)], modality, None,
                                                   (columns.get("inputs"), columns.get("labels")))]
    if isinstance(X, pd.DataFrame):
        names = [str(c) for c in X.columns]
        column = columns.get("inputs") if columns.get("inputs") in names else names[0] if len(names) == 1 else None
        if column is None:
            raise DataError(f"a DataFrame of {len(names)} columns ({listed(names, 5)}): pass the column of "
                            f"inputs, e.g. predict(frame[{names[0]!r}])")
        items = X[column].tolist()
    else:
        items = list(X)
    return (held_inputs_as_files(items, "<inputs>") or (items,))[0]
