"""Adam with a learning-rate factor per variable (layer-wise learning-rate decay).

Keras 3 has no multi-optimizer, and scaling gradients does not scale Adam's steps (Adam divides
by the gradient's own magnitude), so the factor multiplies the learning rate inside
``update_step``, the one per-variable hook of Keras' optimizer API. Works on every backend: the
factor is looked up by the variable's index when the optimizer is built.
"""

from __future__ import annotations

from typing import Mapping

import keras

__all__ = ["LayerwiseAdam"]


class LayerwiseAdam(keras.optimizers.Adam):
    """``keras.optimizers.Adam`` where variable ``v`` steps at ``learning_rate * factors[id(v)]``
    (1.0 for variables not in ``factors``). The factors are tied to this process's variables and
    are not serialised: the optimizer trains, the delivered model is saved without it."""

    def __init__(self, factors: Mapping[int, float], **kwargs) -> None:
        super().__init__(**kwargs)
        self._factor_by_id = dict(factors)
        self._factors: list[float] = []

    def build(self, variables):
        super().build(variables)
        self._factors = [float(self._factor_by_id.get(id(v), 1.0)) for v in variables]

    def update_step(self, gradient, variable, learning_rate):
        factor = self._factors[self._get_variable_index(variable)]
        super().update_step(gradient, variable, learning_rate * factor if factor != 1.0 else learning_rate)
