"""Every text backbone passes the engine's conformance suite (random weights, real architecture)."""

from __future__ import annotations

import pytest

from automl_tl.testing import BackboneTestCase

TEXTS = ["A gorgeous, witty, seductive movie.", "Dull and lifeless.", "", "caf\u00e9 \U0001F600 ok"]


class TestTextBackbones(BackboneTestCase):
    backbone_names = ("minilm-l6", "distilbert-base-uncased")
    input_config = {"sequence_length": 32}

    def sample_items(self, tmp_path):
        return list(TEXTS)


@pytest.mark.slow
class TestLargeTextBackbones(TestTextBackbones):
    backbone_names = ("minilm-l12", "bert-base-uncased", "roberta-base")
