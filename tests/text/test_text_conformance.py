"""Every text backbone passes the engine's conformance suite (random weights, real architecture)."""

from __future__ import annotations

from automl_tl.testing import BackboneTestCase

TEXTS = ["A gorgeous, witty, seductive movie.", "Dull and lifeless.", "", "caf\u00e9 \U0001F600 ok"]


class TestTextBackbones(BackboneTestCase):
    backbone_names = ("minilm-l6",)
    input_config = {"sequence_length": 32}

    def sample_items(self, tmp_path):
        return list(TEXTS)


class TestLargeTextBackbones(TestTextBackbones):
    """At their real depth (blocks, poolings, readouts and freezing follow it) and vocabulary, at tiny
    widths: what the checks read does not depend on the width (a real checkpoint is built from its
    own preset, not from these sizes), and four encoders of 33-125 M random parameters took a
    minute and a half to build."""

    backbone_names = ("distilbert-base-uncased", "minilm-l12", "bert-base-uncased", "roberta-base")
    input_config = {"sequence_length": 32, "architecture": {"hidden_dim": 16, "num_heads": 2, "intermediate_dim": 32}}



def _tiny(num_layers):
    """Tiny widths at the real depth (n_blocks is the real depth + 1)."""
    return {"sequence_length": 32,
            "architecture": {"num_layers": num_layers, "hidden_dim": 16, "num_heads": 2, "intermediate_dim": 32,
                             "vocabulary_size": 300, "max_sequence_length": 64}}


class TestTinyGPT2AndT5Backbones(BackboneTestCase):
    """GPT-2 and T5 encoders at tiny widths (the real architectures are 124 M / 35 M parameters;
    their sizes are checked against transformers in test_gpt2_t5.py): the architecture override is
    what the random build reads, the rest of the spec (blocks, poolings, readouts, adapter) is real."""

    backbone_names = ("gpt2", "t5-base-encoder")
    input_config = _tiny(12)

    def sample_items(self, tmp_path):
        return list(TEXTS)


class TestTinySixLayerGPT2AndT5Backbones(TestTinyGPT2AndT5Backbones):
    backbone_names = ("distilgpt2", "t5-small-encoder")
    input_config = _tiny(6)
