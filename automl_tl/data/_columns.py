"""Which column of a table holds the inputs, the labels, the split: by name, else by content."""

from __future__ import annotations

import logging
import os
import re
from typing import Sequence

from automl_tl.data._cells import _first_values
from automl_tl.data._messages import listed
from automl_tl.data._subfolders import _SPLIT_FOLDERS
from automl_tl.errors import DataError

_log = logging.getLogger("automl_tl")


PATH_COLUMN_GUESSES = ("path", "file", "filename", "filepath", "image", "audio", "image_path", "file_name",
                       "file_path", "image_file", "audio_path", "audio_file")


TEXT_COLUMN_GUESSES = ("text", "sentence", "review", "document", "content", "comment", "tweet", "message",
                       "utterance", "body")


LABEL_COLUMN_GUESSES = ("label", "labels", "class", "target", "category", "y", "sentiment", "intent", "topic",
                        "emotion", "tag")


#: column names that say which split a row belongs to, read as --split-column when their values do
SPLIT_COLUMNS = ("split", "subset", "partition", "set", "data_split", "dataset_split")


def _plain_name(column: str) -> str:
    """A column name as the guesses spell them: ``"Review Text"``, ``review-text`` -> ``review_text``."""
    return re.sub(r"[\s\-.]+", "_", column.strip().lower())


def _all_numbers(values) -> bool:
    """Every value of a column parses as a number (a table may be read as strings)."""
    import pandas as pd

    return bool(pd.to_numeric(values, errors="coerce").notna().all())


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


def _other_column(frame, taken: set) -> str | None:
    """The one column of ``frame`` not in ``taken``, or None when there are more (or none)."""
    rest = [str(c) for c in frame.columns if str(c) not in taken]
    return rest[0] if len(rest) == 1 else None
