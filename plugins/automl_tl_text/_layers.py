"""Keras layers of the text plugin (imported lazily: this module imports Keras and KerasHub).

Importing this module registers the custom layers for ``keras.saving.load_model`` (and importing
KerasHub registers its transformer layers), so a saved ``model.keras`` loads after
``import automl_tl_text._layers`` (the plugin's ``make_adapter`` and ``build`` import it).
"""

from __future__ import annotations

import keras
import keras_hub  # noqa: F401  - registers KerasHub's serialisable layers
from keras import ops

__all__ = ["MaskedPooling", "TokenDropout"]


@keras.saving.register_keras_serializable(package="automl_tl_text")
class MaskedPooling(keras.layers.Layer):
    """Pools ``(B, L, D)`` token states to ``(B, D)``.

    ``mode="mean"``: average over the real tokens (``padding_mask == 1``), as sentence-transformers
    do; ``mode="cls"``: the hidden state of the first token (``[CLS]`` / ``<s>``); ``mode="last"``:
    the hidden state of the last real token (the last position with ``padding_mask == 1``; the
    first position when a row has none), the readout of causal decoders such as GPT-2, where only
    that token has seen the whole text. The adapter pads on the right, so the causal mask keeps
    padding out of every real token's state.
    """

    MODES = ("mean", "cls", "last")

    def __init__(self, mode: str = "mean", **kwargs):
        super().__init__(**kwargs)
        if mode not in self.MODES:
            raise ValueError(f"pooling must be one of {', '.join(self.MODES)}, got {mode!r}")
        self.mode = mode

    def call(self, sequence, padding_mask):
        if self.mode == "cls":
            return sequence[:, 0, :]
        if self.mode == "last":
            # (position + 1) where real, 0 where padded: its argmax is the last real position
            positions = ops.arange(1, ops.shape(padding_mask)[1] + 1, dtype="int32")
            last = ops.argmax(ops.cast(padding_mask > 0, "int32") * positions[None, :], axis=1)
            index = ops.reshape(ops.cast(last, "int32"), (-1, 1, 1))
            index = ops.broadcast_to(index, (ops.shape(sequence)[0], 1, ops.shape(sequence)[2]))
            return ops.take_along_axis(sequence, index, axis=1)[:, 0, :]
        mask = ops.expand_dims(ops.cast(padding_mask, sequence.dtype), -1)
        total = ops.sum(sequence * mask, axis=1)
        count = ops.maximum(ops.sum(mask, axis=1), 1e-9)
        return total / count

    def compute_output_shape(self, sequence_shape, padding_mask_shape=None):
        return (sequence_shape[0], sequence_shape[-1])

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


@keras.saving.register_keras_serializable(package="automl_tl_text")
class TokenDropout(keras.layers.Layer):
    """Training-only augmentation: hides a random ``rate`` share of the real tokens.

    Takes and returns the adapter's dict; a dropped token gets ``padding_mask = 0`` (attention and
    mean pooling ignore it), the first token (``[CLS]`` / ``<s>``) is never dropped. At inference
    (``training=False``) the inputs pass through unchanged, so the saved model predicts as trained.
    """

    def __init__(self, rate: float = 0.1, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"rate must be in [0, 1), got {rate}")
        self.rate = float(rate)
        self.seed = seed
        self._rng = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=None):
        if not training or self.rate == 0.0:
            return inputs
        mask = inputs["padding_mask"]
        keep = keras.random.uniform(ops.shape(mask), seed=self._rng) >= self.rate
        first = ops.expand_dims(ops.arange(ops.shape(mask)[1]) == 0, 0)
        keep = ops.logical_or(keep, first)
        out = dict(inputs)
        out["padding_mask"] = ops.cast(ops.logical_and(ops.cast(mask, "bool"), keep), mask.dtype)
        return out

    def compute_output_spec(self, inputs, training=None):
        return {k: keras.KerasTensor(v.shape, dtype=v.dtype) for k, v in inputs.items()}

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}
