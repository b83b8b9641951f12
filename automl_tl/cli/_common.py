"""What the commands share: exit codes, the argument types, the data options of the commands
that read a dataset, and the estimator those options configure."""

from __future__ import annotations

import argparse

EXIT_OK, EXIT_INTERNAL, EXIT_INPUT, EXIT_PLUGIN = 0, 1, 2, 3


def _time_budget(text: str) -> float:
    """Seconds of a duration: ``90`` (seconds), ``90s``, ``20m``, ``1.5h``, ``1h30m``, ``2 min``
    (:func:`automl_tl.budget.seconds`: the estimator reads ``time_budget`` with the same)."""
    from automl_tl.budget import seconds
    from automl_tl.errors import ConfigError

    try:
        return seconds(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _weights_arg(text: str) -> tuple[str, str]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"{text!r}: use NAME=PATH, e.g. mobilenetv2=/models/mnv2.h5")
    name, path = text.split("=", 1)
    return name.strip(), path.strip()


def _positive_int(text: str) -> int:
    value = _non_negative_int(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} must be 0 or more")
    return value


def _csv_list(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def _add_data_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("data", help="a folder with one sub-folder per class (or train/ val/ test/ folders of "
                                "them, or one flat folder whose file names say the class); a table "
                                "(.csv, .tsv, .parquet, .jsonl, .arrow) of file paths or texts and "
                                "labels; a folder of tables by split (train.csv + test.csv, a Hugging "
                                "Face dataset's data/*.parquet); or a Hugging Face dataset saved with "
                                "save_to_disk")
    g = p.add_argument_group("tables")
    g.add_argument("--text-column", help="column holding the texts (text data)")
    g.add_argument("--path-column", help="column holding file paths (relative ones from the table's "
                                         "folder, or from the current folder when they name files "
                                         "only there)")
    g.add_argument("--label-column", help="column holding the labels (default: label/class/target)")
    g.add_argument("--group-column", help="column of group ids (e.g. speaker, patient): each validation "
                                          "fold holds out whole groups, so the estimate is of new ones "
                                          "(default: a grouping found in a column named like a source, a "
                                          "folder level below the class folders, or the file names)")
    g.add_argument("--no-groups", dest="detect_groups", action="store_false",
                   help="validate on random folds even when the items seem to come from a few sources "
                        "(speakers, sessions) that a column, a folder level or the file names name")
    g.add_argument("--split-column", help="column saying train, val or test for each row: a fixed "
                                          "validation split instead of a random stratified one, test "
                                          "rows left out (default: a column named split or subset "
                                          "whose values say so)")
    g.add_argument("--modality", help="force the modality (image, text, audio) instead of guessing")
    p.add_argument("--backbones", type=_csv_list, metavar="NAME,...",
                   help="restrict the candidate backbones (default: all of the data's modality "
                        "whose weights are available here); see `automl-tl backbones`")
    p.add_argument("--weights", type=_weights_arg, action="append", default=[], metavar="NAME=PATH",
                   help="use this local weights file or folder for backbone NAME (repeatable); "
                        "or set AUTOML_TL_WEIGHTS_DIR to a folder of weight files")


def _estimator(args, **extra):
    from automl_tl.estimator import AutoTransfer

    return AutoTransfer(backbones=getattr(args, "backbones", None), weights=dict(getattr(args, "weights", []) or []),
                        modality=getattr(args, "modality", None), text_column=getattr(args, "text_column", None),
                        label_column=getattr(args, "label_column", None),
                        path_column=getattr(args, "path_column", None),
                        group_column=getattr(args, "group_column", None),
                        detect_groups=getattr(args, "detect_groups", True),
                        split_column=getattr(args, "split_column", None), **extra)
