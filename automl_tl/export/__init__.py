"""``automl-tl export``: a run's delivered model as ONNX, TFLite or a TensorFlow SavedModel.

The graph written is what ``automl-tl predict`` computes from the adapter's arrays on: the
delivered Keras model, an ensemble's members averaged with their weights, and the calibration
temperature, converted by Keras' own ``model.export`` (``"onnx"`` through tf2onnx, ``"litert"``
through TensorFlow's TFLite converter, ``"tf_saved_model"``). What the graph does not hold (the
adapter's reading of raw inputs: image decoding, tokenising, audio decoding; the class names) is
said on the terminal and in a README.md beside the export, with a runnable example for the
format's runtime, and the class order is written as ``classes.json``.

A model with a part outside Keras (a TF-IDF or MFCC featurizer, the ONNX speech embedding: a
``featurize`` backbone), as the run's model or an ensemble member, cannot be exported: a
:class:`ExportError` (exit 2) says which part and what to use instead.

The export is written into a staging folder beside ``out`` and renamed into place; an existing
``out`` is replaced only when it is an earlier export of this program (its ``export.json``).
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import shutil
import sys
import tempfile
import warnings
from dataclasses import dataclass, field
from glob import escape as glob_escape
from pathlib import Path
from typing import Any

import numpy as np

from automl_tl._version import __version__
from automl_tl.atomic import DIR_MODE, atomic_write_json, atomic_write_text
from automl_tl.errors import ConfigError, NotFittedError
from automl_tl.export import _onnx
from automl_tl.export._readme import readme, shape_text

__all__ = ["FORMATS", "INSTALL_HINT", "MANIFEST", "ExportError", "ExportResult", "export_run", "delivered_graph",
           "run_exported", "default_out"]

#: format -> the file (or folder) the graph is written to inside the export folder
FORMATS = {"onnx": "model.onnx", "tflite": "model.tflite", "saved_model": "saved_model"}
#: format -> Keras' name for it (``model.export(format=...)``)
KERAS_FORMATS = {"onnx": "onnx", "tflite": "litert", "saved_model": "tf_saved_model"}
RUNTIMES = {"onnx": "onnxruntime", "tflite": "the TFLite interpreter (tf.lite.Interpreter, or ai-edge-litert)",
            "saved_model": "TensorFlow (tf.saved_model.load)"}
#: the manifest that marks a folder as an export of this program (and says what is in it)
MANIFEST = "export.json"
CLASSES = "classes.json"
INSTALL_HINT = "pip install 'automl-tl[export]'"
#: the largest difference from the Keras model the check after conversion lets pass silently
TOLERANCE = 1e-4


class ExportError(ConfigError):
    """The run's model cannot be exported in the asked format (a part outside Keras, a converter
    that fails on an op, a package missing), or ``--out`` is a folder this program did not write
    (exit 2). The message says which and what to do instead."""


@dataclass(frozen=True, kw_only=True)
class ExportResult:
    """What :func:`export_run` wrote: ``out`` (the folder), ``model`` (the graph's file or folder
    in it), the graph's ``inputs`` (name, shape, dtype), ``classes`` in output order,
    ``outside`` (one line per thing the graph does not do), ``notes`` (about the conversion) and
    ``check`` (the runtime's largest difference from the Keras model on validation items, or why
    there was none)."""

    out: Path
    format: str
    model: Path
    inputs: list[dict]
    classes: list[str]
    outside: list[str]
    notes: list[str] = field(default_factory=list)
    check: dict = field(default_factory=dict)


def default_out(run_dir, fmt: str) -> Path:
    """Where an export goes unless told: ``RUN/export/<format>``."""
    return Path(run_dir) / "export" / fmt


def export_run(run_dir, fmt: str, out=None, *, plugin_manager=None) -> ExportResult:
    """Export the model delivered in ``run_dir`` as ``fmt`` (``onnx``, ``tflite``,
    ``saved_model``) into the folder ``out`` (default :func:`default_out`)."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}: choose one of {', '.join(FORMATS)}")
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise NotFittedError(f"{run_dir}: no such run directory. Give a folder written by `automl-tl fit` "
                             f"(or `automl-tl demo --run-dir`, AutoTransfer.save).")
    _require_packages(fmt)
    out = Path(out) if out is not None else default_out(run_dir, fmt)
    _check_out(out)
    from automl_tl.accelerator import float32_copy
    from automl_tl.artifacts import load_predictor, model_folder

    pred = load_predictor(run_dir, plugin_manager=plugin_manager)
    _check_exportable(pred)
    delivered = delivered_graph(pred)
    graph = float32_copy(delivered)  # a bf16 model (fit --precision): runtimes have float32 kernels
    inputs = _input_specs(graph)
    sample = _sample_batch(pred, run_dir)
    notes: list[str] = [] if graph is delivered else [
        "the model computes in bfloat16 in automl-tl; it is exported computing in float32 (same weights)"]
    _call_once(graph, sample, inputs)
    with _staging(out) as tmp:
        notes += _convert(graph, fmt, tmp / FORMATS[fmt])
        check = _check(tmp / FORMATS[fmt], fmt, graph, sample)
        assets = model_folder(run_dir) / "assets"
        if assets.is_dir() and any(assets.iterdir()):
            shutil.copytree(assets, tmp / "assets", symlinks=False)
        outside = outside_lines(pred, inputs, has_assets=(tmp / "assets").is_dir())
        result = ExportResult(out=out, format=fmt, model=out / FORMATS[fmt], inputs=inputs, classes=list(pred.labels),
                              outside=outside, notes=notes, check=check)
        atomic_write_json(tmp / CLASSES, list(pred.labels))
        atomic_write_text(tmp / "README.md", readme(
            fmt=fmt, model_file=FORMATS[fmt], runtime=RUNTIMES[fmt], inputs=inputs, classes=result.classes,
            outside=outside, notes=notes, check=check, adapter=pred.adapter.config(), run=os.path.abspath(run_dir),
            backbone=pred.config["backbone"], members=[m.config["backbone"] for m in pred.members],
            weights=list(pred.weights), temperature=pred.temperature,
            classes_file=CLASSES))
        files = sorted(os.listdir(tmp)) + [MANIFEST]
        atomic_write_json(tmp / MANIFEST, _manifest(result, pred, run_dir) | {"files": files})
    return result


# ------------------------------------------------------------------------------ checks
def _require_packages(fmt: str) -> None:
    """The converter of ``fmt`` and the TensorFlow backend, or an ExportError naming the install."""
    import keras

    if keras.backend.backend() != "tensorflow":
        raise ExportError(f"export converts through TensorFlow, and Keras runs on {keras.backend.backend()!r} "
                          f"here: run it with KERAS_BACKEND=tensorflow (the model file is the same)")
    needed = {"onnx": ("tf2onnx", "onnx")}.get(fmt, ())
    missing = [name for name in needed if _importable(name) is None]
    if missing:
        raise ExportError(f"--format {fmt} needs {' and '.join(missing)}, which are not installed: {INSTALL_HINT} "
                          f"(or use --format saved_model, which needs TensorFlow only)")


def _importable(name: str):
    import importlib.util

    return importlib.util.find_spec(name)


def _members(pred) -> list[tuple[str, Any]]:
    """``(what, predictor)`` for the run's model and each ensemble member, in weight order."""
    return [("the run's model", pred)] + [(f"ensemble member {i} (members/{i})", m) for i, m in enumerate(pred.members)]


def _check_exportable(pred) -> None:
    """Refuse a model with a part outside Keras, or an ensemble whose members take different inputs."""
    for what, p in _members(pred):
        if p._featurize is not None:
            alone = not pred.members
            raise ExportError(
                f"{what} ({p.config['backbone']}) computes its features outside Keras (a "
                f"{'classical ' if p.config.get('classical') else ''}featurizer run by "
                f"{'scikit-learn/numpy' if p.config.get('classical') else 'its own runtime'}), so no "
                f"export format can hold it: use `automl-tl predict` or AutoTransfer.load(RUN).predict_proba "
                f"where Python runs" + (", or fit with --backbones naming a Keras backbone (one that is not "
                                        "classical or feature-extraction only; `automl-tl backbones` lists them)"
                                        if alone else ", or fit again with --no-ensemble so one Keras model is "
                                                      "delivered"))
    first = pred.adapter.config()
    for what, p in _members(pred)[1:]:
        if p.adapter.config() != first:
            raise ExportError(f"{what} ({p.config['backbone']}) reads its inputs differently from the run's model "
                              f"({pred.config['backbone']}), and an export holds one graph with one input: fit "
                              f"again with --no-ensemble to deliver one model, or use `automl-tl predict`")


def _check_out(out: Path) -> None:
    """``out`` may be written: absent, an empty folder, or an earlier export of this program."""
    if not out.exists() and not out.is_symlink():
        return
    if out.is_symlink() or not out.is_dir():
        raise ExportError(f"{out} exists and is not an export folder: give --out a new folder (it is never "
                          f"replaced unless an earlier `automl-tl export` wrote it)")
    if not any(out.iterdir()):
        return
    manifest = _manifest_of(out)
    if manifest is None:
        raise ExportError(f"{out} exists and was not written by `automl-tl export` (it has no {MANIFEST} of "
                          f"ours): give --out a new folder, or move that one away; it is never replaced")
    ours = manifest.get("files") or [MANIFEST, CLASSES, "README.md", "assets", str(manifest.get("model"))]
    foreign = sorted(set(os.listdir(out)) - set(ours))
    if foreign:
        raise ExportError(f"{out} is an earlier export, but holds what `automl-tl export` did not write "
                          f"({', '.join(foreign[:5])}): move that away, or give --out a new folder")


def _manifest_of(folder: Path) -> dict | None:
    """The manifest of an export of this program in ``folder``, or None."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) and manifest.get("written_by") == "automl-tl export" else None


@contextlib.contextmanager
def _staging(out: Path):
    """A folder beside ``out`` to write into, renamed to ``out`` when the block ends without an
    error (an earlier export there is swapped out, then removed); removed on any error."""
    out.parent.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(out)
    # the pid in the name: a leftover of a killed process tells itself from a live one's
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.{os.getpid()}.", dir=out.parent))
    os.chmod(tmp, DIR_MODE)
    old = None
    try:
        yield tmp
        if out.is_dir():
            old = out.with_name(f".{out.name}.{os.getpid()}.old")
            os.rename(out, old)
        os.rename(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def _remove_leftovers(out: Path) -> None:
    """Remove the staging folders of exports to ``out`` whose process is gone (a kill -9):
    ``.<name>.<pid>.<x>``, names only this module makes."""
    from automl_tl.workers import pid_alive

    for p in out.parent.glob(f".{glob_escape(out.name)}.*.*"):
        pid = p.name[len(out.name) + 2:].split(".", 1)[0]
        if pid.isdigit() and not pid_alive(int(pid)) and p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)


# ------------------------------------------------------------------------------ the graph
def delivered_graph(pred):
    """One Keras model computing what ``pred.predict_proba`` computes from the adapter's arrays:
    the model itself for a single, uncalibrated model; else a model around it that averages the
    ensemble's members with their weights and applies the calibration temperature
    (``softmax(log(clip(p, FLOOR, 1)) / T)``, :func:`automl_tl.calibration.apply_temperature`)."""
    import keras

    from automl_tl.calibration import FLOOR

    models = [p.model for _, p in _members(pred)]
    if len(models) == 1 and pred.temperature == 1.0:
        return pred.model
    inputs = keras.tree.map_structure(
        lambda t: keras.Input(shape=tuple(t.shape[1:]), dtype=t.dtype, name=_input_name(t)), pred.model.input)
    weights = [float(w) / sum(pred.weights) for w in pred.weights]
    p = None
    for i, (w, m) in enumerate(zip(weights, models)):
        if len(models) > 1:  # every member was saved under one name; a graph's operations need their own
            m.name = f"{m.name}_member_{i}"
        y = m(inputs) * w
        p = y if p is None else p + y
    if pred.temperature != 1.0:
        p = keras.ops.softmax(keras.ops.log(keras.ops.clip(p, FLOOR, 1.0)) / float(pred.temperature), axis=-1)
    return keras.Model(inputs, p, name="automl_tl_delivered")


def _call_once(graph, sample, inputs: list[dict]) -> None:
    """Run ``graph`` once: Keras' ONNX export refuses a model never called (a loaded one is not),
    though its inputs are known. On ``sample``, else on zeros (any size 8)."""
    if sample is None:
        zeros = {i["name"]: np.zeros([1 if k == 0 else (d or 8) for k, d in enumerate(i["shape"])], i["dtype"])
                 for i in inputs}
        sample = zeros if isinstance(graph.input, dict) else next(iter(zeros.values()))
    graph(sample)


def _input_name(tensor) -> str:
    # a KerasTensor's name is its Input layer's name ("image", "token_ids")
    return str(getattr(tensor, "name", "input")).split(":")[0]


def _input_specs(graph) -> list[dict]:
    """The graph's inputs: name, shape (None for a size the caller picks) and dtype, in call order."""
    import keras

    flat = keras.tree.flatten(graph.input)
    keys = list(graph.input) if isinstance(graph.input, dict) else [_input_name(t) for t in flat]
    return [{"name": k, "shape": [None if d is None else int(d) for d in t.shape], "dtype": str(t.dtype)}
            for k, t in zip(keys, flat)]


def _convert(graph, fmt: str, path: Path) -> list[str]:
    """``graph.export`` to ``path`` in ``fmt``; notes to tell the user. A converter's failure is an
    ExportError naming it and the format to use instead."""
    notes = []
    kwargs: dict[str, Any] = {}
    if fmt == "tflite":
        import tensorflow as tf

        # TFLite's own ops first: the model then runs on any TFLite runtime; TensorFlow's "select"
        # ops (Keras' default fallback) need the full TensorFlow interpreter
        kwargs = {"target_spec": {"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS]}}
    if fmt == "onnx":
        _onnx.prepare(graph)
    try:
        with _quiet():
            graph.export(str(path), format=KERAS_FORMATS[fmt], verbose=False, **kwargs)
    except Exception as first:  # noqa: BLE001 - any converter error: told below, with what to use instead
        if fmt != "tflite":
            raise _converter_failed(fmt, first) from first
        shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
        try:
            with _quiet():
                graph.export(str(path), format=KERAS_FORMATS[fmt], verbose=False)
        except Exception as exc:  # noqa: BLE001
            raise _converter_failed(fmt, exc) from exc
        notes.append("the graph uses TensorFlow ops that TFLite lacks (select ops): it runs in the full "
                     "TensorFlow package's tf.lite.Interpreter, not in ai-edge-litert alone")
    if fmt == "onnx":
        problem = _onnx.invalid(path)
        if problem:
            raise ExportError(f"tf2onnx left an op in the graph that ONNX does not have ({problem}): this model "
                              f"cannot be held by ONNX; use --format tflite or --format saved_model instead")
    return notes


def _converter_failed(fmt: str, exc: BaseException) -> ExportError:
    first_line = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
    other = "saved_model" if fmt != "saved_model" else "`automl-tl predict`"
    return ExportError(f"the {fmt} converter cannot convert this model ({type(exc).__name__}: {first_line[:300]}); "
                       f"use --format {other} instead" if fmt != "saved_model" else
                       f"TensorFlow cannot save this model as a SavedModel ({type(exc).__name__}: "
                       f"{first_line[:300]}); use {other} or AutoTransfer.load(RUN).predict_proba instead")


@contextlib.contextmanager
def _quiet():
    """The converters print progress (tf2onnx's log lines, TensorFlow's C++ notices) through
    Python logging and file descriptor 2: kept off the terminal, which says what happened."""
    import logging

    loggers = [logging.getLogger(n) for n in ("tf2onnx", "tensorflow", "absl")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():  # Keras' tf2onnx patch warns about np.object, for instance
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


@contextlib.contextmanager
def _stderr_off():
    """File descriptor 2 pointed at /dev/null: the runtimes' C++ start-up notices ("Created
    TensorFlow Lite XNNPACK delegate for CPU") are no news to the user; errors still come as
    Python exceptions."""
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


# ------------------------------------------------------------------------------ the check
def _sample_batch(pred, run_dir: Path, n: int = 4):
    """The adapter's arrays for up to ``n`` validation items of the run that can still be read
    (``val_predictions.csv``), or None."""
    path = run_dir / "val_predictions.csv"
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            items = [row["item"] for _, row in zip(range(4 * n), csv.DictReader(fh))]
    except (OSError, KeyError, csv.Error):
        return None
    try:
        _, usable, _ = pred.check_inputs(items)
        return pred.adapter(usable[:n]) if usable else None
    except Exception:  # noqa: BLE001 - moved or deleted files: no check, said so
        return None


def run_exported(path, fmt: str, batch) -> np.ndarray:
    """Probabilities from the exported graph at ``path`` in its own runtime, for ``batch`` (the
    adapter's array, or dict of arrays)."""
    feed = dict(batch) if isinstance(batch, dict) else None
    if fmt == "onnx":
        import onnxruntime

        sess = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        names = [i.name for i in sess.get_inputs()]
        arrays = {n: np.asarray(feed[n]) for n in names} if feed else {names[0]: np.asarray(batch)}
        return np.asarray(sess.run(None, arrays)[0])
    if fmt == "tflite":
        with warnings.catch_warnings():  # TensorFlow's own interpreter warns that it is deprecated
            warnings.simplefilter("ignore")
            interpreter = _tflite_interpreter(path)
        runner = interpreter.get_signature_runner()
        names = list(runner.get_input_details())
        arrays = {n: np.asarray(feed[n]) for n in names} if feed else {names[0]: np.asarray(batch)}
        return np.asarray(next(iter(runner(**arrays).values())))
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))
    return np.asarray(loaded.serve(feed if feed else np.asarray(batch)))


def _tflite_interpreter(path):
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter
    return Interpreter(model_path=str(path))


def _check(path: Path, fmt: str, graph, sample) -> dict:
    """The exported graph run in its runtime on ``sample`` against the Keras graph: the largest
    absolute difference in probability, or why it was not run."""
    if sample is None:
        return {"ran": False, "why": "no validation item of the run could be read"}
    try:
        with _quiet(), _stderr_off():
            got = run_exported(path, fmt, sample)
    except ImportError as exc:
        return {"ran": False, "why": f"{exc.name or exc} is not installed ({INSTALL_HINT})"}
    from automl_tl.forward import compiled_forward

    want = compiled_forward(graph)(sample)  # the call the engine's and the server's predictions run
    if got.shape != want.shape:
        raise ExportError(f"the {fmt} graph gives outputs of shape {got.shape}, the Keras model {want.shape}: "
                          f"the conversion went wrong; use --format saved_model instead")
    diff = float(np.max(np.abs(got - want))) if got.size else 0.0
    return {"ran": True, "items": int(len(want)), "max_abs_diff": diff, "within": diff <= TOLERANCE}


# ------------------------------------------------------------------------------ what is outside
def outside_lines(pred, inputs: list[dict], *, has_assets: bool) -> list[str]:
    """One line per thing the graph does not do, which the caller must (preprocessing, classes)."""
    conf = pred.adapter.config()
    shapes = ", ".join(f"{i['name']} {shape_text(i['shape'])} {i['dtype']}" for i in inputs)
    lines = []
    if "image_size" in conf:
        s, dtype = int(conf.get("source_size", conf["image_size"])), ("uint8" if "source_size" in conf else "float32")
        lines.append(f"image decoding: each image is read as RGB and resized to {s}x{s} (bilinear), given as "
                     f"{dtype} values 0-255 ({shapes}); the graph resizes and normalises them itself")
    elif "tokenizer" in conf:
        lines.append(f"tokenisation: texts become {shapes} with the run's tokenizer "
                     f"({'assets/' if has_assets else ''}{conf['tokenizer']}: truncated to "
                     f"{conf['sequence_length']} tokens, padded with id {conf['pad_id']}, mask 1 on tokens)")
    elif "sample_rate" in conf:
        secs = float(conf.get("duration", 1.0))
        what = ("Whisper log-mel features of it" if conf.get("frontend") == "log-mel" else "the waveform")
        lines.append(f"audio decoding: each file is decoded to mono float32, resampled to {conf['sample_rate']} Hz "
                     f"and cut or zero-padded to {secs:g} s ({'crop ' + str(conf.get('crop', 'start'))}); "
                     f"the graph takes {what} ({shapes})")
    else:
        lines.append(f"preprocessing: the {pred.modality.name} adapter ({type(pred.adapter).__name__}) makes "
                     f"{shapes} from raw inputs")
    lines.append(f"class names: the graph outputs {len(pred.labels)} probabilities in the order of {CLASSES} "
                 f"({', '.join(pred.labels[:5])}{', ...' if len(pred.labels) > 5 else ''})")
    return lines


def _manifest(result: ExportResult, pred, run_dir: Path) -> dict:
    return {"written_by": "automl-tl export", "version": __version__, "format": result.format,
            "model": FORMATS[result.format], "run": os.path.abspath(run_dir), "backbone": pred.config["backbone"],
            "trial": pred.config.get("trial"), "modality": pred.modality.name, "inputs": result.inputs,
            "classes": result.classes, "ensemble_members": [m.config["backbone"] for m in pred.members],
            "ensemble_weights": list(pred.weights), "temperature": pred.temperature,
            "adapter": pred.adapter.config(), "outside": result.outside, "notes": result.notes,
            "check": result.check}
