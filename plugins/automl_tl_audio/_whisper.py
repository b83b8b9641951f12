"""The Whisper encoder in pure Keras 3 (``keras.layers`` / ``keras.ops``) and a converter from
Hugging Face checkpoints (``WhisperModel`` / ``WhisperForConditionalGeneration`` folders; only
the encoder weights are read).

Input: log-mel features ``(B, frames, n_mels)`` (channels last; the transpose of
``WhisperFeatureExtractor``'s ``input_features``), 100 frames per second. Output: mean-pooled
``(B, d_model)`` features; the layer ``last_hidden_state`` gives ``(B, frames // 2, d_model)``.

Unlike the original, which always sees 30 s windows (3000 frames), the clip length is the
profiled duration: the first ``frames // 2`` learned positional embeddings are used. For a
30 s input this is exactly ``transformers.WhisperEncoder`` (parity-tested); for shorter inputs
it equals running the original encoder with attention restricted to the clip (no padding
frames), which is what we want for short clips and much cheaper.
"""

from __future__ import annotations

import json
from pathlib import Path

from ._common import activation, blocks_by_name, set_conv1d, set_dense, set_layer_norm, set_mha

__all__ = ["TINY_CONFIG", "BASE_CONFIG", "build_whisper_encoder", "load_whisper_weights",
           "whisper_blocks"]

TINY_CONFIG = {
    "d_model": 384, "encoder_layers": 4, "encoder_attention_heads": 6, "encoder_ffn_dim": 1536,
    "num_mel_bins": 80, "max_source_positions": 1500, "activation_function": "gelu",
    "dropout": 0.0, "attention_dropout": 0.0, "activation_dropout": 0.0,
}
BASE_CONFIG = dict(TINY_CONFIG, d_model=512, encoder_layers=6, encoder_attention_heads=8,
                   encoder_ffn_dim=2048)


def _cfg(config: dict | None) -> dict:
    cfg = dict(TINY_CONFIG)
    cfg.update({k: v for k, v in (config or {}).items() if k in TINY_CONFIG})
    return cfg


def build_whisper_encoder(config: dict | None = None, num_frames: int = 100, *,
                          name: str = "whisper_encoder"):
    """Keras model ``(B, num_frames, n_mels)`` -> ``(B, d_model)`` mean-pooled features."""
    import keras
    from keras import layers, ops

    cfg = _cfg(config)
    d, heads, eps = cfg["d_model"], cfg["encoder_attention_heads"], 1e-5
    seq = (num_frames - 1) // 2 + 1
    if seq > cfg["max_source_positions"]:
        raise ValueError(f"{num_frames} log-mel frames ({num_frames / 100:.1f} s) exceed Whisper's "
                         f"{cfg['max_source_positions'] * 2} frames (30 s); shorten the duration")
    act = activation(cfg["activation_function"])
    inp = keras.Input((num_frames, cfg["num_mel_bins"]), dtype="float32", name="log_mel")
    x = layers.ZeroPadding1D(1, name="wh_pad1")(inp)
    x = layers.Conv1D(d, 3, activation=act, name="wh_conv1")(x)
    x = layers.ZeroPadding1D(1, name="wh_pad2")(x)
    x = layers.Conv1D(d, 3, strides=2, activation=act, name="wh_conv2")(x)
    positions = ops.cast(ops.cumsum(ops.ones_like(x[:, :, 0]), axis=1) - 1.0, "int32")
    pos = layers.Embedding(cfg["max_source_positions"], d, name="wh_pos")(positions)
    h = layers.Add(name="wh_pos_add")([x, pos])
    h = layers.Dropout(cfg["dropout"], name="wh_drop")(h)
    for i in range(cfg["encoder_layers"]):
        pre = f"wh_l{i}_"
        t = layers.LayerNormalization(epsilon=eps, name=pre + "attn_ln")(h)
        a = layers.MultiHeadAttention(heads, d // heads, dropout=cfg["attention_dropout"],
                                      name=pre + "attn")(t, t)
        a = layers.Dropout(cfg["dropout"], name=pre + "attn_drop")(a)
        h = layers.Add(name=pre + "add1")([h, a])
        t = layers.LayerNormalization(epsilon=eps, name=pre + "final_ln")(h)
        t = layers.Dense(cfg["encoder_ffn_dim"], activation=act, name=pre + "fc1")(t)
        t = layers.Dropout(cfg["activation_dropout"], name=pre + "act_drop")(t)
        t = layers.Dense(d, name=pre + "fc2")(t)
        t = layers.Dropout(cfg["dropout"], name=pre + "ff_drop")(t)
        h = layers.Add(name=pre + "add2")([h, t])
    h = layers.LayerNormalization(epsilon=eps, name="wh_top_ln")(h)
    h = layers.Identity(name="last_hidden_state")(h)
    pooled = layers.GlobalAveragePooling1D(name="mean_pool")(h)
    model = keras.Model(inp, pooled, name=name)
    model._automl_tl_config = dict(cfg)
    return model


def load_whisper_weights(model, folder) -> None:
    """Load the encoder of a Hugging Face Whisper checkpoint folder into
    :func:`build_whisper_encoder`'s model."""
    from ._hf import load_state_dict, strip_prefix

    cfg = getattr(model, "_automl_tl_config", None) or _cfg(
        json.loads((Path(folder) / "config.json").read_text()))
    sd = strip_prefix(load_state_dict(folder), "encoder.conv1.weight")
    sd = {k[len("encoder."):]: v for k, v in sd.items() if k.startswith("encoder.")}
    get = model.get_layer
    set_conv1d(get("wh_conv1"), sd["conv1.weight"], sd["conv1.bias"])
    set_conv1d(get("wh_conv2"), sd["conv2.weight"], sd["conv2.bias"])
    get("wh_pos").embeddings.assign(sd["embed_positions.weight"])
    for i in range(cfg["encoder_layers"]):
        pre, kp = f"layers.{i}", f"wh_l{i}_"
        set_mha(get(kp + "attn"), sd, f"{pre}.self_attn")
        set_layer_norm(get(kp + "attn_ln"), sd[f"{pre}.self_attn_layer_norm.weight"],
                       sd[f"{pre}.self_attn_layer_norm.bias"])
        set_layer_norm(get(kp + "final_ln"), sd[f"{pre}.final_layer_norm.weight"],
                       sd[f"{pre}.final_layer_norm.bias"])
        set_dense(get(kp + "fc1"), sd[f"{pre}.fc1.weight"], sd[f"{pre}.fc1.bias"])
        set_dense(get(kp + "fc2"), sd[f"{pre}.fc2.weight"], sd[f"{pre}.fc2.bias"])
    set_layer_norm(get("wh_top_ln"), sd["layer_norm.weight"], sd["layer_norm.bias"])


def whisper_blocks(model) -> list[list]:
    """[conv front-end + positions], [layer 0], ..., [layer N-1 + final layer norm]."""
    n = sum(1 for layer in model.layers if layer.name.startswith("wh_l") and layer.name.endswith("_attn"))
    return blocks_by_name(model, "wh", n, top=("wh_top_ln",))
