"""The server's forward passes: the predictor's pass over a batch's inputs, in a few fixed batch
shapes on JAX, and the warm-up that compiles those shapes before the first request."""

from __future__ import annotations

import logging
from typing import Callable

__all__ = ["bucket", "buckets", "forward_pass", "warm_up"]

_log = logging.getLogger("automl_tl")


def _on_jax() -> bool:
    import keras

    return keras.backend.backend() == "jax"


def bucket(n: int, max_batch: int) -> int:
    """The rows a pass of ``n`` inputs runs as on JAX: the next power of two, at most
    ``max_batch`` (larger passes are cut into batches of ``max_batch``, the last padded)."""
    return n if n >= max_batch else min(max_batch, 1 << max(0, n - 1).bit_length())


def buckets(max_batch: int) -> list[int]:
    """Every batch size :func:`bucket` gives up to ``max_batch``: 1, 2, 4, ..., ``max_batch``."""
    return sorted({bucket(n, max_batch) for n in range(1, max_batch + 1)})


def forward_pass(predictor, max_batch: int) -> Callable[[list], object]:
    """``items -> probabilities`` for the batcher: ``predictor.predict_proba`` (its compiled
    forward, :mod:`automl_tl.forward`). On JAX the items are padded to :func:`bucket` rows (the
    last repeated, its extra rows dropped): ``jax.jit`` compiles once per batch shape, so a server
    seeing every count from 1 to ``max_batch`` would compile up to ``max_batch`` programs (seconds
    each, on a GPU too) while requests wait; with buckets at most log2(``max_batch``) + 1, all
    compiled by :func:`warm_up`, at the cost of decoding at most twice the inputs of a pass.
    TensorFlow's ``tf.function`` generalises the batch dimension at its second shape
    (``reduce_retracing``), so nothing is padded there."""
    if not _on_jax():
        return lambda items: predictor.predict_proba(items, batch_size=max_batch)

    def run(items: list):
        n = len(items)
        rows = bucket(n, max_batch) if n else 0
        return predictor.predict_proba(list(items) + [items[-1]] * (rows - n), batch_size=max_batch)[:n]

    return run


def warm_up(predictor, max_batch: int = 64) -> None:
    """Compile the models' forward passes (:func:`automl_tl.forward.compiled_forward`, the call
    every request runs) before the first request: each trace takes a second or more (2.7 s for
    MobileNetV2 on a loaded 2-core machine), which the first requests would wait for. Batches of
    zeros shaped like the model's inputs, a dimension the model leaves open (a sequence's length)
    as 8, then 9: on TensorFlow two batch shapes (1 and 2 rows; the first trace leaves the batch
    size open, the second relaxes a sequence's length), after which the ``tf.function`` serves
    every shape; on JAX every :func:`buckets` size. Best effort: a model whose inputs are
    not known (a head never called on symbolic inputs) compiles on its first requests instead."""
    import keras
    import numpy as np

    from automl_tl.forward import compiled_forward

    def models(p):
        yield p.model
        for m in p.members:
            yield from models(m)

    sizes = [(n, 8) for n in buckets(max_batch)] if _on_jax() else [(1, 8), (2, 9)]
    for model in models(predictor):
        try:
            fwd = compiled_forward(model)
            for n, free in sizes:
                batch = keras.tree.map_structure(
                    lambda x: np.zeros((n, *[free if d is None else d for d in x.shape[1:]]), dtype=x.dtype),
                    model.input)
                fwd(batch)
        except Exception as exc:  # noqa: BLE001 - only the first requests' latency is at stake
            _log.debug("serve: no warm-up for %s (%s: %s)", model.name, type(exc).__name__, exc)
