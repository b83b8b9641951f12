"""What Keras' ONNX export (tf2onnx's ``convert.from_function``, tf2onnx 1.17) lacks for the
models automl-tl delivers, wrapped here in one place:

- tf2onnx turns a tensor the traced function *captures* (not a variable) into an extra graph
  input instead of a constant; a ``keras.layers.Normalization`` built with a fixed mean and
  variance (the head's ``feature_norm``) holds exactly such tensors. Made variables before the
  export, they are frozen into the graph like any weight.
- TensorFlow's exact GELU uses ``Erfc``, which tf2onnx has no handler for and ONNX has no op for;
  ``erfc(x) = 1 - erf(x)`` is registered through tf2onnx's own handler decorator.
- an op tf2onnx cannot convert is left in the graph as it is (a nested ``StatefulPartitionedCall``
  of an XLA-compiled grouped convolution, for one); :func:`invalid` finds it with ONNX's checker.
"""

from __future__ import annotations

import functools

import numpy as np

__all__ = ["prepare", "invalid"]


def prepare(graph) -> None:
    """Make ``graph`` convertible by tf2onnx (see the module's docstring); changes it in place."""
    import keras
    import tensorflow as tf

    _register_erfc()
    for layer in _layers(graph):
        if isinstance(layer, keras.layers.Normalization) and layer.input_mean is not None and layer.built:
            layer.mean = tf.Variable(layer.mean, trainable=False, name="mean")
            layer.variance = tf.Variable(layer.variance, trainable=False, name="variance")


def _layers(layer):
    yield layer
    for inner in getattr(layer, "layers", None) or []:
        yield from _layers(inner)


@functools.lru_cache(maxsize=None)
def _register_erfc() -> None:
    from tf2onnx import utils
    from tf2onnx.handler import tf_op

    @tf_op("Erfc")
    class _Erfc:  # noqa: F841 - registered by the decorator
        @classmethod
        def version_9(cls, ctx, node, **kwargs):
            node.type = "Erf"  # then 1 - erf(x) on its output
            dtype = utils.map_onnx_to_numpy_type(ctx.get_dtype(node.output[0]))
            one = ctx.make_const(utils.make_name(f"{node.name}_one"), np.array(1, dtype=dtype))
            ctx.insert_new_node_on_output("Sub", node.output[0], name=utils.make_name(f"{node.name}_erfc"),
                                          inputs=[one.output[0], node.output[0]])


def invalid(path) -> str | None:
    """Why the ONNX file at ``path`` is not a valid model (an op ONNX does not have, named), or None."""
    import onnx

    try:
        onnx.checker.check_model(str(path))
    except onnx.checker.ValidationError as exc:
        lines = [line for line in str(exc).splitlines() if line.strip()]
        op = next((line for line in lines if "No Op registered" in line or "No opset import" in line), None)
        return (op or (lines[0] if lines else "the ONNX checker refused it")).strip()[:300]
    return None
