"""``automl-tl predict``: label raw inputs with a saved run, optionally into a CSV file;
``automl-tl evaluate``: score it on new labelled data."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from automl_tl.cli._common import EXIT_INPUT, EXIT_OK


def add_parsers(sub) -> None:
    """The ``predict`` command."""
    p = sub.add_parser("predict", help="predict labels for raw inputs with a saved run",
                       description="Print one line per input: the input, its predicted label and "
                                   "probability. Inputs that cannot be read are reported, not guessed.")
    p.add_argument("run_dir", help="a run directory written by `automl-tl fit` (or AutoTransfer.save)")
    p.add_argument("inputs", nargs="+",
                   help="files (images, audio) or texts to classify; a folder stands for the files in it, "
                        "a table (.csv, .tsv, .parquet, .jsonl) for its rows")
    p.add_argument("--column", help="the table column holding the inputs (default: a text or path column "
                                    "by its name, else the only column that is not a label)")
    p.add_argument("--json", action="store_true", help="print JSON lines instead")
    p.add_argument("--output", metavar="FILE.csv",
                   help="also write the predictions to this CSV: input, label, probability, error, and "
                        "one column of probability per class (a file it did not write is never replaced)")
    add_evaluate_parser(sub)


def add_evaluate_parser(sub) -> None:
    """The ``evaluate`` command."""
    p = sub.add_parser("evaluate", help="score a saved run on new labelled data: more than one number",
                       description="Score a saved run on labelled data it never saw: accuracy, macro-F1, "
                                   "balanced accuracy, log-loss and expected calibration error, each with a "
                                   "95%% bootstrap interval, per-class precision / recall / F1 and the "
                                   "confusion matrix; written as evaluation.json and evaluation.html "
                                   "(the confusion matrix as a picture) into --out.")
    p.add_argument("run_dir", help="a run directory written by `automl-tl fit` (or AutoTransfer.save)")
    p.add_argument("data", help="labelled data: a folder with one sub-folder per class, or a table with a "
                                "label column (and the fit's column of inputs)")
    p.add_argument("--column", help="the table column holding the inputs (default: as `predict` finds it)")
    p.add_argument("--out", help="where evaluation.json and evaluation.html go (default: RUN_DIR)")
    p.add_argument("--json", action="store_true", help="print the evaluation as JSON")


def cmd_evaluate(args) -> int:
    from automl_tl.artifacts import load_predictor
    from automl_tl.report import evaluate_labelled, write_evaluation

    pred = load_predictor(args.run_dir)
    record = evaluate_labelled(pred, args.data, column=args.column)
    paths = write_evaluation(record, args.out or args.run_dir)
    if args.json:
        print(json.dumps(record))
        return EXIT_OK
    print(f"{record['n']} items scored ({record['unknown_labels']} with a label the model does not know and "
          f"{record['unreadable']} unreadable left out)")
    for name, m in record["metrics"].items():
        interval = f"  [{m['interval'][0]:.4f}, {m['interval'][1]:.4f}]" if m["interval"] else ""
        print(f"{name + ':':<20}{m['value']:.4f}{interval}")
    print(f"written:            {paths['json']}, {paths['html']}")
    return EXIT_OK


def cmd_predict(args) -> int:
    from automl_tl.artifacts import load_predictor
    from automl_tl.data import prediction_inputs
    from automl_tl.errors import DataError

    pred = load_predictor(args.run_dir)
    # a missing or unreadable file is one SKIPPED line, not the end of the batch
    fit_columns = (pred.config.get("columns") or {})
    inputs = prediction_inputs(args.inputs, pred.modality, args.column,
                               (fit_columns.get("inputs"), fit_columns.get("labels")))
    items = [x.value for x in inputs]
    if not items:
        raise DataError(f"nothing to classify in {', '.join(map(str, args.inputs))}: give files, texts, "
                        f"a folder of {pred.modality.name} files or a table with a column of inputs.")
    output = _prediction_file(args.output) if args.output else None  # refused before the work
    keep, usable, skips = pred.check_inputs(items)
    proba = pred.predict_proba(usable) if usable else []
    by_item = dict(zip(keep, proba))
    # each input the check dropped has one skip, in order (a text's skip names it by position)
    dropped = [i for i in range(len(items)) if i not in by_item]
    skip_reason = ({i: s.reason for i, s in zip(dropped, skips)} if len(dropped) == len(skips)
                   else {i: s.reason for i, x in enumerate(items) for s in skips if s.item == str(x)})
    right = judged = 0
    rows = []
    for i, x in enumerate(inputs):
        item, truth = x.shown, x.truth  # shown: a text file's path, while its content was classified
        if i in by_item:
            p = by_item[i]
            k = int(p.argmax())
            rec = {"input": item, "label": pred.labels[k], "probability": round(float(p[k]), 4)}
            if truth in pred.labels:  # a file in a class-named folder, a table row with its label
                judged += 1
                right += pred.labels[k] == truth
        else:
            rec = {"input": item, "label": None, "error": skip_reason.get(i, "unusable input")}
        if output is not None:
            rows.append(rec | ({"error": ""} if i in by_item else {})
                        | {c: (round(float(v), 6) if i in by_item else None)
                           for c, v in zip(_class_columns(pred.labels), by_item.get(i, [None] * len(pred.labels)))})
        one_line = " ".join(str(item).split()) if "\n" in str(item) or "\t" in str(item) else item
        if args.json:
            print(json.dumps(rec, ensure_ascii=False))
        elif rec["label"] is None:
            print(f"{one_line}\tSKIPPED\t{rec['error']}")
        else:
            print(f"{one_line}\t{rec['label']}\t{rec['probability']:.4f}")
    if output is not None:
        _write_predictions(output, rows, pred.labels)
    if judged:
        print(f"accuracy {right / judged:.4f} on the {judged} inputs whose label the data gives (a class "
              f"folder, a label column): {right} right", file=sys.stderr)
    return EXIT_OK if not skips else EXIT_INPUT


#: the first columns of a predictions file; its header says automl-tl wrote it (and may replace it)
PREDICTION_COLUMNS = ("input", "label", "probability", "error")


def _prediction_file(path: str) -> Path:
    """Where ``predict --output`` writes, checked before any prediction: a ``.csv``, in an existing
    folder, and not a file this program did not write (one whose first line is not the header of
    a predictions file: such a file is never replaced)."""
    from automl_tl.errors import DataError

    out = Path(path)
    if out.suffix.lower() != ".csv":
        raise DataError(f"--output {path}: give a file name ending in .csv.")
    if not out.parent.is_dir():
        raise DataError(f"--output {path}: the folder {out.parent} does not exist.")
    if out.exists():
        try:
            with open(out, encoding="utf-8", errors="replace") as fh:
                first = fh.readline().rstrip("\r\n")
        except OSError:
            first = ""
        if not first.startswith(",".join(PREDICTION_COLUMNS)):
            raise DataError(f"--output {path}: the file exists and was not written by automl-tl predict; "
                            f"it is left as it is. Give another name, or move it away.")
    return out


def _class_columns(labels) -> list[str]:
    """The column of each class's probability: its name, or ``p_<name>`` for a class named like
    one of the first columns (a class called "label")."""
    return [f"p_{c}" if c in PREDICTION_COLUMNS else str(c) for c in labels]


def _write_predictions(out: Path, rows, labels) -> None:
    import pandas as pd

    from automl_tl.atomic import atomic_write_text

    columns = list(PREDICTION_COLUMNS) + _class_columns(labels)
    atomic_write_text(out, pd.DataFrame(rows, columns=columns).to_csv(index=False))
    print(f"predictions written to {out}", file=sys.stderr)


COMMANDS = {"predict": cmd_predict, "evaluate": cmd_evaluate}
