"""The entry: whatever the user hands over (a folder, a table, a DataFrame, lists) to the reader for it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

from automl_tl.data._folders import _from_folder
from automl_tl.data._frames import _from_frame
from automl_tl.data._held import held_inputs_as_files, with_embedded_files
from automl_tl.data._labelled import LabelledData
from automl_tl.data._tables import TABLE_SUFFIXES, _read_table, _saved_dataset, _split_tables
from automl_tl.errors import DataError


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
