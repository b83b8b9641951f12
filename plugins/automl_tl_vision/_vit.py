"""Vision Transformer (ViT) image backbones from Hugging Face checkpoints, through KerasHub.

Backbones: ``vit-base-patch16-224-in21k`` (``google/vit-base-patch16-224-in21k``, ViT-B/16
pretrained on ImageNet-21k) and ``vit-small-patch16-224`` (``WinKawaks/vit-small-patch16-224``,
timm's ViT-S/16 pretrained on ImageNet-21k and fine-tuned on ImageNet-1k, in the Hugging Face
``ViTForImageClassification`` format). Weights come from a Hugging Face model folder
(``config.json`` of ``model_type`` "vit" + ``model.safetensors``, optionally
``preprocessor_config.json``), found in this order:

1. ``--weights NAME=FOLDER`` (or ``$AUTOML_TL_WEIGHTS_DIR/NAME/``), checked when located: a folder
   without ``config.json`` or safetensors weights, or holding another ``model_type``, is a clear
   :class:`~automl_tl.errors.WeightsUnavailableError`;
2. the Hugging Face hub (``hf://owner/name``), when in the local Hugging Face cache or online.

Both are *converted* sources: KerasHub's ViT converter
(``keras_hub/src/utils/transformers/convert_vit.py``) translates the PyTorch layout into
KerasHub's :class:`keras_hub.models.ViTBackbone`, whose layers are then rewired into a flat
functional model ``image (B, size, size, 3) in [0, 255] -> pooled (B, D)``:

* ``automl_tl_vit_preprocess`` - what the checkpoint's image processor does: bilinear resize to
  the checkpoint's image size (ViT's position embeddings are for that grid), rescale by 1/255,
  normalise with its mean / std (0.5 / 0.5 for google's ViT; read from
  ``preprocessor_config.json`` when the folder has one), so a saved ``.keras`` model predicts from
  raw pixels;
* ``vit_embedding`` - patch embedding + class token + position embeddings;
* ``vit_layer_0`` ... ``vit_layer_{L-1}`` - the transformer layers (pre-norm), each a direct
  layer of the model, so the engine's per-variable freezing acts on exactly these blocks;
* ``vit_final_norm`` - the final layer norm; then ``pooling``: ``cls`` (the final-normed class
  token, ``ViTModel(...).last_hidden_state[:, 0]``) or ``mean`` (the mean of the final-normed
  *patch* tokens, the class token excluded, as timm's ``global_pool="avg"``).

``blocks``: ``[[vit_embedding], [vit_layer_0], ..., [vit_layer_{L-1}, vit_final_norm]]``, so
"fine-tune the top N blocks" means the last N transformer layers (the final norm goes with the top
one: it only acts on its output).

Similarity to the pretraining data (``automl-tl profile``): ViT has no BatchNormalization layer,
so the image modality measures it on pixel statistics against ImageNet's (as for VGG16), not by
BN-statistics shift; the two methods have their own scales and are not compared with each other.

Importing this module is cheap: Keras and KerasHub are imported when a model or adapter is built
(:func:`register_layers` defines the serialisable layers; ``make_adapter`` and ``build`` call it,
so ``keras.saving.load_model`` works after either, as the engine's predict path does).
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from automl_tl.backbones import BackboneSpec
from automl_tl.errors import ConfigError, WeightsUnavailableError
from automl_tl.weights import HF_HOST, Download, ResolvedWeights, UserPath, hf_cached, hf_local

__all__ = ["VIT_BACKBONES", "ViTInfo", "vit_specs", "vit_arch", "vit_n_params", "check_vit_folder",
           "ViTFolder", "register_layers", "blocks", "POOLINGS"]

#: ``pooling`` choices, the default first: the class token is what ViT was trained to summarise
#: the image with (its classifier reads it); the patch-token mean is often the stronger frozen
#: feature away from the pretraining domain. The probe ranks both per data set (one pass).
POOLINGS = ("cls", "mean")
HF_FILES = ["config.json", "preprocessor_config.json", "model.safetensors",
            "model.safetensors.index.json", "model-*.safetensors"]
#: Hugging Face ``resample`` codes (PIL's) -> Keras interpolation
_RESAMPLE = {0: "nearest", 2: "bilinear", 3: "bicubic"}
#: what ViTImageProcessor does without a preprocessor_config.json
_PRE_DEFAULTS = {"image_mean": (0.5, 0.5, 0.5), "image_std": (0.5, 0.5, 0.5),
                 "rescale_factor": 1.0 / 255.0, "interpolation": "bilinear"}


@dataclass(frozen=True, kw_only=True)
class ViTInfo:
    name: str
    hf_repo: str
    #: architecture (random builds; a checkpoint brings its own from config.json)
    arch: Mapping[str, Any]
    pretrained_on: str
    description: str
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def num_layers(self) -> int:
        return int(self.arch["num_layers"])


def _arch(hidden, layers, heads, mlp, image=224, patch=16):
    return {"image_size": image, "patch_size": patch, "num_layers": layers, "num_heads": heads,
            "hidden_dim": hidden, "mlp_dim": mlp, "layer_norm_epsilon": 1e-12, "qkv_bias": True,
            "dropout_rate": 0.0, "attention_dropout": 0.0}


_SIMILARITY = ("no BatchNorm: profile measures similarity on pixel statistics against ImageNet's")

VIT_BACKBONES: tuple[ViTInfo, ...] = (
    ViTInfo(
        name="vit-base-patch16-224-in21k", hf_repo="google/vit-base-patch16-224-in21k",
        arch=_arch(768, 12, 12, 3072),
        pretrained_on="ImageNet-21k",
        description="ViT-B/16 (google, 86M): 12 layers, 768-d, 16x16 patches at 224 px; "
                    "pooling 'cls' or 'mean' (patch tokens); " + _SIMILARITY),
    ViTInfo(
        name="vit-small-patch16-224", hf_repo="WinKawaks/vit-small-patch16-224",
        arch=_arch(384, 12, 6, 1536),
        pretrained_on="ImageNet-21k, fine-tuned on ImageNet-1k",
        description="ViT-S/16 (timm AugReg weights in Hugging Face ViT format, 22M): 12 layers, "
                    "384-d, 16x16 patches at 224 px; pooling 'cls' or 'mean'; " + _SIMILARITY),
)


def vit_n_params(arch: Mapping[str, Any]) -> int:
    """Parameters of the headless encoder (what ``ViTModel(config, add_pooling_layer=False)``
    counts: patch embedding, class token, position embeddings, layers, final norm)."""
    S, P, L, D, F = (int(arch[k]) for k in ("image_size", "patch_size", "num_layers", "hidden_dim", "mlp_dim"))
    positions = (S // P) ** 2 + 1
    embed = 3 * P * P * D + D + D + positions * D
    attention = 4 * D * D + (4 if arch.get("qkv_bias", True) else 1) * D   # q k v (+bias), out + bias
    layer = attention + 2 * D * F + F + D + 4 * D                           # mlp, two layer norms
    return embed + L * layer + 2 * D


# ---------------------------------------------------------------------- checkpoint folders
def vit_arch(config: Mapping[str, Any], where: str = "config.json") -> dict:
    """The architecture of a Hugging Face ``ViTConfig``; refuses what KerasHub's ViT cannot run."""
    def refuse(what):
        raise WeightsUnavailableError(f"{where} {what}; a ViT backbone cannot load it")

    act = config.get("hidden_act", "gelu")
    if act != "gelu":  # KerasHub's ViT MLP uses the exact (erf) GELU
        refuse(f"has hidden_act {act!r} (supported: 'gelu')")
    if int(config.get("num_channels", 3)) != 3:
        refuse(f"has num_channels {config.get('num_channels')} (RGB images need 3)")
    try:
        image, patch = config.get("image_size", 224), config.get("patch_size", 16)
        image = int(image[0] if isinstance(image, (list, tuple)) and len(set(image)) == 1 else image)
        patch = int(patch[0] if isinstance(patch, (list, tuple)) and len(set(patch)) == 1 else patch)
        hidden, heads = int(config["hidden_size"]), int(config["num_attention_heads"])
        arch = {"image_size": image, "patch_size": patch,
                "num_layers": int(config["num_hidden_layers"]), "num_heads": heads,
                "hidden_dim": hidden, "mlp_dim": int(config["intermediate_size"]),
                "layer_norm_epsilon": float(config.get("layer_norm_eps", 1e-12)),
                "qkv_bias": bool(config.get("qkv_bias", True)),
                "dropout_rate": float(config.get("hidden_dropout_prob", 0.0)),
                "attention_dropout": float(config.get("attention_probs_dropout_prob", 0.0))}
    except (KeyError, TypeError, ValueError) as exc:
        refuse(f"is not a ViT config this backbone reads ({type(exc).__name__}: {exc})")
    if image % patch or hidden % heads:
        refuse(f"has image_size {image} / patch_size {patch} / hidden_size {hidden} / "
               f"{heads} heads that do not divide")
    return arch


def _preprocessing(folder: Path | None) -> dict:
    """Rescale / normalisation / resampling of the checkpoint's ``preprocessor_config.json``."""
    pre = dict(_PRE_DEFAULTS)
    path = folder / "preprocessor_config.json" if folder is not None else None
    if path is None or not path.is_file():
        return pre
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
        if "image_mean" in cfg:
            pre["image_mean"] = tuple(float(v) for v in cfg["image_mean"])
            pre["image_std"] = tuple(float(v) for v in cfg["image_std"])
        pre["rescale_factor"] = float(cfg.get("rescale_factor", pre["rescale_factor"]))
        if cfg.get("do_rescale") is False:
            pre["rescale_factor"] = 1.0
        if cfg.get("do_normalize") is False:
            pre["image_mean"], pre["image_std"] = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
        resample = int(cfg.get("resample", 2))
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise WeightsUnavailableError(f"{path} is not a readable image-processor config: {exc}") from exc
    if resample not in _RESAMPLE:
        raise WeightsUnavailableError(f"{path}: resample {resample} is not supported "
                                      f"(supported: {sorted(_RESAMPLE)} = {list(_RESAMPLE.values())})")
    if len(pre["image_mean"]) != 3 or len(pre["image_std"]) != 3:
        raise WeightsUnavailableError(f"{path}: image_mean / image_std need 3 values (RGB)")
    pre["interpolation"] = _RESAMPLE[resample]
    return pre


def check_vit_folder(folder: str | Path, name: str = "vit") -> Path:
    """Validate a Hugging Face ViT model folder; return it as a Path (a file inside it: its folder)."""
    path = Path(folder)
    if path.is_file():
        path = path.parent
    if not path.is_dir():
        raise WeightsUnavailableError(f"{name}: model folder {path} does not exist")
    missing = []
    if not (path / "config.json").is_file():
        missing.append("config.json (the Hugging Face model config)")
    if not ((path / "model.safetensors").is_file() or (path / "model.safetensors.index.json").is_file()):
        if (path / "pytorch_model.bin").is_file():
            missing.append("model.safetensors (only pytorch_model.bin found; re-save it with "
                           "transformers: `ViTModel.from_pretrained(F).save_pretrained(F)`)")
        else:
            missing.append("model.safetensors (the weights)")
    if missing:
        raise WeightsUnavailableError(
            f"{name}: the model folder {path} is not a usable Hugging Face ViT checkpoint; missing: "
            + "; ".join(missing) + ". Point --weights at a folder saved with `save_pretrained`.")
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise WeightsUnavailableError(f"{name}: {path / 'config.json'} is not valid JSON: {exc}") from exc
    mtype = config.get("model_type") if isinstance(config, dict) else None
    if mtype != "vit":
        raise WeightsUnavailableError(
            f"{name}: {path / 'config.json'} has model_type {mtype!r}, but backbone {name!r} is a "
            f"ViT image encoder (expects model_type 'vit'). Give a ViT checkpoint (ViTModel or "
            f"ViTForImageClassification, saved with `save_pretrained`).")
    vit_arch(config, f"{name}: {path / 'config.json'}")
    _preprocessing(path)
    return path


@dataclass(frozen=True, kw_only=True)
class ViTFolder(UserPath):
    """A user-given Hugging Face ViT folder, validated when located (a clear error at once)."""

    def locate(self, backbone, overrides):
        location = super().locate(backbone, overrides)
        return str(check_vit_folder(location, backbone)) if location else None

    def hint(self, backbone):
        return (f"pass --weights {backbone}=FOLDER (a Hugging Face ViT folder: config.json, "
                f"model.safetensors), or put the folder {self.filename!r} in the folder named by "
                f"$AUTOML_TL_WEIGHTS_DIR")


def local_folder(weights: ResolvedWeights, name: str) -> Path:
    """The local model folder of resolved weights (an ``hf://`` location is downloaded first)."""
    return check_vit_folder(hf_local(weights.location, HF_FILES, name), name)


def weight_sources(info: ViTInfo) -> tuple:
    # Hugging Face checkpoints are translated to KerasHub's layout when loaded: "converted"
    return (ViTFolder(filename=info.name, converted=True),
            Download(location=f"hf://{info.hf_repo}", host=HF_HOST,
                     cached=hf_cached(info.hf_repo, HF_FILES, lambda f: check_vit_folder(f, info.hf_repo)),
                     converted=True))


# ---------------------------------------------------------------------- Keras layers
@functools.lru_cache(maxsize=None)
def register_layers():
    """Define (once) and register the serialisable layers of the ViT model; returns them.

    The embedding and transformer layer are KerasHub's, subclassed only to make them
    serialisable on their own: KerasHub saves them inside ``ViTBackbone`` (whose config rebuilds
    them), so their own ``get_config`` lists arguments their constructors refuse (``key_dim``,
    ``num_patches``, ``num_positions``) and omits ``use_patch_bias``. The preprocessing and
    pooling layers are this plugin's (KerasHub preprocesses outside the model, in numpy-side
    image converters, and pools in its task heads).
    """
    from types import SimpleNamespace

    import keras

    register = keras.saving.register_keras_serializable(package="automl_tl_vision")
    ViTEmbedding, ViTLayer = _keras_hub_layers(register)
    ViTPreprocess, ViTPooling = _own_layers(register)
    return SimpleNamespace(ViTEmbedding=ViTEmbedding, ViTLayer=ViTLayer, ViTPreprocess=ViTPreprocess,
                           ViTPooling=ViTPooling)


def _keras_hub_layers(register):
    """KerasHub's embedding and transformer layer, made serialisable on their own (see
    :func:`register_layers`); registered with ``register``."""
    import keras
    from keras_hub.src.models.vit.vit_layers import ViTEncoderBlock, ViTPatchingAndEmbedding

    @register
    class ViTEmbedding(ViTPatchingAndEmbedding):
        """Patch embedding (a strided conv) + class token + learned position embeddings."""

        def get_config(self):
            return keras.layers.Layer.get_config(self) | {
                "image_size": list(self.image_size), "patch_size": list(self.patch_size),
                "hidden_dim": self.hidden_dim, "num_channels": self.num_channels,
                "use_class_token": self.use_class_token, "use_patch_bias": self.use_patch_bias,
                "data_format": self.data_format}

    @register
    class ViTLayer(ViTEncoderBlock):
        """One pre-norm transformer layer (attention and MLP, each with a residual)."""

        def get_config(self):
            config = super().get_config()
            config.pop("key_dim", None)   # derived from hidden_dim / num_heads, not an argument
            return config

    return ViTEmbedding, ViTLayer


def _own_layers(register):
    """This plugin's preprocessing and pooling layers (see :func:`register_layers`); registered
    with ``register``."""
    import keras
    from keras import ops

    @register
    class ViTPreprocess(keras.layers.Layer):
        """Raw RGB in [0, 255] -> what the checkpoint's image processor gives: resized to
        ``image_size`` (antialiased when shrinking, as PIL), rescaled, normalised."""

        def __init__(self, image_size, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5),
                     rescale=1.0 / 255.0, interpolation="bilinear", **kwargs):
            super().__init__(**kwargs)
            self.image_size = int(image_size)
            self.mean, self.std = [float(v) for v in mean], [float(v) for v in std]
            self.rescale, self.interpolation = float(rescale), str(interpolation)

        def call(self, x):
            x = ops.cast(x, "float32")
            if tuple(x.shape[1:3]) != (self.image_size, self.image_size):
                x = ops.image.resize(x, (self.image_size, self.image_size),
                                     interpolation=self.interpolation, antialias=True)
            mean = ops.convert_to_tensor(self.mean, dtype="float32")
            std = ops.convert_to_tensor(self.std, dtype="float32")
            return (x * self.rescale - mean) / std

        def compute_output_shape(self, input_shape):
            return (input_shape[0], self.image_size, self.image_size, input_shape[-1])

        def get_config(self):
            return super().get_config() | {"image_size": self.image_size, "mean": self.mean,
                                           "std": self.std, "rescale": self.rescale,
                                           "interpolation": self.interpolation}

    @register
    class ViTPooling(keras.layers.Layer):
        """``(B, 1 + N, D)`` tokens -> ``(B, D)``: ``cls`` the class token, ``mean`` the mean of
        the N patch tokens (the class token left out)."""

        def __init__(self, mode="cls", **kwargs):
            super().__init__(**kwargs)
            if mode not in POOLINGS:
                raise ValueError(f"pooling must be one of {POOLINGS}, not {mode!r}")
            self.mode = mode

        def call(self, x):
            return x[:, 0, :] if self.mode == "cls" else ops.mean(x[:, 1:, :], axis=1)

        def compute_output_shape(self, input_shape):
            return (input_shape[0], input_shape[-1])

        def get_config(self):
            return super().get_config() | {"mode": self.mode}

    return ViTPreprocess, ViTPooling


class _ViTModelKeys:
    """Serves KerasHub's ViT converter from a Hugging Face checkpoint of either layout.

    The converter asks for ``vit.``-prefixed keys (``ViTForImageClassification``); ``ViTModel``
    checkpoints (google/vit-base-patch16-224-in21k, anything saved from a ``ViTModel``) store them
    without the prefix, and ``Backbone.from_preset`` then fails with "File does not contain
    tensor vit.embeddings...". This strips the prefix for such files and passes the rest on.
    """

    def __init__(self, folder: Path):
        from keras_hub.src.utils.transformers.safetensor_utils import SafetensorLoader

        self._loader = SafetensorLoader(str(folder))
        index = folder / "model.safetensors.index.json"
        if index.is_file():
            names = set(json.loads(index.read_text(encoding="utf-8"))["weight_map"])
        else:
            from safetensors import safe_open

            with safe_open(str(folder / "model.safetensors"), framework="np") as f:
                names = set(f.keys())
        self._strip = "vit.embeddings.cls_token" not in names and "embeddings.cls_token" in names

    def __enter__(self):
        self._loader.__enter__()
        return self

    def __exit__(self, *exc):
        return self._loader.__exit__(*exc)

    def port_weight(self, keras_variable, hf_weight_key, hook_fn=None):
        if self._strip and hf_weight_key.startswith("vit."):
            hf_weight_key = hf_weight_key[len("vit."):]
        self._loader.port_weight(keras_variable, hf_weight_key, hook_fn=hook_fn)


def _hub_backbone(folder: Path, arch: Mapping[str, Any], name: str):
    """KerasHub's ViTBackbone with the checkpoint's weights, through KerasHub's converter
    (``layer_norm_epsilon`` passed on: the converter leaves KerasHub's 1e-6 where Hugging Face
    ViT uses ``layer_norm_eps``, 1e-12)."""
    import keras_hub
    from keras_hub.src.utils.transformers import convert_vit

    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    kwargs = convert_vit.convert_backbone_config(config) | {"layer_norm_epsilon": arch["layer_norm_epsilon"]}
    hub = keras_hub.models.ViTBackbone(**kwargs)
    try:
        with _ViTModelKeys(folder) as loader:
            convert_vit.convert_weights(hub, loader, config)
    except Exception as exc:  # noqa: BLE001 - a missing tensor, a shape that does not fit
        raise WeightsUnavailableError(
            f"{name}: the ViT checkpoint in {folder} could not be converted: {type(exc).__name__}: {exc}") from exc
    return hub


def _check_pooling(pooling: str) -> None:
    if pooling not in POOLINGS:
        raise ConfigError(f"ViT pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}")


def _encoder(info: ViTInfo, weights: ResolvedWeights | None, input_config: Mapping[str, Any]):
    """``(image input, final-normed token sequence (B, 1 + N, D))`` of the flat model."""
    import keras

    L = register_layers()
    input_config = dict(input_config or {})
    size = int(input_config.get("image_size", 224))
    folder = hub = None
    if weights is None:
        arch = {**info.arch, **dict(input_config.get("architecture") or {})}
    else:
        folder = local_folder(weights, info.name)
        arch = vit_arch(json.loads((folder / "config.json").read_text(encoding="utf-8")))
        hub = _hub_backbone(folder, arch, info.name)
    pre = _preprocessing(folder)
    S, P, D = int(arch["image_size"]), int(arch["patch_size"]), int(arch["hidden_dim"])

    source = input_config.get("source_size")  # uint8 at the transport size: ViTPreprocess casts and resizes
    inp = keras.Input((size, size, 3), name="image") if source is None else \
        keras.Input((int(source), int(source), 3), dtype="uint8", name="image")
    x = L.ViTPreprocess(S, pre["image_mean"], pre["image_std"], pre["rescale_factor"],
                        pre["interpolation"], name="automl_tl_vit_preprocess")(inp)
    embedding = L.ViTEmbedding(image_size=(S, S), patch_size=(P, P), hidden_dim=D, name="vit_embedding")
    x = embedding(x)
    x = keras.layers.Dropout(float(arch.get("dropout_rate", 0.0)), name="vit_embedding_dropout")(x)
    layers = []
    for i in range(int(arch["num_layers"])):
        layers.append(L.ViTLayer(
            num_heads=int(arch["num_heads"]), hidden_dim=D, mlp_dim=int(arch["mlp_dim"]),
            use_mha_bias=bool(arch.get("qkv_bias", True)), dropout_rate=float(arch.get("dropout_rate", 0.0)),
            attention_dropout=float(arch.get("attention_dropout", 0.0)),
            layer_norm_epsilon=float(arch["layer_norm_epsilon"]), name=f"vit_layer_{i}"))
        x = layers[-1](x)
    final = keras.layers.LayerNormalization(epsilon=float(arch["layer_norm_epsilon"]), name="vit_final_norm")
    seq = final(x)
    if hub is not None:  # the converted weights, layer by layer (same variables, same order)
        embedding.set_weights(hub.get_layer("vit_patching_and_embedding").get_weights())
        hub_encoder = hub.get_layer("vit_encoder")
        for mine, theirs in zip(layers, hub_encoder.encoder_layers, strict=True):
            mine.set_weights(theirs.get_weights())
        final.set_weights(hub_encoder.layer_norm.get_weights())
    return inp, seq


def _model_name(*parts: str) -> str:
    return re.sub(r"[^0-9a-zA-Z_]", "_", "_".join(parts))


def build(info: ViTInfo, weights: ResolvedWeights | None, input_config: Mapping[str, Any],
          *, pooling: str = POOLINGS[0]):
    """The flat ``keras.Model``: raw image ``(B, size, size, 3)`` in [0, 255] -> ``(B, D)``."""
    import keras

    _check_pooling(pooling)
    inp, seq = _encoder(info, weights, input_config)
    out = register_layers().ViTPooling(pooling, name=f"{pooling}_pooling")(seq)
    return keras.Model(inp, out, name=_model_name(info.name, pooling))


def readouts(info: ViTInfo, weights: ResolvedWeights | None, input_config: Mapping[str, Any], option_sets):
    """Every pooling of ``option_sets`` from one pass through the encoder."""
    import keras

    for o in option_sets:  # strict: an option this does not know would be silently ignored
        if set(o) - {"pooling"}:
            raise ConfigError(f"{info.name}: readouts take the pooling option only, not {o!r}")
        _check_pooling(o.get("pooling", POOLINGS[0]))
    inp, seq = _encoder(info, weights, input_config)
    pooled = {}
    for o in option_sets:
        p = o.get("pooling", POOLINGS[0])
        if p not in pooled:
            pooled[p] = register_layers().ViTPooling(p, name=f"{p}_pooling")(seq)
    return keras.Model(inp, [pooled[o.get("pooling", POOLINGS[0])] for o in option_sets],
                       name=_model_name(info.name, "readouts"))


_LAYER = re.compile(r"vit_layer_(\d+)$")


def blocks(model) -> list[list]:
    """``[[vit_embedding], [vit_layer_0], ..., [vit_layer_{L-1}, vit_final_norm]]``."""
    layers = {l.name: l for l in model.layers}
    tlayers = sorted(((int(m.group(1)), l) for name, l in layers.items() if (m := _LAYER.match(name))),
                     key=lambda t: t[0])
    if "vit_embedding" not in layers or not tlayers or "vit_final_norm" not in layers:
        raise ConfigError(f"model {model.name!r} has no vit_embedding / vit_layer_N / vit_final_norm "
                          f"layers: not a ViT built by automl_tl_vision")
    out = [[layers["vit_embedding"]]] + [[l] for _, l in tlayers]
    out[-1].append(layers["vit_final_norm"])
    return out


def make_adapter(input_config, weights=None, assets_dir=None):
    from ._backbones import make_image_adapter

    register_layers()  # the saved model's layers, before the engine's load_model
    return make_image_adapter(input_config, weights, assets_dir)


def make_spec(info: ViTInfo) -> BackboneSpec:
    return BackboneSpec(
        name=info.name, modality="image",
        build=functools.partial(build, info), readouts=functools.partial(readouts, info),
        make_adapter=make_adapter, blocks=blocks, n_blocks=info.num_layers + 1,
        weight_sources=weight_sources(info), n_params=vit_n_params(info.arch), fine_tunable=True,
        options={"pooling": POOLINGS}, default_input_config={"image_size": 224},
        pretrained_on=info.pretrained_on, description=info.description)


def vit_specs() -> list[BackboneSpec]:
    return [make_spec(info) for info in VIT_BACKBONES]
