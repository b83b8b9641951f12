"""The MPNet encoder in pure Keras 3 (``keras.layers`` / ``keras.ops``: any backend) and a converter
from Hugging Face checkpoints (``MPNetModel``, ``MPNetForMaskedLM``, sentence-transformers folders).

Why hand-written: KerasHub 0.32 has no MPNet. The encoder is BERT's post-norm stack with MPNet's two
position signals:

- ``token_embedding`` + ``position_embedding`` (absolute, Hugging Face's ``padding_idx`` offset: the
  real tokens of a right-padded row sit at positions 2, 3, ..., padded ones at 1), then
  ``embeddings_layer_norm``; no segment embeddings;
- ``relative_attention_bias``: T5's bidirectional bucketed relative-position bias (32 buckets,
  distance 128: :class:`automl_tl_text._t5.T5RelativeAttentionBias`, the same bucketing), computed
  once and added to every layer's scaled attention scores (Hugging Face keeps the table in the
  encoder; here it goes with the first layer's block, as T5's does);
- ``transformer_layer_{i}``: ``LN(x + attention(x))`` then ``LN(h + W2 act(W1 h))``, biases
  everywhere, scores scaled by 1/sqrt(head_dim).

The model maps ``{"token_ids", "padding_mask"}`` to the last hidden state ``(B, L, hidden)``;
padded key positions get -1e9 added to their scores, so padding never reaches a real token.
Parity with ``transformers.MPNetModel`` is tested in ``tests/text/test_mpnet.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import keras
import numpy as np
from keras import ops

from automl_tl_text._mpnet_arch import BUCKETS, MAX_DISTANCE, PADDING_IDX, mpnet_full_arch
from automl_tl_text._t5 import T5RelativeAttentionBias, _activation, _read_safetensors

__all__ = ["MPNetPositionEmbedding", "MPNetEncoderLayer", "build_mpnet_encoder", "load_mpnet_weights"]

_MASKED = -1e9   # added to the scores of padded keys: exp() underflows to exactly 0


@keras.saving.register_keras_serializable(package="automl_tl_text")
class MPNetPositionEmbedding(keras.layers.Layer):
    """Absolute position embeddings of right-padded rows, numbered as Hugging Face's
    ``create_position_ids_from_input_ids`` does: ``cumsum(mask) * mask + padding_idx``."""

    def __init__(self, num_positions: int, hidden_dim: int, padding_idx: int = PADDING_IDX, **kwargs):
        super().__init__(**kwargs)
        self.num_positions, self.hidden_dim, self.padding_idx = int(num_positions), int(hidden_dim), int(padding_idx)

    def build(self, padding_mask_shape):
        self.embeddings = self.add_weight(name="embeddings", shape=(self.num_positions, self.hidden_dim),
                                          initializer=keras.initializers.RandomNormal(stddev=0.02))

    def call(self, padding_mask):
        mask = ops.cast(padding_mask > 0, "int32")
        positions = ops.cumsum(mask, axis=1) * mask + self.padding_idx
        return ops.take(ops.convert_to_tensor(self.embeddings), positions, axis=0)

    def compute_output_shape(self, padding_mask_shape):
        return (*padding_mask_shape, self.hidden_dim)

    def get_config(self):
        return {**super().get_config(), "num_positions": self.num_positions, "hidden_dim": self.hidden_dim,
                "padding_idx": self.padding_idx}


@keras.saving.register_keras_serializable(package="automl_tl_text")
class MPNetEncoderLayer(keras.layers.Layer):
    """One MPNet (BERT-style, post-norm) encoder block with the shared relative position bias."""

    def __init__(self, hidden_dim: int, num_heads: int, intermediate_dim: int, activation: str = "gelu",
                 layer_norm_epsilon: float = 1e-5, dropout: float = 0.1, attention_dropout: float = 0.1,
                 **kwargs):
        super().__init__(**kwargs)
        self.hidden_dim, self.num_heads, self.intermediate_dim = int(hidden_dim), int(num_heads), int(intermediate_dim)
        self.activation, self.layer_norm_epsilon = str(activation), float(layer_norm_epsilon)
        self.dropout, self.attention_dropout = float(dropout), float(attention_dropout)
        self.head_dim = self.hidden_dim // self.num_heads
        self._act = _activation(self.activation)

        def dense(units, name):
            return keras.layers.Dense(units, dtype=self.dtype_policy, name=name)

        def norm(name):
            return keras.layers.LayerNormalization(epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy,
                                                   name=name)

        self.query, self.key, self.value = (dense(self.hidden_dim, n) for n in ("query", "key", "value"))
        self.attention_output = dense(self.hidden_dim, "attention_output")
        self.attention_layer_norm = norm("attention_layer_norm")
        self.intermediate = dense(self.intermediate_dim, "intermediate")
        self.output_dense = dense(self.hidden_dim, "output")
        self.output_layer_norm = norm("output_layer_norm")
        self.dropout_layer = keras.layers.Dropout(self.dropout, dtype=self.dtype_policy)
        self.attention_dropout_layer = keras.layers.Dropout(self.attention_dropout, dtype=self.dtype_policy)

    def build(self, x_shape, position_bias_shape=None, padding_mask_shape=None):
        if x_shape[-1] != self.hidden_dim:
            raise ValueError(f"MPNetEncoderLayer: input width {x_shape[-1]} != hidden_dim {self.hidden_dim}")
        for layer in (self.query, self.key, self.value, self.attention_output, self.attention_layer_norm,
                      self.intermediate, self.output_layer_norm):
            layer.build(x_shape)
        self.output_dense.build((*x_shape[:-1], self.intermediate_dim))

    def _heads(self, x):
        return ops.reshape(x, (ops.shape(x)[0], ops.shape(x)[1], self.num_heads, self.head_dim))

    def call(self, x, position_bias, padding_mask, training=None):
        q, k, v = self._heads(self.query(x)), self._heads(self.key(x)), self._heads(self.value(x))
        scores = ops.einsum("bqhd,bkhd->bhqk", q, k) / ops.cast(np.sqrt(self.head_dim), q.dtype)
        keep = ops.cast(padding_mask, scores.dtype)[:, None, None, :]
        scores = scores + ops.cast(position_bias, scores.dtype) + (1.0 - keep) * _MASKED
        weights = ops.softmax(ops.cast(scores, "float32"), axis=-1)
        weights = self.attention_dropout_layer(ops.cast(weights, self.compute_dtype), training=training)
        att = ops.einsum("bhqk,bkhd->bqhd", weights, v)
        att = ops.reshape(att, (ops.shape(x)[0], ops.shape(x)[1], self.hidden_dim))
        h = self.attention_layer_norm(x + self.dropout_layer(self.attention_output(att), training=training))
        f = self.output_dense(self._act(self.intermediate(h)))
        return self.output_layer_norm(h + self.dropout_layer(f, training=training))

    def compute_output_shape(self, x_shape, position_bias_shape=None, padding_mask_shape=None):
        return x_shape

    def get_config(self):
        return {**super().get_config(), "hidden_dim": self.hidden_dim, "num_heads": self.num_heads,
                "intermediate_dim": self.intermediate_dim, "activation": self.activation,
                "layer_norm_epsilon": self.layer_norm_epsilon, "dropout": self.dropout,
                "attention_dropout": self.attention_dropout}


def build_mpnet_encoder(arch: Mapping[str, Any] | None = None, *, name: str = "mpnet_encoder") -> keras.Model:
    """A flat functional MPNet encoder ``{"token_ids", "padding_mask"} -> (B, L, hidden)``."""
    a = mpnet_full_arch(arch or {})
    token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    padding_mask = keras.Input(shape=(None,), dtype="int32", name="padding_mask")
    tokens = keras.layers.Embedding(a["vocabulary_size"], a["hidden_dim"], name="token_embedding",
                                    embeddings_initializer=keras.initializers.RandomNormal(stddev=0.02))(token_ids)
    positions = MPNetPositionEmbedding(int(a["max_sequence_length"]) + PADDING_IDX + 1, a["hidden_dim"],
                                       name="position_embedding")(padding_mask)
    x = keras.layers.Add(name="embeddings_add")([tokens, positions])
    x = keras.layers.LayerNormalization(epsilon=a["layer_norm_epsilon"], name="embeddings_layer_norm")(x)
    x = keras.layers.Dropout(a["dropout"], name="embeddings_dropout")(x)
    bias = T5RelativeAttentionBias(a["num_heads"], BUCKETS, MAX_DISTANCE, name="relative_attention_bias")(padding_mask)
    for i in range(int(a["num_layers"])):
        x = MPNetEncoderLayer(a["hidden_dim"], a["num_heads"], a["intermediate_dim"], a["activation"],
                              a["layer_norm_epsilon"], a["dropout"], a["attention_dropout"],
                              name=f"transformer_layer_{i}")(x, bias, padding_mask)
    model = keras.Model({"token_ids": token_ids, "padding_mask": padding_mask}, x, name=name)
    model.max_sequence_length = int(a["max_sequence_length"])
    return model


def load_mpnet_weights(model: keras.Model, folder: str | Path) -> None:
    """Copy a Hugging Face MPNet checkpoint (safetensors; with or without the ``mpnet.`` prefix of
    ``MPNetForMaskedLM``) into ``model``. Every variable is set exactly once from a tensor of the
    expected shape, or a ValueError names what is missing or wrong."""
    t = _read_safetensors(Path(folder))
    t = {k.removeprefix("mpnet."): v for k, v in t.items()}
    used: set[str] = set()

    def assign(var, key, transpose=False):
        if key not in t:
            raise ValueError(f"the MPNet checkpoint in {folder} has no tensor {key!r}")
        value = np.asarray(t[key], dtype="float32")
        value = value.T if transpose else value
        if tuple(value.shape) != tuple(var.shape):
            raise ValueError(f"MPNet tensor {key!r} has shape {value.shape}, the model needs {tuple(var.shape)}")
        var.assign(value)
        used.add(key)

    def norm(layer, key):
        assign(layer.gamma, f"{key}.weight")
        assign(layer.beta, f"{key}.bias")

    def dense(layer, key):
        assign(layer.kernel, f"{key}.weight", transpose=True)     # torch Linear: (out, in)
        assign(layer.bias, f"{key}.bias")

    assign(model.get_layer("token_embedding").embeddings, "embeddings.word_embeddings.weight")
    assign(model.get_layer("position_embedding").embeddings, "embeddings.position_embeddings.weight")
    norm(model.get_layer("embeddings_layer_norm"), "embeddings.LayerNorm")
    assign(model.get_layer("relative_attention_bias").embeddings, "encoder.relative_attention_bias.weight")
    n = sum(1 for l in model.layers if l.name.startswith("transformer_layer_"))
    for i in range(n):
        layer, p = model.get_layer(f"transformer_layer_{i}"), f"encoder.layer.{i}."
        for d, hf in ((layer.query, "q"), (layer.key, "k"), (layer.value, "v"), (layer.attention_output, "o")):
            dense(d, f"{p}attention.attn.{hf}")
        norm(layer.attention_layer_norm, f"{p}attention.LayerNorm")
        dense(layer.intermediate, f"{p}intermediate.dense")
        dense(layer.output_dense, f"{p}output.dense")
        norm(layer.output_layer_norm, f"{p}output.LayerNorm")
    extra = sorted(k for k in t if k.startswith("encoder.") and k not in used)
    if extra:   # e.g. a checkpoint with more layers than its config.json says
        raise ValueError(f"the MPNet checkpoint in {folder} has encoder tensors the model does not use: "
                         f"{', '.join(extra[:5])}")

