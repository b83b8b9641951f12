"""The T5 encoder in pure Keras 3 (``keras.layers`` / ``keras.ops``: any backend) and a converter
from Hugging Face checkpoints.

Why hand-written and not KerasHub: KerasHub 0.32 has ``T5Backbone`` (encoder *and* decoder, fixed
inputs for both) but no converter from Hugging Face T5 checkpoints, and its building blocks
(``T5TransformerLayer``, ``T5MultiHeadAttention``, ``T5LayerNorm``) are neither registered for
serialisation nor carry a ``get_config``, so a flat encoder made of them could not be saved as
``.keras``; they also fix the relative-position buckets at 32 / 128. The encoder here is small:

- ``token_embedding``: ``shared.weight`` (no scaling, no position embedding);
- ``relative_attention_bias``: the bucketed relative-position bias, ``(1, heads, L, L)``, computed
  once and added to every layer's attention scores (Hugging Face keeps its table in block 0);
- ``transformer_layer_{i}``: pre-norm (RMS norm, no mean, no bias) self-attention without the
  1/sqrt(d) scaling, then a pre-norm feed-forward block: ``relu`` (T5 v1.0) or gated
  ``act(wi_0 x) * wi_1 x`` (T5 v1.1 / Flan-T5, ``gated-gelu`` = tanh-approximated GELU);
- ``final_layer_norm``.

The model maps ``{"token_ids", "padding_mask"}`` to the last hidden state ``(B, L, hidden)``;
padded key positions get -1e9 added to their scores, so padding never reaches a real token.
Parity with ``transformers.T5EncoderModel`` is tested in ``tests/text/test_gpt2_t5.py``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Mapping

import keras
import numpy as np
from keras import ops

from automl_tl_text._t5_arch import T5_BASE, T5_SMALL, t5_arch, t5_n_params
from automl_tl_text._t5_arch import t5_full_arch as _full

__all__ = ["T5_SMALL", "T5_BASE", "t5_arch", "t5_n_params", "build_t5_encoder", "load_t5_weights",
           "T5RMSNorm", "T5RelativeAttentionBias", "T5EncoderLayer"]

_MASKED = -1e9   # added to the scores of padded keys: exp() underflows to exactly 0


def _activation(name: str):
    if name == "relu":
        return keras.activations.relu
    if name == "silu":
        return keras.activations.silu
    if name in ("gelu", "gelu_new"):
        approximate = name == "gelu_new"
        return lambda x: keras.activations.gelu(x, approximate=approximate)
    raise ValueError(f"unsupported T5 activation {name!r}")


@keras.saving.register_keras_serializable(package="automl_tl_text")
class T5RMSNorm(keras.layers.Layer):
    """T5's layer norm: ``x / sqrt(mean(x^2) + eps) * scale`` (no mean subtraction, no bias)."""

    def __init__(self, epsilon: float = 1e-6, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = float(epsilon)

    def build(self, input_shape):
        self.scale = self.add_weight(name="scale", shape=(input_shape[-1],), initializer="ones")

    def call(self, x):
        x32 = ops.cast(x, "float32")
        var = ops.mean(ops.square(x32), axis=-1, keepdims=True)
        out = x32 * ops.rsqrt(var + self.epsilon)
        return ops.cast(out, self.compute_dtype) * ops.cast(self.scale, self.compute_dtype)

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package="automl_tl_text")
class T5RelativeAttentionBias(keras.layers.Layer):
    """The bidirectional bucketed relative-position bias ``(1, heads, L, L)`` of a T5 encoder.

    Relative position ``r = key - query``; half the buckets are for ``r > 0``; within each half,
    ``|r| < num_buckets/4`` gets its own bucket and larger distances share log-spaced buckets up to
    ``max_distance`` (everything beyond falls in the last one).
    """

    def __init__(self, num_heads: int, num_buckets: int = 32, max_distance: int = 128, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = int(num_heads)
        self.num_buckets = int(num_buckets)
        self.max_distance = int(max_distance)

    def build(self, input_shape):
        self.embeddings = self.add_weight(name="embeddings", shape=(self.num_buckets, self.num_heads),
                                          initializer=keras.initializers.RandomNormal(stddev=0.05))

    def buckets(self, length):
        pos = ops.arange(length, dtype="int32")
        rel = ops.expand_dims(pos, 0) - ops.expand_dims(pos, 1)      # [query, key] = key - query
        half = self.num_buckets // 2
        exact = half // 2
        offset = ops.where(rel > 0, half, 0)
        n = ops.abs(rel)
        nf = ops.maximum(ops.cast(n, "float32"), 1.0)                 # log(0) is never taken
        large = exact + ops.cast(ops.log(nf / exact) / math.log(self.max_distance / exact)
                                 * (half - exact), "int32")
        large = ops.minimum(large, half - 1)
        return offset + ops.where(n < exact, n, large)

    def call(self, padding_mask):
        length = ops.shape(padding_mask)[1]
        values = ops.take(ops.convert_to_tensor(self.embeddings), self.buckets(length), axis=0)  # (L, L, H)
        return ops.expand_dims(ops.transpose(values, (2, 0, 1)), 0)

    def compute_output_shape(self, padding_mask_shape):
        L = padding_mask_shape[1]
        return (1, self.num_heads, L, L)

    def get_config(self):
        return {**super().get_config(), "num_heads": self.num_heads, "num_buckets": self.num_buckets,
                "max_distance": self.max_distance}


@keras.saving.register_keras_serializable(package="automl_tl_text")
class T5EncoderLayer(keras.layers.Layer):
    """One T5 encoder block: pre-norm self-attention (no scaling, shared position bias), then a
    pre-norm feed-forward block (``relu``, or gated ``act(wi_0 x) * wi_1 x``); both residual."""

    def __init__(self, hidden_dim: int, num_heads: int, key_value_dim: int, intermediate_dim: int,
                 activation: str = "relu", gated: bool = False, layer_norm_epsilon: float = 1e-6,
                 dropout: float = 0.1, **kwargs):
        super().__init__(**kwargs)
        self.hidden_dim, self.num_heads, self.key_value_dim = int(hidden_dim), int(num_heads), int(key_value_dim)
        self.intermediate_dim, self.activation = int(intermediate_dim), str(activation)
        self.gated, self.layer_norm_epsilon, self.dropout = bool(gated), float(layer_norm_epsilon), float(dropout)
        self._act = _activation(self.activation)
        inner = self.num_heads * self.key_value_dim

        def dense(units, name):
            return keras.layers.Dense(units, use_bias=False, dtype=self.dtype_policy, name=name)

        self.attention_norm = T5RMSNorm(self.layer_norm_epsilon, dtype=self.dtype_policy, name="attention_norm")
        self.query, self.key, self.value = dense(inner, "query"), dense(inner, "key"), dense(inner, "value")
        self.attention_output = dense(self.hidden_dim, "attention_output")
        self.feedforward_norm = T5RMSNorm(self.layer_norm_epsilon, dtype=self.dtype_policy, name="feedforward_norm")
        self.wi = dense(self.intermediate_dim, "wi")            # wi, or wi_0 when gated
        self.wi_gate = dense(self.intermediate_dim, "wi_gate") if self.gated else None   # wi_1
        self.wo = dense(self.hidden_dim, "wo")
        self.dropout_layer = keras.layers.Dropout(self.dropout, dtype=self.dtype_policy)

    def build(self, x_shape, position_bias_shape=None, padding_mask_shape=None):
        D = x_shape[-1]
        inner = (*x_shape[:-1], self.num_heads * self.key_value_dim)
        self.attention_norm.build(x_shape)
        for d in (self.query, self.key, self.value):
            d.build(x_shape)
        self.attention_output.build(inner)
        self.feedforward_norm.build(x_shape)
        self.wi.build(x_shape)
        if self.wi_gate is not None:
            self.wi_gate.build(x_shape)
        self.wo.build((*x_shape[:-1], self.intermediate_dim))
        assert D == self.hidden_dim, f"T5EncoderLayer: input width {D} != hidden_dim {self.hidden_dim}"

    def _heads(self, x):
        b, L = ops.shape(x)[0], ops.shape(x)[1]
        return ops.reshape(x, (b, L, self.num_heads, self.key_value_dim))

    def call(self, x, position_bias, padding_mask, training=None):
        h = self.attention_norm(x)
        q, k, v = self._heads(self.query(h)), self._heads(self.key(h)), self._heads(self.value(h))
        scores = ops.einsum("bqhd,bkhd->bhqk", q, k)                  # T5: no 1/sqrt(d) scaling
        keep = ops.cast(padding_mask, scores.dtype)[:, None, None, :]
        scores = scores + ops.cast(position_bias, scores.dtype) + (1.0 - keep) * _MASKED
        weights = ops.softmax(ops.cast(scores, "float32"), axis=-1)
        weights = self.dropout_layer(ops.cast(weights, self.compute_dtype), training=training)
        att = ops.einsum("bhqk,bkhd->bqhd", weights, v)
        b, L = ops.shape(x)[0], ops.shape(x)[1]
        att = ops.reshape(att, (b, L, self.num_heads * self.key_value_dim))
        x = x + self.dropout_layer(self.attention_output(att), training=training)
        h = self.feedforward_norm(x)
        f = self._act(self.wi(h))
        if self.wi_gate is not None:
            f = f * self.wi_gate(h)
        f = self.wo(self.dropout_layer(f, training=training))
        return x + self.dropout_layer(f, training=training)

    def compute_output_shape(self, x_shape, position_bias_shape=None, padding_mask_shape=None):
        return x_shape

    def get_config(self):
        return {**super().get_config(), "hidden_dim": self.hidden_dim, "num_heads": self.num_heads,
                "key_value_dim": self.key_value_dim, "intermediate_dim": self.intermediate_dim,
                "activation": self.activation, "gated": self.gated,
                "layer_norm_epsilon": self.layer_norm_epsilon, "dropout": self.dropout}


def build_t5_encoder(arch: Mapping[str, Any] | None = None, *, name: str = "t5_encoder") -> keras.Model:
    """A flat functional T5 encoder ``{"token_ids", "padding_mask"} -> (B, L, hidden)``."""
    a = _full(arch or {})
    token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    padding_mask = keras.Input(shape=(None,), dtype="int32", name="padding_mask")
    x = keras.layers.Embedding(a["vocabulary_size"], a["hidden_dim"], name="token_embedding",
                               embeddings_initializer=keras.initializers.RandomNormal(stddev=1.0))(token_ids)
    x = keras.layers.Dropout(a["dropout"], name="embeddings_dropout")(x)
    bias = T5RelativeAttentionBias(a["num_heads"], a["num_buckets"], a["max_distance"],
                                   name="relative_attention_bias")(padding_mask)
    for i in range(int(a["num_layers"])):
        x = T5EncoderLayer(a["hidden_dim"], a["num_heads"], a["key_value_dim"], a["intermediate_dim"],
                           a["activation"], a["gated"], a["layer_norm_epsilon"], a["dropout"],
                           name=f"transformer_layer_{i}")(x, bias, padding_mask)
    x = T5RMSNorm(a["layer_norm_epsilon"], name="final_layer_norm")(x)
    x = keras.layers.Dropout(a["dropout"], name="final_dropout")(x)
    model = keras.Model({"token_ids": token_ids, "padding_mask": padding_mask}, x, name=name)
    model.max_sequence_length = int(a["max_sequence_length"])
    return model


# ---------------------------------------------------------------------- Hugging Face weights
def _read_safetensors(folder: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    index = folder / "model.safetensors.index.json"
    if index.is_file():
        files = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    tensors: dict[str, np.ndarray] = {}
    for f in files:
        tensors.update(load_file(str(folder / f)))
    return tensors


def load_t5_weights(model: keras.Model, folder: str | Path) -> None:
    """Copy a Hugging Face T5 checkpoint's encoder (``T5EncoderModel`` or the encoder of
    ``T5ForConditionalGeneration``; safetensors) into ``model``. Every variable is set exactly once
    from a tensor of the expected shape, or a ValueError names what is missing or wrong."""
    t = _read_safetensors(Path(folder))
    t = {k[len("transformer."):] if k.startswith("transformer.") else k: v for k, v in t.items()}
    used: set[str] = set()

    def get(key: str, shape, transpose: bool = False) -> np.ndarray:
        if key not in t:
            raise ValueError(f"the T5 checkpoint in {folder} has no tensor {key!r}")
        value = np.asarray(t[key], dtype="float32")
        value = value.T if transpose else value
        if tuple(value.shape) != tuple(shape):
            raise ValueError(f"T5 tensor {key!r} has shape {value.shape}, the model needs {tuple(shape)}")
        used.add(key)
        return value

    def assign(var, key, transpose=False):
        var.assign(get(key, var.shape, transpose))

    emb = model.get_layer("token_embedding").embeddings
    assign(emb, "shared.weight" if "shared.weight" in t else "encoder.embed_tokens.weight")
    assign(model.get_layer("relative_attention_bias").embeddings,
           "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight")
    n = sum(1 for l in model.layers if l.name.startswith("transformer_layer_"))
    for i in range(n):
        layer = model.get_layer(f"transformer_layer_{i}")
        p = f"encoder.block.{i}.layer."
        for dense, hf in ((layer.query, "q"), (layer.key, "k"), (layer.value, "v"), (layer.attention_output, "o")):
            assign(dense.kernel, f"{p}0.SelfAttention.{hf}.weight", transpose=True)   # torch: (out, in)
        assign(layer.attention_norm.scale, f"{p}0.layer_norm.weight")
        if layer.gated:
            assign(layer.wi.kernel, f"{p}1.DenseReluDense.wi_0.weight", transpose=True)
            assign(layer.wi_gate.kernel, f"{p}1.DenseReluDense.wi_1.weight", transpose=True)
        else:
            assign(layer.wi.kernel, f"{p}1.DenseReluDense.wi.weight", transpose=True)
        assign(layer.wo.kernel, f"{p}1.DenseReluDense.wo.weight", transpose=True)
        assign(layer.feedforward_norm.scale, f"{p}1.layer_norm.weight")
    assign(model.get_layer("final_layer_norm").scale, "encoder.final_layer_norm.weight")
    extra = sorted(k for k in t if k.startswith("encoder.block.") and k not in used)
    if extra:   # e.g. a checkpoint with more layers than its config.json says
        raise ValueError(f"the T5 checkpoint in {folder} has encoder tensors the model does not use: "
                         f"{', '.join(extra[:5])}")
