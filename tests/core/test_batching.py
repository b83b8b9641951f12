"""The input pipeline: batches decoded by worker threads, the same on every backend."""

import threading
import time

import numpy as np

from automl_tl.batching import ItemBatches, iter_batches, map_batches


class _LengthAdapter:
    """Items are strings; a batch is padded to its longest item (like the text adapter)."""

    def __init__(self):
        self.threads = set()

    def length(self, item):
        return len(item)

    def __call__(self, items):
        self.threads.add(threading.get_ident())
        time.sleep(0.002)  # decoding takes time (lets the workers overlap)
        out = np.zeros((len(items), max(map(len, items))), dtype=np.int32)
        for i, s in enumerate(items):
            out[i, :len(s)] = [ord(c) for c in s]
        return out


def _items(n=200, seed=0):
    rng = np.random.default_rng(seed)
    return ["x" * int(k) + str(i) for i, k in enumerate(rng.integers(1, 60, n))]


def test_each_epoch_sees_every_item_once_with_its_label_in_a_new_order():
    items = _items()
    y = np.arange(len(items))
    ds = ItemBatches(items, y, _LengthAdapter(), 16, shuffle=True, seed=3, workers=3)
    orders = []
    for _ in range(2):
        seen = []
        for i in range(len(ds)):
            x, yb = ds[i]
            assert x.shape[0] == len(yb) <= 16
            for row, label in zip(x, yb):  # the label belongs to the item decoded in this row
                text = "".join(chr(c) for c in row if c)
                assert text == items[label]
            seen += yb.tolist()
        assert sorted(seen) == list(range(len(items)))
        orders.append(seen)
        ds.on_epoch_end()
    assert orders[0] != orders[1]
    assert len(ds) == -(-len(items) // 16)


def test_several_decoding_threads_return_results_in_item_order():
    items = _items(300, seed=1)
    adapter = _LengthAdapter()
    out = map_batches(lambda b: b.sum(1, keepdims=True), items, adapter, 7)
    expected = np.array([[sum(map(ord, s))] for s in items])
    np.testing.assert_array_equal(out, expected)
    assert sum(len(idx) for idx, _ in iter_batches(items, adapter, 7, workers=4)) == len(items)
    assert len(adapter.threads) > 1  # decoded by more than one worker


def test_a_bad_decode_worker_count_is_the_user_s_to_fix(monkeypatch):
    import pytest

    from automl_tl.batching import decode_workers
    from automl_tl.errors import ConfigError

    monkeypatch.setenv("AUTOML_TL_DECODE_WORKERS", "3")
    assert decode_workers() == 3
    for bad in ("two", "0", "-1"):
        monkeypatch.setenv("AUTOML_TL_DECODE_WORKERS", bad)
        with pytest.raises(ConfigError, match="AUTOML_TL_DECODE_WORKERS"):
            decode_workers()


def test_fine_tuning_batches_shrink_for_long_sequences():
    """Up to 128 tokens a batch is the batch size; longer sequences get fewer per batch, so a
    fine-tuning step's memory stays near that of 128 tokens (never below one item)."""
    from automl_tl.batching import train_batch_size

    assert [train_batch_size(32, {"sequence_length": n}) for n in (16, 64, 128)] == [32, 32, 32]
    sizes = [train_batch_size(32, {"sequence_length": n}) for n in (256, 384, 512, 4096)]
    assert sizes == sorted(sizes, reverse=True) and sizes[2] == 4 and sizes[-1] == 1
    assert train_batch_size(32, {"image_size": 224}) == 32 and train_batch_size(8, None) == 8
