"""MPNet encoder architectures as plain dicts: MPNet-base, a Hugging Face ``config.json`` read into
one, and its parameter count. No Keras here: the backbone table (:mod:`automl_tl_text._backbones`)
and the Keras port (:mod:`automl_tl_text._mpnet`) both read it.

Two constants of Hugging Face's ``MPNetModel`` are not in its config: the padding index of the
absolute positions (1: real tokens get positions 2, 3, ...; the table has ``max_sequence_length
+ 2`` rows) and the relative-position buckets (``compute_position_bias`` always buckets with 32
buckets and a maximum distance of 128, whatever ``relative_attention_num_buckets`` says; a config
with another count is refused rather than read differently).
"""

from __future__ import annotations

from typing import Any, Mapping

__all__ = ["MPNET_BASE", "PADDING_IDX", "BUCKETS", "MAX_DISTANCE", "mpnet_full_arch", "mpnet_arch",
           "mpnet_n_params"]

PADDING_IDX = 1
BUCKETS = 32
MAX_DISTANCE = 128

#: microsoft/mpnet-base (and sentence-transformers/all-mpnet-base-v2, which fine-tuned it)
MPNET_BASE = {"vocabulary_size": 30527, "num_layers": 12, "num_heads": 12, "hidden_dim": 768,
              "intermediate_dim": 3072, "max_sequence_length": 512, "activation": "gelu",
              "layer_norm_epsilon": 1e-5, "dropout": 0.1, "attention_dropout": 0.1}

_ACTIVATIONS = ("gelu", "gelu_new", "relu")


def mpnet_full_arch(arch: Mapping[str, Any]) -> dict:
    """``arch`` over MPNet-base's defaults."""
    return {**MPNET_BASE, **dict(arch)}


def mpnet_n_params(arch: Mapping[str, Any]) -> int:
    """Parameters of the headless encoder (what ``MPNetModel(config, add_pooling_layer=False)
    .num_parameters()`` counts)."""
    a = mpnet_full_arch(arch)
    V, L, H, D, F, S = (a["vocabulary_size"], a["num_layers"], a["num_heads"], a["hidden_dim"],
                        a["intermediate_dim"], a["max_sequence_length"])
    embeddings = V * D + (S + PADDING_IDX + 1) * D + 2 * D
    layer = 4 * (D * D + D) + 2 * D + (D * F + F) + (F * D + D) + 2 * D   # q k v o, norm, ffn, norm
    return embeddings + L * layer + BUCKETS * H


def mpnet_arch(config: Mapping[str, Any]) -> dict:
    """The architecture dict of a Hugging Face ``MPNetConfig`` (``config.json``); a ValueError
    says what this port cannot reproduce."""
    act = str(config.get("hidden_act", "gelu"))
    if act not in _ACTIVATIONS:
        raise ValueError(f"hidden_act {act!r} is not supported (supported: {', '.join(_ACTIVATIONS)})")
    buckets = int(config.get("relative_attention_num_buckets", BUCKETS))
    if buckets != BUCKETS:
        raise ValueError(f"relative_attention_num_buckets is {buckets}; Hugging Face's MPNet buckets "
                         f"relative positions with {BUCKETS} whatever the config says")
    hidden, heads = int(config["hidden_size"]), int(config["num_attention_heads"])
    if hidden % heads:
        raise ValueError(f"hidden_size {hidden} is not a multiple of num_attention_heads {heads}")
    return {
        "vocabulary_size": int(config["vocab_size"]), "num_layers": int(config["num_hidden_layers"]),
        "num_heads": heads, "hidden_dim": hidden, "intermediate_dim": int(config["intermediate_size"]),
        "max_sequence_length": int(config.get("max_position_embeddings", 514)) - PADDING_IDX - 1,
        "activation": act, "layer_norm_epsilon": float(config.get("layer_norm_eps", 1e-5)),
        "dropout": float(config.get("hidden_dropout_prob", 0.1)),
        "attention_dropout": float(config.get("attention_probs_dropout_prob", 0.1)),
    }
