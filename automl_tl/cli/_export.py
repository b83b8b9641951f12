"""``automl-tl export``: a run's delivered model as ONNX, TFLite or a TensorFlow SavedModel."""

from __future__ import annotations

from automl_tl.cli._common import EXIT_OK


def add_parsers(sub) -> None:
    """The ``export`` command."""
    p = sub.add_parser("export", help="export a run's model as ONNX, TFLite or a TensorFlow SavedModel",
                       description="Convert the model a run delivered (an ensemble averaged, the calibration "
                                   "applied: what `automl-tl predict` computes) with Keras' own model.export, "
                                   "check it in its runtime against the Keras model on validation items, and "
                                   "write it with classes.json and a README.md that says what stays outside "
                                   "the graph (image decoding, tokenisation, audio decoding, class names) "
                                   "with a runnable example. A model with a part outside Keras (a TF-IDF or "
                                   "MFCC featurizer, the ONNX speech embedding) cannot be exported (exit 2). "
                                   "ONNX needs: pip install 'automl-tl[export]'.")
    p.add_argument("run_dir", help="a run directory written by `automl-tl fit` (or AutoTransfer.save)")
    p.add_argument("--format", required=True, choices=("onnx", "tflite", "saved_model"),
                   help="onnx (onnxruntime), tflite (the TFLite / LiteRT interpreter) or saved_model "
                        "(TensorFlow's tf.saved_model.load)")
    p.add_argument("--out", help="the folder to write (default RUN_DIR/export/FORMAT); an existing folder is "
                                 "replaced only if an earlier `automl-tl export` wrote it")


def cmd_export(args) -> int:
    from automl_tl.export import export_run

    result = export_run(args.run_dir, args.format, args.out)
    print(f"exported:  {result.model}")
    for line in result.outside:
        print(f"outside the graph: {line}")
    for note in result.notes:
        print(f"note: {note}")
    check = result.check
    if check.get("ran"):
        verdict = "within" if check["within"] else "NOT within"
        print(f"checked:   {check['items']} validation items through {result.format}'s runtime: largest "
              f"difference from the Keras model {check['max_abs_diff']:.2g} ({verdict} 1e-4)")
    else:
        print(f"not checked: {check.get('why')}")
    print(f"see:       {result.out / 'README.md'} (a runnable example), {result.out / 'classes.json'}")
    return EXIT_OK


COMMANDS = {"export": cmd_export}
