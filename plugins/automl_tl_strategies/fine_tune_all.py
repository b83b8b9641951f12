"""Fine-tune everything: classic full fine-tuning."""

from __future__ import annotations

from automl_tl.strategies import FineTuning


class FineTuneAll(FineTuning):
    """Every block and a freshly initialised head trained together from the first step, at one
    learning rate (the usual "fine-tune BERT" recipe). The baseline LP-FT and layer-wise decay
    are measured against: with a random head, the first steps' large gradients reach the
    pretrained features (Kumar et al. 2022)."""

    name = "fine_tune_all"
    description = "every block and a fresh head trained together at one learning rate"
    head_start = False
