"""The hidden-layer head's compiled training (automl_tl.heads): one trainer serves every head of
one shape, and a head trained by a reused trainer is the head a fresh one would train."""

import numpy as np
import pytest


def _data(n=150, d=40, seed=0):
    rng = np.random.default_rng(seed)
    x = (rng.normal(size=(n, d)) + 2).astype(np.float32)
    return x, (x[:, 0] > 2).astype(int) + (x[:, 1] > 2.5)


def _head(x, seed):
    import keras

    from automl_tl.heads import build_head

    keras.utils.set_random_seed(seed)
    return build_head(x.shape[1], 3, 32, 0.3, seed=seed, x_train=x[:120])


def _fit(head, x, y, *, lr, seed, val=True):
    from automl_tl.heads import fit_head

    score = (x[120:], lambda p: float((p.argmax(1) == y[120:]).mean())) if val else None
    out = fit_head(head, x[:120], y[:120], epochs=12, lr=lr, class_weight={0: 1.0, 1: 2.0, 2: 1.0}, val=score,
                   patience=4, seed=seed)
    return out, [v.numpy() for v in head.variables]  # the dropout seeds' state included


def _train(x, y, *, lr, seed, val=True):
    return _fit(_head(x, seed), x, y, lr=lr, seed=seed, val=val)


def test_a_reused_trainer_trains_the_head_a_fresh_one_would():
    import keras

    from automl_tl import heads

    if keras.backend.backend() != "tensorflow":
        pytest.skip("the compiled trainer is TensorFlow's")
    x, y = _data()
    heads._TRAINER.clear()
    fresh = _train(x, y, lr=3e-3, seed=1)
    trainer = next(iter(heads._TRAINER.values()))
    _train(*_data(seed=5), lr=1e-2, seed=7, val=False)  # another fit of the same shape moves its state
    assert next(iter(heads._TRAINER.values())) is trainer  # reused: traced once
    again = _train(x, y, lr=3e-3, seed=1)
    assert again[0] == fresh[0] and fresh[0][1] >= 1
    for a, b in zip(fresh[1], again[1]):
        np.testing.assert_array_equal(a, b)
    # the head learned: the validation score of its best epoch
    assert fresh[0][0] > 0.5


def test_heads_of_one_shape_trained_in_two_threads_are_each_their_own():
    """Two fits of one shape in two threads at once (two searches in one process) share a
    trainer: each gets the head it would get alone, never a mix of the two."""
    import threading

    import keras

    if keras.backend.backend() != "tensorflow":
        pytest.skip("the compiled trainer is TensorFlow's")
    jobs = [(_data(), 3e-3, 1), (_data(seed=5), 1e-2, 7)]
    alone = [_train(x, y, lr=lr, seed=seed) for (x, y), lr, seed in jobs]
    heads = [_head(x, seed) for (x, _), _, seed in jobs]  # built here: Keras' global seed is one for all threads
    together: list = [None, None]

    def run(i):
        (x, y), lr, seed = jobs[i]
        together[i] = _fit(heads[i], x, y, lr=lr, seed=seed)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for a, b in zip(alone, together):
        assert a[0] == b[0]
        for p, q in zip(a[1], b[1]):
            np.testing.assert_array_equal(p, q)
