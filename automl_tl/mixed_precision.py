"""Mixed precision that keeps a backbone's predictions: its stem computes in float32.

A backbone built under ``mixed_bfloat16`` (:func:`automl_tl.accelerator.precision_scope`)
computes every layer in bfloat16; :func:`float32_stem` puts its first block(s) back in float32.
Its own module (not in accelerator.py): the frozen build in forward.py applies it, and
accelerator.py imports forward.py (its batch-size probe runs the compiled forward).
"""

from __future__ import annotations

import logging

__all__ = ["FLOAT32_BLOCKS", "float32_stem"]

log = logging.getLogger("automl_tl")

#: how many of a backbone's first blocks (``spec.blocks``: the stem first) compute in float32
#: when it is built under ``mixed_bfloat16``. Measured (benchmarks/bench_batch_size.py --only
#: bf16: MobileNetV2 at 96 px + a linear head, 1 000 Fashion-MNIST test images, labels of the
#: bf16 model against the float32 one): all in bf16 97.5 % agree (JAX 97.8 %); the stem in
#: float32 99.4 % (JAX 99.5 %), features 11 % -> 4.3 % off; the stem and block 1 99.0 %, and 2
#: 99.2 % (no better: the rest is noise of the boundary items); every BatchNormalization in
#: float32 changes nothing (Keras normalises bf16 inputs in float32 already: the error is the
#: bf16 rounding of the convolution before it, whose output the BN's mean then cancels). An
#: error made early is carried, and magnified, through every later layer; the stem's is also
#: made on the raw pixels' widest range. The stem is little compute: MobileNetV2's is 7.0 % of
#: its multiply-adds at any image size (3.8 of 55 M at 96 px, 20.9 of 299 M at 224), so a GPU
#: keeps 93 % of them in bf16 (ResNet50's 7x7 stem convolution is ~3 % by the same count, a
#: ViT's patch embedding less). Its activations are the largest, so their memory traffic doubles:
#: a little of bf16's gain on those memory-bound first layers
FLOAT32_BLOCKS = 1


def float32_stem(spec, model, blocks: int = FLOAT32_BLOCKS):
    """``model`` (a build of ``spec``) with the layers of its first ``blocks`` blocks
    (``spec.blocks(model)``) computing in float32, when they were built to compute in bfloat16:
    their variables are float32 already, and Keras casts their inputs (and the next layers' to
    bfloat16) as it calls them, in a functional model as in a saved and loaded one (the policy
    is in each layer's config). A model without blocks (a featurizer outside Keras, no blocks
    listed) is returned as it is. Returns ``model``, changed in place."""
    import keras

    low = ("bfloat16", "float16")
    if not any(layer.dtype_policy.compute_dtype in low for layer in model._flatten_layers(include_self=True)):
        return model  # a float32 build: nothing to do (its blocks not even listed)
    try:
        groups = list(spec.blocks(model))[:blocks] if blocks > 0 else []
    except Exception:  # noqa: BLE001 - blocks of a model it cannot group: the model stays all bf16
        log.debug("%s: no blocks to keep in float32", getattr(spec, "name", spec), exc_info=True)
        return model
    for layer in (inner for group in groups for top in group for inner in top._flatten_layers(include_self=True)):
        if layer.dtype_policy.compute_dtype in low:
            layer.dtype_policy = keras.DTypePolicy("float32")
    return model
