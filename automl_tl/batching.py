"""Batches of raw items: decoding ahead in a thread, a tf.data pipeline for fine-tuning, and
class probabilities for raw items (search, refit and the saved Predictor all predict through here)."""

from __future__ import annotations

import concurrent.futures
import math
from typing import Any, Sequence

import numpy as np

__all__ = ["iter_batches", "make_dataset", "predict_proba_items"]


def iter_batches(items: Sequence[Any], adapter, batch_size: int):
    """Adapter outputs batch by batch, decoding the next batch in a thread while one is used."""
    starts = list(range(0, len(items), batch_size))
    if not starts:
        return
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(adapter, list(items[0:batch_size]))
        for k, start in enumerate(starts):
            batch = future.result()
            if k + 1 < len(starts):
                nxt = starts[k + 1]
                future = pool.submit(adapter, list(items[nxt:nxt + batch_size]))
            yield start, batch


def make_dataset(items, y, adapter, batch_size, *, shuffle: bool, seed: int):
    """A tf.data pipeline that decodes batches from disk on the fly (bounded memory)."""
    import tensorflow as tf

    items = list(items)
    y = np.asarray(y)
    rng = np.random.default_rng(seed)
    n = len(items)

    def gen():
        order = rng.permutation(n) if shuffle else np.arange(n)
        for s in range(0, n, batch_size):
            idx = order[s:s + batch_size]
            yield adapter([items[i] for i in idx]), y[idx]

    sample_x = adapter(items[:1])

    def sig(a):
        return tf.TensorSpec(shape=(None,) + tuple(np.asarray(a).shape[1:]), dtype=tf.as_dtype(np.asarray(a).dtype))

    x_sig = {k: sig(v) for k, v in sample_x.items()} if isinstance(sample_x, dict) else sig(sample_x)
    ds = tf.data.Dataset.from_generator(gen, output_signature=(x_sig, tf.TensorSpec((None,), tf.as_dtype(y.dtype))))
    steps = math.ceil(n / batch_size)
    return ds.apply(tf.data.experimental.assert_cardinality(steps)).prefetch(2)


def predict_proba_items(model, adapter, items: Sequence[Any], batch_size: int = 32, *,
                        featurize=None, n_classes: int | None = None) -> np.ndarray:
    """Class probabilities for raw ``items`` through ``adapter`` and a Keras ``model``; with
    ``featurize`` (a non-Keras backbone) each batch goes through it before ``model`` (the head)."""
    out = []
    for _, batch in iter_batches(items, adapter, batch_size):
        if featurize is not None:
            batch = np.asarray(featurize(batch), dtype="float32")
        out.append(np.asarray(model.predict_on_batch(batch)))
    if out:
        return np.concatenate(out)
    return np.zeros((0, n_classes if n_classes is not None else model.output.shape[-1]))
