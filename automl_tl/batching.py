"""Batches of raw items: decoded ahead by worker threads, fed to ``fit`` on any backend (no
TensorFlow needed off the TensorFlow backend), and class probabilities for raw items (search,
refit and the saved Predictor all predict through here).

Items of varying length (an adapter with ``length(item)``, see
:class:`~automl_tl.backbones.InputAdapter`) are batched with items of similar length, so a batch
is padded only to its own longest item (Rotten Tomatoes: 27 tokens on average, 64 to cover 95 %;
embedding 1.57x faster). Evaluation batches go in length order and results come back in item
order; training batches are drawn from length-sorted windows of a shuffled order, and the
batches' order is shuffled again (the usual "bucketing" of NLP trainers, written here because
neither Keras nor tf.data offers it backend-neutrally).
"""

from __future__ import annotations

import collections
import concurrent.futures
import os
from typing import Any, Sequence

import keras
import numpy as np

from automl_tl.fates import checkpoint

__all__ = ["iter_batches", "batch_order", "map_batches", "pad_rows", "make_dataset", "ItemBatches", "decode_workers",
           "predict_proba_items", "train_batch_size"]

#: how many batches' worth of a shuffled order is sorted by length at a time (training)
SORT_WINDOW = 32

#: the sequence length a full training batch is sized for; longer sequences get fewer per batch
TRAIN_TOKENS_PER_ITEM = 128


def train_batch_size(batch_size: int, input_config) -> int:
    """The fine-tuning batch size for inputs of ``input_config``: ``batch_size``, or for sequences
    longer than 128 tokens fewer, by ``(128 / length) ** 1.5`` (a layer's activations grow with
    the tokens, its attention with their square; training keeps every layer's): 11 of 32 at 256
    tokens, 4 at 512. MiniLM fine-tuned on 512-token documents peaked at 13 GB at 32 per batch
    (65 s), 5.0 GB at 8 and 3.8 GB at 4 (55 s each)."""
    seq = int((input_config or {}).get("sequence_length") or 0)
    if seq <= TRAIN_TOKENS_PER_ITEM:
        return batch_size
    return max(1, int(batch_size * (TRAIN_TOKENS_PER_ITEM / seq) ** 1.5))


def _lengths(items: Sequence[Any], adapter) -> np.ndarray | None:
    """Each item's length: ``adapter.lengths(items)`` where it has it (text: every text's token
    count from one batched tokenisation, cached), else ``adapter.length`` item by item."""
    many = getattr(adapter, "lengths", None)
    if many is not None:
        return np.asarray(many(items), dtype=np.int64)
    length = getattr(adapter, "length", None)
    if length is None:
        return None
    return np.fromiter((length(x) for x in items), dtype=np.int64, count=len(items))


def batch_order(items: Sequence[Any], adapter, batch_size: int, *, rng: np.random.Generator | None = None
                ) -> list[np.ndarray]:
    """The batches (arrays of item positions) to go through ``items`` once.

    Without ``rng``: in item order, or for a length-aware adapter by increasing length. With
    ``rng``: a shuffled order; for a length-aware adapter, windows of ``SORT_WINDOW`` batches are
    sorted by length before they are cut into batches, and the batches are shuffled.
    """
    n = len(items)
    lengths = _lengths(items, adapter)
    if rng is None:
        order = np.arange(n) if lengths is None else np.argsort(lengths, kind="stable")
        return [order[s:s + batch_size] for s in range(0, n, batch_size)]
    order = rng.permutation(n)
    if lengths is None:
        return [order[s:s + batch_size] for s in range(0, n, batch_size)]
    window = batch_size * SORT_WINDOW
    batches = []
    for w in range(0, n, window):
        chunk = order[w:w + window]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches += [chunk[s:s + batch_size] for s in range(0, len(chunk), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def iter_batches(items: Sequence[Any], adapter, batch_size: int, *, workers: int | None = None):
    """``(positions, adapter output)`` batch by batch, in order, while ``workers`` threads
    (:func:`decode_workers`) decode the next batches (at most ``workers + 1`` ahead: bounded
    memory). ``positions`` (an index array into ``items``) says where the batch's results go."""
    batches = batch_order(items, adapter, batch_size)
    if not batches:
        return
    workers = decode_workers() if workers is None else max(1, workers)

    def decode(idx):
        return adapter([items[i] for i in idx])

    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        ahead = collections.deque(pool.submit(decode, idx) for idx in batches[:workers + 1])
        for k, idx in enumerate(batches):
            checkpoint()  # a Ctrl-C stops the pass here, between batches
            batch = ahead.popleft().result()
            if k + workers + 1 < len(batches):
                ahead.append(pool.submit(decode, batches[k + workers + 1]))
            yield idx, batch


def pad_rows(batch, size: int):
    """``batch`` (an array or a dict of arrays) with its last row repeated up to ``size`` rows."""
    def pad(a):
        a = np.asarray(a)
        return a if len(a) >= size else np.concatenate([a, np.repeat(a[-1:], size - len(a), axis=0)])

    return {k: pad(v) for k, v in batch.items()} if isinstance(batch, dict) else pad(batch)


def map_batches(fn, items: Sequence[Any], adapter, batch_size: int, *, fixed: bool = True) -> np.ndarray | None:
    """``fn(adapter output)`` for every batch, stacked in item order (None for no items).

    With ``fixed`` every call gets the same number of rows, ``batch_size`` (a short last batch is
    padded and its extra results dropped; fewer items than a batch go as they are): ``jax.jit``
    compiles once per input shape, and a new short batch in every call would compile it again
    (TensorFlow's trace leaves the batch size open: :mod:`automl_tl.forward`)."""
    from automl_tl.forward import in_flight

    out = None
    rows = batch_size if fixed and len(items) > batch_size else 0
    # fn may return device arrays still computing (JAX): converted IN_FLIGHT batches later
    for idx, res in in_flight(lambda b: fn(pad_rows(b, rows)), iter_batches(items, adapter, batch_size)):
        res = res[:len(idx)]
        if out is None:
            out = np.empty((len(items),) + res.shape[1:], dtype=res.dtype)
        out[idx] = res
    return out


def decode_workers() -> int:
    """Threads that decode items ahead of the model: enough to keep an accelerator fed, few
    enough not to starve a small CPU's own forward pass (image decoding and tokenising release
    the GIL). ``AUTOML_TL_DECODE_WORKERS`` overrides."""
    env = os.environ.get("AUTOML_TL_DECODE_WORKERS", "").strip()
    if env:
        if not env.isdigit() or int(env) < 1:
            from automl_tl.errors import ConfigError

            raise ConfigError(f"AUTOML_TL_DECODE_WORKERS must be a whole number of threads (1 or more), "
                              f"not {env!r}; unset it to let automl-tl choose")
        return int(env)
    from automl_tl.accelerator import device

    # The count follows the cores (it was capped at 8). On an accelerator the forward pass leaves
    # the host's cores idle and decoding is what limits (a 16-core GPU machine: 15 threads, not
    # 8), so every core but one (the thread that feeds the device) decodes; on a CPU the forward
    # pass needs the cores too, so half of them decode (1 on 2 cores, as before).
    cores = os.cpu_count() or 1
    return max(1, cores - 1 if device().accelerator else cores // 2)


class ItemBatches(keras.utils.PyDataset):
    """``(adapter output, labels)`` batches of raw items for Keras ``fit`` on any backend,
    decoded by worker threads (Keras' own enqueuer); each epoch draws a new order
    (:func:`batch_order`: shuffled, length-bucketed for a length-aware adapter)."""

    def __init__(self, items: Sequence[Any], y, adapter, batch_size: int, *, shuffle: bool, seed: int,
                 workers: int | None = None) -> None:
        workers = decode_workers() if workers is None else workers
        super().__init__(workers=workers, use_multiprocessing=False, max_queue_size=max(4, 2 * workers))
        self.items, self.y, self.adapter, self.batch_size = list(items), np.asarray(y), adapter, batch_size
        self._rng = np.random.default_rng(seed) if shuffle else None
        self._batches = batch_order(self.items, adapter, batch_size, rng=self._rng)

    def __len__(self) -> int:
        return len(self._batches)

    def __getitem__(self, i: int):
        idx = self._batches[i]
        return self.adapter([self.items[j] for j in idx]), self.y[idx]

    def on_epoch_end(self) -> None:
        if self._rng is not None:
            self._batches = batch_order(self.items, self.adapter, self.batch_size, rng=self._rng)


def make_dataset(items, y, adapter, batch_size, *, shuffle: bool, seed: int):
    """What ``model.fit`` trains on: batches decoded from disk on the fly (bounded memory).

    Any backend but TensorFlow gets an :class:`ItemBatches` (no TensorFlow needed: JAX on a GPU
    machine). On TensorFlow the same batches go through ``tf.data`` with an explicit signature:
    Keras would guess a ``PyDataset``'s shapes from its first batches, and length-bucketed text
    batches differ in length from batch to batch.
    """
    source = ItemBatches(items, y, adapter, batch_size, shuffle=shuffle, seed=seed)
    if keras.backend.backend() != "tensorflow" or not len(source):
        return source
    import tensorflow as tf

    dynamic = getattr(adapter, "length", None) is not None

    def gen():
        for i in range(len(source)):
            yield source[i]
        source.on_epoch_end()

    sample_x = adapter(source.items[:1])

    def sig(a):
        a = np.asarray(a)
        shape = (None,) * a.ndim if dynamic else (None,) + tuple(a.shape[1:])
        return tf.TensorSpec(shape=shape, dtype=tf.as_dtype(a.dtype))

    x_sig = {k: sig(v) for k, v in sample_x.items()} if isinstance(sample_x, dict) else sig(sample_x)
    ds = tf.data.Dataset.from_generator(
        gen, output_signature=(x_sig, tf.TensorSpec((None,), tf.as_dtype(source.y.dtype))))
    return ds.apply(tf.data.experimental.assert_cardinality(len(source))).prefetch(2)


def predict_proba_items(model, adapter, items: Sequence[Any], batch_size: int = 32, *,
                        featurize=None, n_classes: int | None = None) -> np.ndarray:
    """Class probabilities for raw ``items`` through ``adapter`` and a Keras ``model``; with
    ``featurize`` (a non-Keras backbone) each batch goes through it before ``model`` (the head).
    ``model`` runs through its compiled forward (:func:`automl_tl.forward.compiled_forward`),
    with its current weights (a model being fine-tuned is scored as it is now)."""
    from automl_tl.forward import compiled_forward

    forward = compiled_forward(model)

    def predict(batch):
        if featurize is not None:
            batch = np.asarray(featurize(batch), dtype="float32")
        return forward.dispatch(batch)

    out = map_batches(predict, items, adapter, batch_size)
    if out is not None:
        return out
    return np.zeros((0, n_classes if n_classes is not None else model.output.shape[-1]))
