"""T5 encoder architectures as plain dicts: T5-small and T5-base, a Hugging Face ``config.json`` read
into one, and its parameter count. No Keras here: the backbone table (:mod:`automl_tl_text._backbones`)
and the Keras port (:mod:`automl_tl_text._t5`) both read it, neither imports the other for it."""

from __future__ import annotations

from typing import Any, Mapping

__all__ = ["T5_SMALL", "T5_BASE", "t5_full_arch", "t5_n_params", "t5_arch"]


#: the encoder of google-t5/t5-small, as automl_tl_text._t5.build_t5_encoder takes it (t5_arch
#: reads the same keys from a Hugging Face config.json)
T5_SMALL = {"vocabulary_size": 32128, "num_layers": 6, "num_heads": 8, "hidden_dim": 512,
            "intermediate_dim": 2048, "activation": "relu", "gated": False,
            "layer_norm_epsilon": 1e-6, "num_buckets": 32, "max_distance": 128, "dropout": 0.1,
            "max_sequence_length": 512}
T5_BASE = {**T5_SMALL, "num_layers": 12, "num_heads": 12, "hidden_dim": 768, "intermediate_dim": 3072}


def t5_full_arch(arch: Mapping[str, Any]) -> dict:
    """``arch`` over T5-small's defaults; without ``key_value_dim``, hidden / heads (64 for T5-small
    and T5-base; tiny test overrides get theirs)."""
    a = {**T5_SMALL, **dict(arch)}
    if "key_value_dim" not in arch:
        a["key_value_dim"] = int(a["hidden_dim"]) // int(a["num_heads"])
    return a


def t5_n_params(arch: Mapping[str, Any]) -> int:
    """Parameters of a T5 encoder (what ``T5EncoderModel.num_parameters()`` counts)."""
    a = t5_full_arch(arch)
    V, L, H, D, F, K = (a["vocabulary_size"], a["num_layers"], a["num_heads"], a["hidden_dim"],
                        a["intermediate_dim"], a["key_value_dim"])
    layer = 4 * D * H * K + (3 if a["gated"] else 2) * D * F + 2 * D    # q k v o, wi (wi_0 wi_1) wo, 2 norms
    return V * D + L * layer + a["num_buckets"] * H + D                  # + relative bias, final norm


_T5_ACTIVATIONS = ("relu", "gelu", "gelu_new", "silu")


def t5_arch(config: Mapping[str, Any]) -> dict:
    """The architecture dict of a Hugging Face ``T5Config`` (``config.json``)."""
    proj = str(config.get("feed_forward_proj", "relu"))
    parts = proj.split("-")
    gated = parts[0] == "gated"
    act = parts[-1]
    if len(parts) > 2 or (len(parts) == 2 and not gated):
        raise ValueError(f"feed_forward_proj {proj!r} is not a T5 feed-forward type")
    if proj == "gated-gelu":   # transformers maps this one to the tanh approximation
        act = "gelu_new"
    if act not in _T5_ACTIVATIONS:
        raise ValueError(f"feed_forward_proj {proj!r}: activation {act!r} is not supported "
                         f"(supported: {', '.join(_T5_ACTIVATIONS)})")
    d_model = int(config["d_model"])
    heads = int(config["num_heads"])
    return {
        "vocabulary_size": int(config["vocab_size"]), "num_layers": int(config["num_layers"]),
        "num_heads": heads, "hidden_dim": d_model, "intermediate_dim": int(config["d_ff"]),
        "key_value_dim": int(config.get("d_kv", d_model // heads)), "activation": act, "gated": gated,
        "layer_norm_epsilon": float(config.get("layer_norm_epsilon", 1e-6)),
        "num_buckets": int(config.get("relative_attention_num_buckets", 32)),
        "max_distance": int(config.get("relative_attention_max_distance", 128)),
        "dropout": float(config.get("dropout_rate", 0.1)),
        "max_sequence_length": int(config.get("n_positions") or 512),
    }
