"""A DataFrame (a table read, or lists paired up) to labelled data: its columns chosen, its rows read."""

from __future__ import annotations

import logging
import os
from collections import Counter
from pathlib import Path

import numpy as np

from automl_tl.data._cells import _missing, _native
from automl_tl.data._columns import (LABEL_COLUMN_GUESSES, PATH_COLUMN_GUESSES, TEXT_COLUMN_GUESSES,
                                     _file_name_column, _names_over_codes, _other_column, _pick_column,
                                     _split_column, _two_columns_by_content, _web_addresses)
from automl_tl.data._files import _files_named, _looks_like_paths, _table_files
from automl_tl.data._labelled import LabelledData, _checked, label_str
from automl_tl.data._messages import listed
from automl_tl.data._subfolders import _SPLIT_FOLDERS
from automl_tl.data._text import _read_text_files
from automl_tl.errors import ConfigError, DataError
from automl_tl.modalities import Skip

_log = logging.getLogger("automl_tl")


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
    label_col = _label_column(frame, label_column, where)
    inline_mods = [n for n in modalities.names() if modalities.get(n).inline]
    file_exts = {e.lower() for n in modalities.names() if not modalities.get(n).inline
                 for e in modalities.get(n).extensions}
    extra = {c for c in (group_column, split_column) if c}
    named = None  # value -> file, for a column that names files by name or id (_files_named)
    if text_column is None and path_column is None:
        text_column, path_column, label_col, named = _guessed_inputs(
            frame, where, base, label_col, extra, modalities=modalities, modality=modality,
            inline_mods=inline_mods, file_exts=file_exts)
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
    parts = None if split_col is None else _split_parts(frame, split_col, where)

    skips: list[Skip] = []
    rows = _labelled_rows(frame, input_col, label_col, groups_col, parts, where, skips)
    # the other columns, where a source may be named (speaker, session): automl_tl.sources
    side_cols = [] if groups_col is not None else [
        c for c in frame.columns if c not in {input_col, label_col, split_col}][:50]

    if text_column is not None:
        mod_name = modality or (inline_mods[0] if inline_mods else None)
        if mod_name is None:
            raise ConfigError("no installed plugin handles text: pip install 'automl-tl[text]'.")
        items = [r[0] for r in rows]
    else:
        items = _file_items(rows, base, file_exts, where, input_col, named)
        mod_name = modality or _modality_of_paths(items, modalities, where)
    mod = modalities.get(mod_name)
    if text_column is None:
        rows, items = _existing_inputs(mod, rows, items, skips)
    columns = None if where in ("<lists>",) else (str(input_col), str(label_col))
    side = {str(c): [frame[c].iloc[r[4] - 2] for r in rows] for c in side_cols}
    return _checked(mod, items, [r[1] for r in rows], [r[2] for r in rows] if groups_col else None,
                    where, skips, progress, [r[3] for r in rows] if parts and "val" in parts else None, columns,
                    side=side)


def _label_column(frame, label_column: str | None, where: str) -> str | None:
    """The labels column: the one named (``label_column``), else one a labels name says (the
    names of the codes, where another column gives them: :func:`_names_over_codes`), else None.
    A column of several labels per row is an error."""
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
    return label_col


def _guessed_inputs(frame, where: str, base: Path | None, label_col: str | None, extra: set, *, modalities,
                    modality, inline_mods: list, file_exts: set):
    """``(text column, path column, labels column, named)`` when the user named neither inputs
    column: by the columns' names, else the only column besides the labels (paths when its values
    name files, ``named``: ``value -> file`` when they name them by name or id), else of two
    columns the one whose values do not repeat. Raises, naming the columns, when none says."""
    text_column = path_column = named = None
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
    return text_column, path_column, label_col, named


def _split_parts(frame, split_col: str, where: str) -> list[str | None]:
    """Each row's part by the split column: ``train`` / ``val`` / ``test``; with no validation
    rows, the training rows' part is None (validation is drawn from them)."""
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
    return parts


def _labelled_rows(frame, input_col: str, label_col: str, groups_col: str | None, parts, where: str,
                   skips: list[Skip]) -> list[tuple]:
    """``(input, label, group, part, line)`` for each row with a label and not marked test; a row
    without a label is a counted skip (in ``skips``). No label at all is an error."""
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
    return rows


def _file_items(rows, folder: Path | None, file_exts: set, where: str, input_col: str,
                named: dict[str, str] | None) -> list[str | None]:
    """The files the rows name (:func:`_table_files`), resolved where they exist; None for an
    empty cell."""
    items = []
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
    return items


def _existing_inputs(mod, rows, items, skips: list[Skip]) -> tuple[list, list]:
    """``(rows, items)`` of the files that exist (and, for a modality of inline inputs, their
    contents); the others are counted skips."""
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
    return rows, items


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
