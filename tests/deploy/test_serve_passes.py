"""The server's forward passes go through the compiled forward (automl_tl.forward) and are
compiled by the warm-up: on TensorFlow one trace serves every batch size; on JAX passes are padded to a
few batch sizes, each compiled before the first request; outputs equal ``predict_on_batch``'s."""

from __future__ import annotations

import json
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

from automl_tl.serve._passes import bucket, buckets

SCRIPT = r"""
import json
from types import SimpleNamespace
import keras, numpy as np
from automl_tl.batching import predict_proba_items
from automl_tl.forward import compiled_forward
from automl_tl.serve._passes import buckets, forward_pass, warm_up

keras.utils.set_random_seed(0)
inputs = keras.Input((6,))  # functional, as a saved run's model: its input is known to the warm-up
model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(keras.layers.Dense(8, activation="relu")(inputs)))
rows = np.random.default_rng(0).normal(size=(40, 6)).astype("float32")
stack = lambda items: np.stack(items)
predictor = SimpleNamespace(model=model, members=[],
                            predict_proba=lambda items, batch_size: predict_proba_items(model, stack, items, batch_size))
warm_up(predictor, 16)
fwd = compiled_forward(model)
warmed = fwd.traces
run = forward_pass(predictor, 16)
diffs = [float(np.abs(run(list(rows[:n])) - model.predict_on_batch(rows[:n])).max()) for n in (1, 3, 5, 9, 16, 23, 40)]
print(json.dumps({"backend": keras.backend.backend(), "warmed": warmed, "after": fwd.traces,
                  "buckets": buckets(16), "diff": max(diffs)}))
"""


def _run(env=None) -> dict:
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_buckets():
    assert [bucket(n, 64) for n in (1, 2, 3, 5, 33, 64, 65, 200)] == [1, 2, 4, 8, 64, 64, 65, 200]
    assert buckets(64) == [1, 2, 4, 8, 16, 32, 64] and buckets(48) == [1, 2, 4, 8, 16, 32, 48]


def test_passes_on_tensorflow_are_compiled_by_the_warm_up():
    res = _run()
    assert res["backend"] == "tensorflow" and res["diff"] < 1e-5
    # one trace, the batch dimension unknown, serves every batch size (a sequence's length would
    # take a second, relaxed one: the warm-up's second shape)
    assert res["warmed"] == 1 and res["after"] == 1


def test_passes_on_jax_are_padded_to_buckets_compiled_by_the_warm_up(jax_without_tensorflow):
    pytest.importorskip("jax")
    res = _run(jax_without_tensorflow)
    assert res["backend"] == "jax" and res["diff"] < 1e-5
    assert res["warmed"] == len(res["buckets"]) == 5 and res["after"] == res["warmed"]  # no compile while serving
