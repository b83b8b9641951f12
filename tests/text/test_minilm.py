"""The real all-MiniLM-L6-v2 from the installed package, through KerasHub."""

from __future__ import annotations

import json

import numpy as np
import pytest


@pytest.fixture(scope="module")
def minilm(minilm_spec, minilm_weights):
    cfg = {"sequence_length": 64}
    return (minilm_spec.build(minilm_weights, cfg, pooling="mean"),
            minilm_spec.make_adapter(cfg, minilm_weights), cfg)


def _reference_mean_embeddings(folder, token_ids, mask, *, layers: int = 1):
    """A sentence-transformers-style forward pass in numpy, straight from model.safetensors: the
    token means of the last ``layers`` transformer layers, concatenated bottom to top."""
    from safetensors.numpy import load_file
    from scipy.special import erf

    W = load_file(str(folder / "model.safetensors"))
    W = {k.removeprefix("bert."): v.astype(np.float64) for k, v in W.items()}
    config = json.loads((folder / "config.json").read_text())
    H, nh, eps = config["hidden_size"], config["num_attention_heads"], config["layer_norm_eps"]
    dh = H // nh

    def ln(x, p):
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + eps) * W[p + ".weight"] + W[p + ".bias"]

    def dense(x, p):
        return x @ W[p + ".weight"].T + W[p + ".bias"]

    B, L = token_ids.shape
    x = (W["embeddings.word_embeddings.weight"][token_ids]
         + W["embeddings.position_embeddings.weight"][np.arange(L)][None]
         + W["embeddings.token_type_embeddings.weight"][0])
    x = ln(x, "embeddings.LayerNorm")
    bias = (1.0 - mask[:, None, None, :]) * -1e9
    m = mask[..., None].astype(np.float64)
    means = []
    for i in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        q, k, v = (dense(x, p + f"attention.self.{n}").reshape(B, L, nh, dh).transpose(0, 2, 1, 3)
                   for n in ("query", "key", "value"))
        att = q @ k.transpose(0, 1, 3, 2) / np.sqrt(dh) + bias
        att = np.exp(att - att.max(-1, keepdims=True))
        att /= att.sum(-1, keepdims=True)
        ctx = (att @ v).transpose(0, 2, 1, 3).reshape(B, L, H)
        x = ln(x + dense(ctx, p + "attention.output.dense"), p + "attention.output.LayerNorm")
        h = dense(x, p + "intermediate.dense")
        h = 0.5 * h * (1.0 + erf(h / np.sqrt(2.0)))
        x = ln(x + dense(h, p + "output.dense"), p + "output.LayerNorm")
        means.append((x * m).sum(1) / m.sum(1))
    return np.concatenate(means[-layers:], axis=1)


def test_real_minilm_embeds_real_reviews(minilm, rt_texts):
    model, adapter, _ = minilm
    texts = rt_texts[0][:8]
    x = adapter(texts)
    assert set(x) == {"token_ids", "padding_mask", "segment_ids"}
    f = np.asarray(model(x, training=False))
    assert f.shape == (8, 384) and np.isfinite(f).all()
    assert np.linalg.norm(f, axis=1).min() > 0.1


def test_matches_numpy_reference(minilm, minilm_folder, rt_texts):
    model, adapter, _ = minilm
    texts = rt_texts[0][:4]
    x = adapter(texts)
    ours = np.asarray(model(x, training=False), dtype=np.float64)
    ref = _reference_mean_embeddings(minilm_folder, x["token_ids"], x["padding_mask"])
    cos = (ours * ref).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(ref, axis=1)
    assert cos.min() > 0.9999, cos
    np.testing.assert_allclose(ours, ref, atol=2e-3)


def test_mean_of_the_last_three_layers_matches_numpy_reference(minilm_spec, minilm_weights, minilm,
                                                               minilm_folder, rt_texts):
    _, adapter, cfg = minilm
    model = minilm_spec.build(minilm_weights, cfg, pooling="mean_last3")
    x = adapter(rt_texts[0][:4])
    ours = np.asarray(model(x, training=False), dtype=np.float64)
    assert ours.shape == (4, 3 * 384)
    ref = _reference_mean_embeddings(minilm_folder, x["token_ids"], x["padding_mask"], layers=3)
    np.testing.assert_allclose(ours, ref, atol=2e-3)
    # a different readout of the same encoder: its last third is the plain mean pooling
    np.testing.assert_allclose(ours[:, -384:], np.asarray(minilm[0](x, training=False)), atol=1e-5)


def test_sentence_similarity_is_meaningful(minilm):
    model, adapter, _ = minilm
    texts = ["A wonderful, moving film with superb acting.",
             "A beautiful and touching movie, brilliantly performed.",
             "The quarterly tax filing deadline is next Tuesday."]
    f = np.array(model(adapter(texts), training=False))
    f = f / np.linalg.norm(f, axis=1, keepdims=True)
    assert f[0] @ f[1] > f[0] @ f[2] + 0.3


def test_tokenizer_matches_keras_hub(minilm, minilm_folder):
    import keras_hub

    _, adapter, _ = minilm
    kh = keras_hub.models.BertTokenizer.from_preset(str(minilm_folder))
    text = "Doesn't get the job done, running off the limited chemistry!"
    ids = adapter([text])["token_ids"][0]
    n = adapter([text])["padding_mask"][0].sum()
    expected = [kh.cls_token_id] + list(np.asarray(kh(text))) + [kh.sep_token_id]
    assert list(ids[:n]) == expected


def test_real_adapter_assets_round_trip(minilm_spec, minilm, tmp_path, rt_texts):
    _, adapter, cfg = minilm
    adapter.save_assets(str(tmp_path))
    assert (tmp_path / "tokenizer.json").is_file()
    conf = json.loads((tmp_path / "text_adapter.json").read_text())
    again = minilm_spec.make_adapter(conf["input_config"], None, assets_dir=str(tmp_path))
    texts = rt_texts[0][:50] + ["Caf\u00e9 \u00e0 la cr\u00e8me \u2014 \U0001F600", ""]
    a, b = adapter(texts), again(texts)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
