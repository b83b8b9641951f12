"""Wav2Vec2 encoder in pure Keras 3 (``keras.layers`` / ``keras.ops``, backend-agnostic) and a
converter from Hugging Face checkpoints.

Supported layouts: feature encoder with group norm (``feat_extract_norm="group"``, base models)
or layer norm (``"layer"``, large/LV-60 models); post-LN encoder (``do_stable_layer_norm=False``)
or pre-LN "stable layer norm" encoder (``True``). Parity with ``transformers.Wav2Vec2Model``
(last hidden state) is tested in ``tests/audio/test_wav2vec2_parity.py``.

The model maps raw 16 kHz audio ``(B, T)`` to mean-pooled features ``(B, hidden_size)``. The
per-utterance zero-mean/unit-variance normalisation of ``Wav2Vec2FeatureExtractor``
(``do_normalize``) is inside the model. The positional convolution's weight norm is folded into
a plain kernel at load time (so fine-tuning trains the folded kernel). A layer named
``last_hidden_state`` gives the frame sequence ``(B, frames, hidden_size)``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ._common import activation, blocks_by_name, set_conv1d, set_dense, set_layer_norm, set_mha

__all__ = ["BASE_CONFIG", "build_wav2vec2", "load_wav2vec2_weights", "wav2vec2_blocks", "n_frames"]

#: facebook/wav2vec2-base (== transformers.Wav2Vec2Config() defaults)
BASE_CONFIG = {
    "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072,
    "hidden_act": "gelu", "hidden_dropout": 0.1, "activation_dropout": 0.0, "attention_dropout": 0.1,
    "feat_proj_dropout": 0.0, "layer_norm_eps": 1e-5, "feat_extract_norm": "group",
    "feat_extract_activation": "gelu", "conv_dim": [512] * 7, "conv_stride": [5, 2, 2, 2, 2, 2, 2],
    "conv_kernel": [10, 3, 3, 3, 3, 2, 2], "conv_bias": False, "num_conv_pos_embeddings": 128,
    "num_conv_pos_embedding_groups": 16, "do_stable_layer_norm": False,
}


def _cfg(config: dict | None) -> dict:
    cfg = dict(BASE_CONFIG)
    cfg.update({k: v for k, v in (config or {}).items() if k in BASE_CONFIG})
    if cfg["feat_extract_norm"] not in ("group", "layer"):
        raise ValueError(f"feat_extract_norm {cfg['feat_extract_norm']!r} is not supported")
    if cfg.get("model_type", "wav2vec2") not in ("wav2vec2",):
        raise ValueError("not a wav2vec2 config")
    return cfg


def n_frames(num_samples: int, config: dict | None = None) -> int:
    cfg = _cfg(config)
    n = num_samples
    for k, s in zip(cfg["conv_kernel"], cfg["conv_stride"]):
        n = (n - k) // s + 1
    return n


def build_wav2vec2(config: dict | None = None, num_samples: int | None = 16000, *,
                   normalize: bool = True, name: str = "wav2vec2"):
    """Keras model ``(B, num_samples)`` float32 -> ``(B, hidden_size)`` mean-pooled features."""
    import keras
    from keras import layers, ops

    cfg = _cfg(config)
    if num_samples is not None and n_frames(num_samples, cfg) < 1:
        raise ValueError(f"{num_samples} samples are too few for the Wav2Vec2 feature encoder")
    hidden, eps = cfg["hidden_size"], cfg["layer_norm_eps"]
    heads = cfg["num_attention_heads"]
    act = activation(cfg["hidden_act"])
    inp = keras.Input((num_samples,), dtype="float32", name="audio")
    x = inp
    if normalize:  # Wav2Vec2FeatureExtractor.zero_mean_unit_var_norm
        mean = ops.mean(x, axis=1, keepdims=True)
        var = ops.var(x, axis=1, keepdims=True)
        x = (x - mean) / ops.sqrt(var + 1e-7)
    x = ops.expand_dims(x, -1)
    # ---- feature encoder (conv stack)
    for i, (dim, k, s) in enumerate(zip(cfg["conv_dim"], cfg["conv_kernel"], cfg["conv_stride"])):
        x = layers.Conv1D(dim, k, strides=s, use_bias=cfg["conv_bias"], name=f"w2v_fe_conv{i}")(x)
        if cfg["feat_extract_norm"] == "group" and i == 0:
            x = layers.GroupNormalization(groups=dim, epsilon=1e-5, name="w2v_fe_norm0")(x)
        elif cfg["feat_extract_norm"] == "layer":
            x = layers.LayerNormalization(epsilon=1e-5, name=f"w2v_fe_norm{i}")(x)
        x = layers.Activation(activation(cfg["feat_extract_activation"]), name=f"w2v_fe_act{i}")(x)
    # ---- feature projection
    x = layers.LayerNormalization(epsilon=eps, name="w2v_fp_ln")(x)
    x = layers.Dense(hidden, name="w2v_fp_dense")(x)
    h = layers.Dropout(cfg["feat_proj_dropout"], name="w2v_fp_drop")(x)
    # ---- positional convolution (weight norm folded)
    k = cfg["num_conv_pos_embeddings"]
    p = layers.ZeroPadding1D(k // 2, name="w2v_pos_pad")(h)
    p = layers.Conv1D(hidden, k, groups=cfg["num_conv_pos_embedding_groups"], name="w2v_pos_conv")(p)
    if k % 2 == 0:
        p = layers.Cropping1D((0, 1), name="w2v_pos_crop")(p)
    p = layers.Activation(activation(cfg["feat_extract_activation"]), name="w2v_pos_act")(p)
    h = layers.Add(name="w2v_pos_add")([h, p])
    stable = bool(cfg["do_stable_layer_norm"])
    if not stable:
        h = layers.LayerNormalization(epsilon=eps, name="w2v_enc_ln")(h)
    h = layers.Dropout(cfg["hidden_dropout"], name="w2v_enc_drop")(h)
    # ---- transformer layers
    for i in range(cfg["num_hidden_layers"]):
        pre = f"w2v_l{i}_"
        attn = layers.MultiHeadAttention(heads, hidden // heads, dropout=cfg["attention_dropout"],
                                         name=pre + "attn")
        ln1 = layers.LayerNormalization(epsilon=eps, name=pre + "ln")
        ln2 = layers.LayerNormalization(epsilon=eps, name=pre + "final_ln")
        ff1 = layers.Dense(cfg["intermediate_size"], activation=act, name=pre + "ff1")
        ff2 = layers.Dense(hidden, name=pre + "ff2")

        def ff(t, pre=pre, ff1=ff1, ff2=ff2):
            t = ff1(t)
            t = layers.Dropout(cfg["activation_dropout"], name=pre + "act_drop")(t)
            return layers.Dropout(cfg["hidden_dropout"], name=pre + "ff_drop")(ff2(t))

        if stable:
            t = ln1(h)
            a = layers.Dropout(cfg["hidden_dropout"], name=pre + "attn_drop")(attn(t, t))
            h = layers.Add(name=pre + "add1")([h, a])
            h = layers.Add(name=pre + "add2")([h, ff(ln2(h))])
        else:
            a = layers.Dropout(cfg["hidden_dropout"], name=pre + "attn_drop")(attn(h, h))
            h = ln1(layers.Add(name=pre + "add1")([h, a]))
            h = ln2(layers.Add(name=pre + "add2")([h, ff(h)]))
    if stable:
        h = layers.LayerNormalization(epsilon=eps, name="w2v_top_ln")(h)
    h = layers.Identity(name="last_hidden_state")(h)
    pooled = layers.GlobalAveragePooling1D(name="mean_pool")(h)
    model = keras.Model(inp, pooled, name=name)
    model._automl_tl_config = dict(cfg)  # used by wav2vec2_blocks
    return model


def _fold_weight_norm(sd: dict, prefix: str) -> np.ndarray:
    if f"{prefix}.weight" in sd:
        return sd[f"{prefix}.weight"]
    if f"{prefix}.parametrizations.weight.original0" in sd:
        g = sd[f"{prefix}.parametrizations.weight.original0"]
        v = sd[f"{prefix}.parametrizations.weight.original1"]
    else:
        g, v = sd[f"{prefix}.weight_g"], sd[f"{prefix}.weight_v"]
    v = v.astype(np.float64)
    # torch weight_norm(dim=2): norm over every axis except 2
    norm = np.sqrt((v ** 2).sum(axis=(0, 1), keepdims=True))
    return (g * v / norm).astype(np.float32)


def load_wav2vec2_weights(model, folder) -> None:
    """Load a Hugging Face Wav2Vec2 checkpoint folder into a model from :func:`build_wav2vec2`."""
    from ._hf import load_state_dict, strip_prefix

    cfg = model._automl_tl_config if hasattr(model, "_automl_tl_config") else _cfg(
        json.loads((Path(folder) / "config.json").read_text()))
    sd = strip_prefix(load_state_dict(folder), "feature_extractor.conv_layers.0.conv.weight")
    get = model.get_layer
    for i in range(len(cfg["conv_dim"])):
        pre = f"feature_extractor.conv_layers.{i}"
        set_conv1d(get(f"w2v_fe_conv{i}"), sd[f"{pre}.conv.weight"], sd.get(f"{pre}.conv.bias"))
        if (cfg["feat_extract_norm"] == "group" and i == 0) or cfg["feat_extract_norm"] == "layer":
            set_layer_norm(get(f"w2v_fe_norm{i}"), sd[f"{pre}.layer_norm.weight"],
                           sd[f"{pre}.layer_norm.bias"])
    set_layer_norm(get("w2v_fp_ln"), sd["feature_projection.layer_norm.weight"],
                   sd["feature_projection.layer_norm.bias"])
    set_dense(get("w2v_fp_dense"), sd["feature_projection.projection.weight"],
              sd["feature_projection.projection.bias"])
    set_conv1d(get("w2v_pos_conv"), _fold_weight_norm(sd, "encoder.pos_conv_embed.conv"),
               sd["encoder.pos_conv_embed.conv.bias"])
    set_layer_norm(get("w2v_top_ln" if cfg["do_stable_layer_norm"] else "w2v_enc_ln"),
                   sd["encoder.layer_norm.weight"], sd["encoder.layer_norm.bias"])
    for i in range(cfg["num_hidden_layers"]):
        pre, kp = f"encoder.layers.{i}", f"w2v_l{i}_"
        set_mha(get(kp + "attn"), sd, f"{pre}.attention")
        set_layer_norm(get(kp + "ln"), sd[f"{pre}.layer_norm.weight"], sd[f"{pre}.layer_norm.bias"])
        set_layer_norm(get(kp + "final_ln"), sd[f"{pre}.final_layer_norm.weight"],
                       sd[f"{pre}.final_layer_norm.bias"])
        set_dense(get(kp + "ff1"), sd[f"{pre}.feed_forward.intermediate_dense.weight"],
                  sd[f"{pre}.feed_forward.intermediate_dense.bias"])
        set_dense(get(kp + "ff2"), sd[f"{pre}.feed_forward.output_dense.weight"],
                  sd[f"{pre}.feed_forward.output_dense.bias"])


def wav2vec2_blocks(model) -> list[list]:
    """[feature encoder + projection + positional conv], [layer 0], ..., [layer N-1]."""
    n = sum(1 for layer in model.layers if layer.name.startswith("w2v_l") and layer.name.endswith("_attn"))
    return blocks_by_name(model, "w2v", n, top=("w2v_top_ln",))
