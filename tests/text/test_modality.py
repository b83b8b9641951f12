"""The text modality: skips, statistics, similarity, sequence length."""

from __future__ import annotations

import random
import string

import pytest

from automl_tl.modalities import CheckResult


@pytest.fixture(scope="module")
def modality(pm):
    return pm.modalities.get("text")


def test_check_counts_every_bad_input(modality):
    bad_utf8 = b"caf\xe9 au lait".decode("utf-8", "surrogateescape")   # latin-1 byte, read as UTF-8
    items = ["A fine film.", None, float("nan"), "", "   \n\t", bad_utf8, "Dull.", 42,
             b"\xff\xfe bytes", "x" * 30_000]
    res = modality.check(items)
    assert isinstance(res, CheckResult)
    assert res.keep == (0, 6, 7, 9)
    assert res.items[:3] == ("A fine film.", "Dull.", "42")
    assert len(res.items[3]) == 20_000          # extremely long text cut, kept
    reasons = [s.reason for s in res.skips]
    assert len(res.skips) == 6
    assert sum("missing" in r for r in reasons) == 2
    assert "empty text" in reasons and "whitespace-only text" in reasons
    assert sum("UTF-8" in r for r in reasons) == 2
    # skip descriptions are printable (no lone surrogates leak into reports)
    for s in res.skips:
        s.item.encode("utf-8")


def test_check_all_good_and_empty(modality):
    assert modality.check([]).keep == ()
    res = modality.check(["a", "b"])
    assert res.keep == (0, 1) and not res.skips


def test_describe(modality, rt_texts):
    texts, _ = rt_texts
    d = modality.describe(texts + ["", None, "y" * 25_000])
    assert d["n"] == len(texts) + 3
    assert d["n_empty"] == 1 and d["n_missing"] == 1 and d["n_over_max_chars"] == 1
    assert 10 < d["words"]["p50"] < 40
    assert d["chars"]["max"] == 25_000
    import json

    json.dumps(d)


def _gibberish(n, seed=0):
    rng = random.Random(seed)
    return [" ".join("".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(3, 9)))
                     for _ in range(rng.randint(5, 20))) for _ in range(n)]


def test_similarity_real_english_above_gibberish(modality, minilm_spec, minilm_weights, rt_texts):
    texts, _ = rt_texts
    real = modality.analyse(texts, modality.describe(texts), minilm_spec, minilm_weights)
    noise = _gibberish(200)
    fake = modality.analyse(noise, modality.describe(noise), minilm_spec, minilm_weights)
    assert 0.0 <= fake["similarity"] < modality.similarity_threshold <= real["similarity"] <= 1.0
    assert fake["similarity"] < 0.2 and real["similarity"] > 0.8
    # another language and code sit below the threshold too
    german = ["Mir hat dieser Film nicht gefallen: zu lang, langweilig und vorhersehbar.",
              "Die Dialoge klingen falsch und die Handlung verliert schnell an Fahrt."] * 5
    de = modality.analyse(german, {}, minilm_spec, minilm_weights)
    assert de["similarity"] < modality.similarity_threshold
    assert modality.similarity_method and "fragment" in modality.similarity_method


def test_analyse_sequence_length_and_truncation(modality, minilm_spec, minilm_weights, rt_texts):
    texts, _ = rt_texts
    out = modality.analyse(texts, {}, minilm_spec, minilm_weights)
    stats = out["stats"]
    seq = out["input_config"]["sequence_length"]
    assert seq in (32, 64, 128)
    share = stats["truncated_share"]
    assert set(share) == {32, 64, 128, 256, 512}
    assert share[seq] <= 0.05
    smaller = [L for L in share if L < seq]
    assert all(share[L] > 0.05 for L in smaller)
    assert stats["token_length_percentiles"]["p95"] <= seq
    # long texts: 512 is the cap, and their truncation is counted
    long = [" ".join(["word"] * 900)] * 10
    out = modality.analyse(long, {}, minilm_spec, minilm_weights)
    assert out["input_config"]["sequence_length"] == 512
    assert out["stats"]["truncated_share"][512] == 1.0
    assert out["stats"]["n_truncated_at_chosen"] == 10
    import json

    json.dumps(out)


def test_analyse_without_weights_uses_fallback(modality, pm):
    spec = pm.backbones.get("roberta-base")
    out = modality.analyse(["some words here", "and more words"], {}, spec, None)
    assert 0.0 <= out["similarity"] <= 1.0 and out["stats"]["tokenizer"] == "fallback"
