"""Serializable preprocessing layer: raw RGB in [0, 255] -> what each backbone expects."""

from __future__ import annotations

import keras

_CAFFE_MEAN = (103.939, 116.779, 123.68)


@keras.saving.register_keras_serializable(package="automl_tl_vision")
class ImagePreprocess(keras.layers.Layer):
    """``tf``: scale to [-1, 1]; ``caffe``: RGB->BGR minus ImageNet means; ``torch``: [0, 1] then
    ImageNet mean / std (torchvision's ``Normalize``); ``lite``: ``(x - 127) / 128`` (TensorFlow
    EfficientNet-Lite's MEAN_RGB / STDDEV_RGB); ``none``: unchanged."""

    def __init__(self, mode: str = "tf", **kwargs):
        super().__init__(**kwargs)
        if mode not in ("tf", "caffe", "torch", "lite", "none"):
            raise ValueError(f"unknown preprocessing mode {mode!r}")
        self.mode = mode

    def call(self, x):
        x = keras.ops.cast(x, "float32")
        if self.mode == "tf":
            return x / 127.5 - 1.0
        if self.mode == "caffe":
            x = keras.ops.flip(x, axis=-1)
            return x - keras.ops.convert_to_tensor(_CAFFE_MEAN, dtype="float32")
        if self.mode == "torch":
            mean = keras.ops.convert_to_tensor((0.485, 0.456, 0.406), dtype="float32")
            std = keras.ops.convert_to_tensor((0.229, 0.224, 0.225), dtype="float32")
            return (x / 255.0 - mean) / std
        if self.mode == "lite":
            return (x - 127.0) / 128.0
        return x

    def get_config(self):
        return super().get_config() | {"mode": self.mode}
