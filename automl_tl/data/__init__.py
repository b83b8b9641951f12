"""From what the user hands over (a folder, a table, a DataFrame, lists) to :class:`LabelledData`.

Every input that cannot be used is either a clear :class:`DataError` (nothing usable, one class,
wrong columns, ...) or a counted :class:`Skip` that the profile and the summary report. Nothing
is dropped silently.

One concept a module:

* :mod:`~automl_tl.data._load`: the entry, :func:`load_data`, choosing the reader for what was given;
* :mod:`~automl_tl.data._labelled`: :class:`LabelledData`, its fingerprints, :func:`validate`;
* :mod:`~automl_tl.data._tables`: table files read (encodings, delimiters, header rows, Arrow,
  Hugging Face saved datasets, tables by split);
* :mod:`~automl_tl.data._columns`: which column is which;
* :mod:`~automl_tl.data._files`: the files a table names, by path, name or id;
* :mod:`~automl_tl.data._frames`: a DataFrame to labelled data;
* :mod:`~automl_tl.data._folders` and :mod:`~automl_tl.data._subfolders`: folder layouts;
* :mod:`~automl_tl.data._held`: inputs held in memory or in tables, written out as files;
* :mod:`~automl_tl.data._text`: text files decoded;
* :mod:`~automl_tl.data._predict`: the inputs of ``automl-tl predict``;
* :mod:`~automl_tl.data._cells`, :mod:`~automl_tl.data._messages`: a cell read, names listed.

The evaluation plan (folds, copies kept together) is :mod:`automl_tl.evaluation`'s; it is
re-exported here, where callers have always found it.
"""

from __future__ import annotations

from automl_tl.data._columns import LABEL_COLUMN_GUESSES, PATH_COLUMN_GUESSES, SPLIT_COLUMNS, TEXT_COLUMN_GUESSES
from automl_tl.data._files import FIND_DEPTH, FIND_MAX_FILES
from automl_tl.data._held import held_inputs_as_files, with_embedded_files
from automl_tl.data._labelled import LabelledData, label_str, validate
from automl_tl.data._load import load_data
from automl_tl.data._messages import NAMES_SHOWN, listed
from automl_tl.data._predict import PredictionInput, api_inputs, prediction_inputs
from automl_tl.data._tables import TABLE_SUFFIXES
from automl_tl.data._text import read_text_file
from automl_tl.evaluation import duplicate_groups, evaluation_plan

__all__ = ["LabelledData", "load_data", "evaluation_plan", "duplicate_groups", "listed", "NAMES_SHOWN",
           "with_embedded_files", "held_inputs_as_files", "prediction_inputs", "api_inputs", "PredictionInput", "label_str",
           "read_text_file", "validate", "TABLE_SUFFIXES", "PATH_COLUMN_GUESSES", "TEXT_COLUMN_GUESSES",
           "LABEL_COLUMN_GUESSES", "SPLIT_COLUMNS", "FIND_DEPTH", "FIND_MAX_FILES"]
