"""GPT-2 and T5-encoder backbones vs transformers (PyTorch) on tiny random checkpoints.

Every parameter of the reference model is perturbed (layer norms, biases, the relative attention
bias included) so a swapped or mis-transposed weight shows; the checkpoint is saved with
``save_pretrained`` (safetensors) next to a tokenizer trained here, and loaded through the
backbone's own weight path (``--weights NAME=folder``). The readouts of a padded batch of texts of
different lengths must equal the pooled ``last_hidden_state`` of each text run alone, unpadded.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from automl_tl.testing import require_module
from text_helpers import REVIEWS, perturb, to_numpy

torch = require_module("torch", "bash scripts/setup.sh --test installs it")
transformers = require_module("transformers")

TOL = 1e-4
CORPUS = [*REVIEWS, "caf\u00e9 society, r\u00e9sum\u00e9s and na\u00efve heroes", "I laughed; I cried; I went home."] * 4
TEXTS = ["A gorgeous, witty, seductive movie.", "Dull.", "Nothing new here: the same old jokes and "
         "the same tired plot, sadly.", "caf\u00e9 ok", ""]


def _gpt2_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=320, special_tokens=["<|endoftext|>"], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS, trainer)
    return tok


def _t5_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.Unigram())
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    trainer = trainers.UnigramTrainer(vocab_size=300, special_tokens=["<pad>", "</s>", "<unk>"],
                                      unk_token="<unk>", show_progress=False)
    tok.train_from_iterator(CORPUS, trainer)
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return tok


@pytest.fixture(scope="module")
def gpt2_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gpt2")
    tok = _gpt2_tokenizer()
    tok.save(str(folder / "tokenizer.json"))
    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=tok.get_vocab_size(), n_positions=64, n_embd=32, n_layer=2,
                                     n_head=4, bos_token_id=0, eos_token_id=0)
    model = perturb(transformers.GPT2Model(config))
    model.save_pretrained(folder)
    return folder, model


@pytest.fixture(scope="module", params=["relu", "gated-gelu"])
def t5_folder(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp("t5")
    tok = _t5_tokenizer()
    tok.save(str(folder / "tokenizer.json"))
    torch.manual_seed(0)
    # 8 buckets, max distance 12: texts of ~20 tokens reach the log-spaced and the last buckets
    config = transformers.T5Config(vocab_size=tok.get_vocab_size(), d_model=32, d_kv=8, d_ff=48, num_layers=2,
                                   num_heads=4, feed_forward_proj=request.param,
                                   relative_attention_num_buckets=8, relative_attention_max_distance=12)
    model = perturb(transformers.T5EncoderModel(config))
    model.save_pretrained(folder)
    return folder, model


@pytest.fixture(scope="module")
def pm():
    from automl_tl.plugin_manager import PluginManager

    return PluginManager(autoload=False)


def _reference(hf, batch):
    """Per text, unpadded: (mean of the last hidden state, last token's state)."""
    means, lasts = [], []
    for ids, mask in zip(batch["token_ids"], batch["padding_mask"]):
        real = ids[mask == 1]
        assert mask[: len(real)].all() and not mask[len(real):].any()     # padded on the right
        with torch.no_grad():
            h = hf(torch.tensor(real[None], dtype=torch.long)).last_hidden_state[0].numpy()
        means.append(h.mean(0))
        lasts.append(h[-1])
    return np.stack(means), np.stack(lasts)


def _loaded(spec, folder):
    weights = spec.resolve_weights(overrides={spec.name: str(folder)})
    assert weights.kind == "user" and weights.converted
    cfg = {"sequence_length": 64}
    return weights, cfg, spec.make_adapter(cfg, weights)


def _batch(spec, folder):
    """The adapter's padded batch of TEXTS, checked: the checkpoint's own tokenizer (the ids
    transformers' tokenizer gives), every text a different length (so padding matters)."""
    weights, cfg, adapter = _loaded(spec, folder)
    batch = adapter(TEXTS)
    lengths = batch["padding_mask"].sum(1)
    assert len(set(lengths.tolist())) == len(TEXTS) and lengths.min() >= 1
    fast = transformers.PreTrainedTokenizerFast(tokenizer_file=str(folder / "tokenizer.json"))
    expected = [fast(text)["input_ids"] or [0] for text in TEXTS]       # GPT-2: "" -> <|endoftext|> (0)
    assert [ids[:n].tolist() for ids, n in zip(batch["token_ids"], lengths)] == expected
    return weights, cfg, batch


def test_gpt2_parity_through_spec(pm, gpt2_folder):
    folder, hf = gpt2_folder
    spec = pm.backbones.get("gpt2")
    weights, cfg, batch = _batch(spec, folder)
    ref_mean, ref_last = _reference(hf, batch)
    model = spec.readouts(weights, cfg, [{"pooling": "mean"}, {"pooling": "last"}])
    mean, last = (to_numpy(o) for o in model(batch, training=False))
    diffs = {"mean": np.abs(mean - ref_mean).max(), "last": np.abs(last - ref_last).max()}
    print(f"gpt2 parity max |diff|: {diffs}")
    assert max(diffs.values()) < TOL, diffs
    assert np.abs(ref_last - ref_mean).max() > 0.1                 # the two readouts differ
    single_model = spec.build(weights, cfg, pooling="last")
    np.testing.assert_allclose(to_numpy(single_model(batch, training=False)), last, atol=1e-5)
    from automl_tl_text._backbones import n_params

    arch = {"vocabulary_size": hf.config.vocab_size, "num_layers": 2, "hidden_dim": 32, "intermediate_dim": 128,
            "max_sequence_length": 64}
    assert single_model.count_params() == hf.num_parameters() == n_params("gpt2", arch)
    # padded positions never leak: garbage ids under the padding give the same readouts
    noisy = dict(batch)
    noisy["token_ids"] = np.where(batch["padding_mask"] == 1, batch["token_ids"],
                                  np.random.default_rng(0).integers(0, hf.config.vocab_size, batch["token_ids"].shape)).astype("int32")
    for a, b in zip(model(noisy, training=False), (mean, last)):
        np.testing.assert_allclose(to_numpy(a), b, atol=1e-5)


def test_t5_parity_through_spec(pm, t5_folder):
    folder, hf = t5_folder
    spec = pm.backbones.get("t5-small-encoder")
    weights, cfg, batch = _batch(spec, folder)
    lengths = batch["padding_mask"].sum(1)
    assert lengths.max() > 12                                 # past max_distance: the log buckets
    assert (batch["token_ids"][np.arange(len(TEXTS)), lengths - 1] == 1).all()      # ends with </s>
    ref_mean, _ = _reference(hf, batch)
    assert spec.readouts is None and spec.options == {"pooling": ("mean",)}   # one readout: no shared pass
    mean = spec.build(weights, cfg)(batch, training=False)
    diff = np.abs(to_numpy(mean) - ref_mean).max()
    print(f"t5 ({hf.config.feed_forward_proj}) parity max |diff|: {diff:.2e}")
    assert diff < TOL


def test_t5_sequence_parity_and_param_count(t5_folder):
    """Every token's state (not only the mean), and the encoder's parameter count, equal HF's."""
    from automl_tl_text._t5_arch import t5_arch, t5_n_params
    from automl_tl_text._t5 import build_t5_encoder, load_t5_weights

    folder, hf = t5_folder
    arch = t5_arch(json.loads((folder / "config.json").read_text()))
    model = build_t5_encoder(arch)
    load_t5_weights(model, folder)
    assert model.count_params() == t5_n_params(arch) == hf.num_parameters()
    ids = np.random.default_rng(3).integers(3, arch["vocabulary_size"], (1, 30)).astype("int32")
    out = to_numpy(model({"token_ids": ids, "padding_mask": np.ones_like(ids)}, training=False))
    with torch.no_grad():
        ref = hf(torch.tensor(ids, dtype=torch.long)).last_hidden_state.numpy()
    assert np.abs(out - ref).max() < TOL


def test_real_sizes_match_transformers(pm):
    """n_params of the registered architectures equal transformers' counts for the same configs."""
    with torch.device("meta"):   # no memory, no init: only the shapes are counted
        gpt2 = transformers.GPT2Model(transformers.GPT2Config())
        t5 = transformers.T5EncoderModel(transformers.T5Config())          # = t5-small
        t5b = transformers.T5EncoderModel(transformers.T5Config(d_model=768, d_ff=3072, num_layers=12,
                                                                num_heads=12))
        distil = transformers.GPT2Model(transformers.GPT2Config(n_layer=6))
    got = {n: pm.backbones.get(n).n_params for n in ("gpt2", "distilgpt2", "t5-small-encoder", "t5-base-encoder")}
    assert got == {"gpt2": gpt2.num_parameters(), "distilgpt2": distil.num_parameters(),
                   "t5-small-encoder": t5.num_parameters(), "t5-base-encoder": t5b.num_parameters()}
    assert pm.backbones.get("gpt2").n_blocks == 13 and pm.backbones.get("t5-small-encoder").n_blocks == 7
    for name, hub in (("gpt2", "openai-community/gpt2"), ("distilgpt2", "distilbert/distilgpt2"),
                      ("t5-small-encoder", "google-t5/t5-small"), ("t5-base-encoder", "google-t5/t5-base")):
        spec = pm.backbones.get(name)
        assert spec.plugin == "automl_tl_text" and spec.fine_tunable and spec.modality == "text"
        assert spec.options == {"pooling": ("mean", "last") if "gpt2" in name else ("mean",)}
        assert [s.kind for s in spec.weight_sources] == ["user", "download"]
        assert spec.weight_sources[-1].location == f"hf://{hub}"
        assert all(s.converted for s in spec.weight_sources)


@pytest.mark.parametrize("name,extra", [("gpt2", ["layer_norm"]), ("t5-small-encoder", ["final_layer_norm"])])
def test_blocks_top_n_holds_the_final_norm(pm, name, extra):
    from automl_tl.testing import registered_strategies
    from automl_tl.training import freeze

    spec = pm.backbones.get(name)
    cfg = {"sequence_length": 16, "architecture": {"num_layers": 3, "hidden_dim": 16, "num_heads": 2,
                                                   "intermediate_dim": 32, "vocabulary_size": 300,
                                                   "max_sequence_length": 64}}
    model = spec.build(None, cfg)
    blocks = spec.blocks(model)
    assert len(blocks) == 4
    assert [l.name for l in blocks[-1]] == ["transformer_layer_2", *extra]
    if name.startswith("t5"):
        assert [l.name for l in blocks[1]] == ["transformer_layer_0", "relative_attention_bias"]
    ids = [id(v) for b in blocks for l in b for v in l.weights]
    assert len(ids) == len(set(ids)) == len(model.weights)
    freeze(model, spec, "fine_tune_top", 1, strategies=registered_strategies())
    assert {id(v) for v in model.trainable_weights} == {id(v) for l in blocks[-1] for v in l.weights}


def test_saved_model_predicts_from_raw_text(pm, gpt2_folder, t5_folder, tmp_path):
    """A fine-tune-shaped model (backbone + head) saved as .keras and reloaded with the adapter's
    assets gives the same outputs from raw text (custom layers serialise)."""
    import keras

    for name, (folder, _), pooling in (("gpt2", gpt2_folder, "last"), ("t5-small-encoder", t5_folder, "mean")):
        spec = pm.backbones.get(name)
        weights, cfg, adapter = _loaded(spec, folder)
        backbone = spec.build(weights, cfg, pooling=pooling)
        inputs = {k: keras.Input(shape=(None,), dtype="int32", name=k) for k in backbone.input}
        model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(backbone(inputs)))
        path = tmp_path / f"{name}.keras"
        model.save(path)
        assets = tmp_path / f"assets-{name}"
        adapter.save_assets(str(assets))
        again = spec.make_adapter(json.loads(json.dumps(adapter.config()))["input_config"], None,
                                  assets_dir=str(assets))
        loaded = keras.saving.load_model(path)
        np.testing.assert_allclose(to_numpy(loaded(again(TEXTS))), to_numpy(model(adapter(TEXTS))), atol=1e-6)
        inner = next(l for l in loaded.layers if isinstance(l, keras.Model))
        np.testing.assert_allclose(to_numpy(inner(again(TEXTS))), to_numpy(backbone(adapter(TEXTS))),
                                   atol=1e-6)


def test_folder_checks_name_what_is_wrong(pm, gpt2_folder, t5_folder, tmp_path):
    import shutil

    from automl_tl.errors import WeightsUnavailableError

    t5_dir = tmp_path / "t5"
    shutil.copytree(t5_folder[0], t5_dir)
    (t5_dir / "tokenizer.json").unlink()
    with pytest.raises(WeightsUnavailableError, match="spiece.model"):
        pm.backbones.get("t5-small-encoder").resolve_weights({"t5-small-encoder": str(t5_dir)})
    gpt_dir = tmp_path / "gpt"
    shutil.copytree(gpt2_folder[0], gpt_dir)
    (gpt_dir / "tokenizer.json").unlink()
    (gpt_dir / "vocab.txt").write_text("[PAD]\n[UNK]\n")          # a BERT vocabulary is no GPT-2 tokenizer
    with pytest.raises(WeightsUnavailableError, match="vocab.json \\+ merges.txt"):
        pm.backbones.get("gpt2").resolve_weights({"gpt2": str(gpt_dir)})
    with pytest.raises(WeightsUnavailableError, match="model_type 'gpt2'.*t5"):
        pm.backbones.get("t5-small-encoder").resolve_weights({"t5-small-encoder": str(gpt2_folder[0])})
    cfg = json.loads((gpt_dir / "config.json").read_text())
    (gpt_dir / "config.json").write_text(json.dumps({**cfg, "activation_function": "relu"}))
    shutil.copy(gpt2_folder[0] / "tokenizer.json", gpt_dir)
    with pytest.raises(WeightsUnavailableError, match="activation_function"):
        pm.backbones.get("gpt2").resolve_weights({"gpt2": str(gpt_dir)})
    from automl_tl.errors import ConfigError

    with pytest.raises(ConfigError, match="pooling"):
        pm.backbones.get("t5-small-encoder").build(None, {}, pooling="last")
    with pytest.raises(ConfigError, match="pooling option only"):
        pm.backbones.get("gpt2").readouts(None, {}, [{"pooling": "last", "layers": 2}])


def test_gpt2_vocab_merges_and_t5_spiece_folders(pm, gpt2_folder, tmp_path):
    """The other tokenizer layouts: GPT-2's vocab.json + merges.txt (no special tokens added), and
    T5's spiece.model (converted as transformers does, '</s>' appended)."""
    spm = require_module("sentencepiece")
    from automl_tl_text._tokenize import load_tokenizer

    folder, _ = gpt2_folder
    bpe = tmp_path / "bpe"
    bpe.mkdir()
    tok = _gpt2_tokenizer()
    tok.model.save(str(bpe))          # vocab.json + merges.txt
    text = "A gorgeous, witty movie."
    assert load_tokenizer(bpe).encode(text).ids == load_tokenizer(folder).encode(text).ids

    sp = tmp_path / "sp"
    sp.mkdir()
    (tmp_path / "corpus.txt").write_text("\n".join(CORPUS))
    spm.SentencePieceTrainer.train(input=str(tmp_path / "corpus.txt"), model_prefix=str(sp / "spiece"),
                                   vocab_size=60, model_type="unigram", pad_id=0, eos_id=1, unk_id=2,
                                   bos_id=-1, hard_vocab_limit=False, minloglevel=2)
    (sp / "spiece.vocab").unlink()
    (sp / "config.json").write_text(json.dumps({"model_type": "t5"}))
    ids = load_tokenizer(sp).encode(text).ids
    ref = spm.SentencePieceProcessor(model_file=str(sp / "spiece.model")).encode(text)
    assert ids == ref + [1]
