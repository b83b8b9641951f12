"""Token ids cached per (tokenizer, sequence length) and batches padded to a few fixed lengths
(issue 33, item 4): the adapter's output is what a fresh tokenisation gives, a corpus of many
lengths gives at most as many padded lengths as there are buckets, the padding does not move
MiniLM's mean-pooled features, and a jitted forward on JAX is traced once per bucket only."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from automl_tl.batching import batch_order, map_batches


def _fresh(folder, texts, seq):
    """What the adapter must give, from a tokenizer of its own (no cache): ids truncated to
    ``seq``, each batch padded to the first pad length holding its longest text."""
    from automl_tl_text._tokenize import clean_text, load_tokenizer, padded_length, special_ids

    tok = load_tokenizer(folder)
    tok.no_padding()
    tok.enable_truncation(max_length=seq)
    ids = [e.ids[:seq] for e in tok.encode_batch([clean_text(t) for t in texts])]
    L = padded_length(max(len(i) for i in ids), seq)
    out = np.full((len(ids), L), special_ids(tok)["pad"], dtype=np.int32)
    for r, i in enumerate(ids):
        out[r, :len(i)] = i
    return out, (np.arange(L) < np.array([len(i) for i in ids])[:, None]).astype(np.int32)


def test_cached_ids_equal_fresh_tokenisation(minilm_spec, minilm_weights, minilm_folder, rt_texts):
    from automl_tl_text._tokenize import clean_text

    texts = rt_texts[0][:96] + ["", None, float("nan"), "word " * 300]  # empty, missing, truncated
    seq = 32
    first = minilm_spec.make_adapter({"sequence_length": seq}, minilm_weights, None)
    table = first._ids_table
    batches = [idx for idx in batch_order(texts, first, 16)]
    got_first = [first([texts[i] for i in idx]) for idx in batches]
    # every text now in the process-wide cache, which the next pass's adapter (a new one) reads
    assert all(clean_text(t) in table for t in texts)
    second = minilm_spec.make_adapter({"sequence_length": seq}, minilm_weights, None)
    assert second._ids_table is table
    assert minilm_spec.make_adapter({"sequence_length": 64}, minilm_weights, None)._ids_table is not table
    for idx, a in zip(batches, got_first):
        want_ids, want_mask = _fresh(minilm_folder, [texts[i] for i in idx], seq)
        b = second([texts[i] for i in idx])
        for out in (a, b):
            np.testing.assert_array_equal(out["token_ids"], want_ids)
            np.testing.assert_array_equal(out["padding_mask"], want_mask)
            np.testing.assert_array_equal(out["segment_ids"], np.zeros_like(want_ids))
    # length() reads the same ids: the padded length of a text alone
    lengths = second.lengths(texts)
    for t, n in zip(texts, lengths):
        assert second([t])["padding_mask"].sum() == n


def test_padded_lengths_at_most_the_buckets(minilm_spec, minilm_weights, rt_texts):
    from automl_tl_text._tokenize import PAD_LENGTHS

    seq = 128
    rng = np.random.default_rng(0)
    words = " ".join(rt_texts[0]).split()
    # many lengths: the review snippets and texts of 1 to 200 words
    texts = rt_texts[0] + [" ".join(rng.choice(words, size=n)) for n in range(1, 200, 3)]
    adapter = minilm_spec.make_adapter({"sequence_length": seq}, minilm_weights, None)
    lengths = adapter.lengths(texts)
    shapes = set()
    for idx in batch_order(texts, adapter, 16):
        out = adapter([texts[i] for i in idx])
        shapes.add(out["token_ids"].shape[1])
        assert out["padding_mask"].sum(1).max() == lengths[idx].max()
    buckets = [p for p in PAD_LENGTHS if p <= seq]
    assert len(set(np.minimum(lengths, seq))) > len(buckets)  # unbucketed, more shapes than buckets
    assert shapes <= set(buckets) and len(shapes) <= len(buckets), shapes
    # evaluation batches go in token order: a batch holds neighbouring lengths
    order = np.concatenate(batch_order(texts, adapter, 16))
    assert (np.diff(lengths[order]) >= 0).all()


def test_bucketed_features_equal_unbucketed(minilm_spec, minilm_weights, rt_texts):
    """MiniLM, mean pooling: a batch padded to its bucket, to its own longest text and to the
    full sequence length gives the same features (the mask hides the padding)."""
    seq = 128
    adapter = minilm_spec.make_adapter({"sequence_length": seq}, minilm_weights, None)
    model = minilm_spec.build(minilm_weights, {"sequence_length": seq}, pooling="mean")
    texts = rt_texts[0][:48]
    checked = 0
    for idx in batch_order(texts, adapter, 16):
        x = adapter([texts[i] for i in idx])
        longest = int(x["padding_mask"].sum(1).max())
        got = np.asarray(model.predict_on_batch(x))
        for L in {longest, seq} - {x["token_ids"].shape[1]}:
            if L < x["token_ids"].shape[1]:
                other = {k: v[:, :L] for k, v in x.items()}
            else:
                other = {k: np.pad(v, ((0, 0), (0, L - v.shape[1])), constant_values=0 if k != "token_ids"
                                   else adapter.pad_id) for k, v in x.items()}
            np.testing.assert_allclose(got, np.asarray(model.predict_on_batch(other)), atol=1e-5, rtol=0)
            checked += 1
    assert checked >= 3


JAX_TRACES = """
import json, sys
import jax, keras, numpy as np
from automl_tl.batching import map_batches
from automl_tl.plugin_manager import PluginManager
from automl_tl_text._tokenize import PAD_LENGTHS

cfg = json.loads(sys.argv[1])
spec = PluginManager(autoload=False).backbones.get("minilm-l6")
adapter = spec.make_adapter(cfg, None, None)  # the fallback tokenizer, random weights
model = spec.build(None, cfg, pooling="mean")
traces = []

def forward(tv, ntv, x):
    traces.append(x["token_ids"].shape)  # Python runs only while jax traces
    return model.stateless_call(tv, ntv, x, training=False)[0]

fn = jax.jit(forward)
tv = [v.value for v in model.trainable_variables]
ntv = [v.value for v in model.non_trainable_variables]
rng = np.random.default_rng(0)
letters = list("abcdefghijklmnopqrstuvwxyz")
texts = [" ".join(rng.choice(letters, size=n)) for n in list(range(1, 80)) * 2]
feats = map_batches(lambda b: np.asarray(fn(tv, ntv, b)), texts, adapter, 8)
lengths = sorted(set(int(n) for n in adapter.lengths(texts)))
print(json.dumps({"traces": [list(t) for t in traces], "lengths": lengths, "finite": bool(np.isfinite(feats).all()),
                  "rows": len(feats), "buckets": [p for p in PAD_LENGTHS if p <= cfg["sequence_length"]],
                  "backend": keras.backend.backend()}))
"""


def test_jax_traces_once_per_bucket(tiny_config):
    pytest.importorskip("jax")
    import json

    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    out = subprocess.run([sys.executable, "-c", JAX_TRACES, json.dumps(tiny_config | {"sequence_length": 64})],
                         env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["backend"] == "jax" and res["finite"] and res["rows"] == 158
    assert len(res["lengths"]) > len(res["buckets"])  # without buckets: one trace per length
    # one trace per bucket used, every batch the same number of rows (map_batches pads the last)
    assert len(res["traces"]) <= len(res["buckets"]), res["traces"]
    assert {t[1] for t in res["traces"]} <= set(res["buckets"]) and {t[0] for t in res["traces"]} == {8}
