"""LP-FT: linear probe, then fine-tuning (Kumar et al., "Fine-Tuning can Distort Pretrained
Features and Underperform Out-of-Distribution", ICLR 2022)."""

from __future__ import annotations

from automl_tl.strategies import FineTuning


class LinearProbeThenFineTune(FineTuning):
    """The head is the linear probe (logistic regression trained to convergence on frozen
    features), then every block fine-tunes from it. A head that already fits sends small
    gradients into the backbone, so the pretrained features are adapted, not distorted."""

    name = "lp_ft"
    description = "linear probe to convergence, then every block fine-tuned from it"
    hidden_heads = False
