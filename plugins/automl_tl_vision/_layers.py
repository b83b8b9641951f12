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


@keras.saving.register_keras_serializable(package="automl_tl_vision")
class ImageResize(keras.layers.Layer):
    """uint8 images at the transport size -> float32 at the model's size: bilinear (half-pixel
    centres, as PIL's ``BILINEAR``), antialiased only where it shrinks (where PIL filters the
    source too; upsampling has nothing to filter, and the plain resize is one TFLite / ONNX op).

    Why a layer of our own rather than ``keras.layers.Resizing``: the cast comes first and is
    explicit, so every backend resizes float32 (``keras.ops.image.resize`` of a uint8 array gives
    uint8 back on TensorFlow and JAX alike: whole-number pixels), and the layer computes in
    float32 under a mixed-precision policy (bfloat16 holds 128-255 in steps of 1: a resized pixel
    would move by up to 0.5). It runs where the model runs: on a GPU the host sends uint8 at the
    transport size (1/4 of float32's bytes, fewer pixels for small images) and the upsampling is
    one kernel there, on the batch already on the device."""

    def __init__(self, size: int, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.size = int(size)

    def call(self, x):
        x = keras.ops.cast(x, "float32")
        h, w = x.shape[1], x.shape[2]
        if (h, w) == (self.size, self.size):
            return x
        shrink = (h or 0) > self.size or (w or 0) > self.size
        return keras.ops.image.resize(x, (self.size, self.size), interpolation="bilinear", antialias=shrink)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.size, self.size, input_shape[-1])

    def get_config(self):
        return super().get_config() | {"size": self.size}


def image_input(input_config, default_size: int = 224):
    """``(model input, float32 image at the model's size)`` for ``input_config``.

    With ``source_size`` (the transport size: what the adapter sends) the input is uint8
    ``(source_size, source_size, 3)`` and :class:`ImageResize` brings it to ``image_size`` inside
    the model; without it (runs saved before the key existed) the input is float32 at
    ``image_size``, as it always was, so their saved models load and predict unchanged."""
    size = int(input_config.get("image_size", default_size))
    source = input_config.get("source_size")
    if source is None:
        inp = keras.Input((size, size, 3), name="image")
        return inp, inp
    inp = keras.Input((int(source), int(source), 3), dtype="uint8", name="image")
    return inp, ImageResize(size, name="automl_tl_resize")(inp)
