"""Layer-wise learning-rate decay: lower blocks, which hold the most general features, move less."""

from __future__ import annotations

from automl_tl.strategies import FineTuning


class LayerwiseDecay(FineTuning):
    """Head first, then block k from the top (k = 0: the top block; the head at 1 too) trains at
    ``backbone_lr * lr_decay**k``. ``spec.blocks`` lists embeddings / stem as the bottom block, so
    they move at ``lr_decay**(n_blocks - 1)``; variables outside every block at
    ``lr_decay**n_blocks``; ``lr_decay`` is searched in :attr:`lr_decay` (0.65-0.95).
    AutoGluon-MultiModal's default way to fine-tune (its ``optimization.lr_decay``; ELECTRA and
    BEiT use the same rule)."""

    name = "layerwise_decay"
    description = "head first, then every block at lr * decay**k for block k from the top (decay searched)"
    #: the range ``lr_decay`` is searched in (uniform)
    lr_decay: tuple[float, float] = (0.65, 0.95)

    def suggest(self, trial, spec, space):
        return {"lr_decay": trial.suggest_float("lr_decay", *self.lr_decay)} | super().suggest(trial, spec, space)

    def learning_rates(self, backbone, spec, cfg):
        decay = float(cfg.extra.get("lr_decay", 0.8))
        blocks = spec.blocks(backbone)
        factors: dict[int, float] = {}
        for k, block in enumerate(reversed(blocks)):
            for layer in block:
                for v in layer.weights:
                    factors.setdefault(id(v), decay ** k)
        below = decay ** len(blocks)
        for v in backbone.weights:
            factors.setdefault(id(v), below)
        return factors
