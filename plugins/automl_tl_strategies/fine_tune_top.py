"""Fine-tune the top N blocks: the head first, then the most task-specific blocks with it."""

from __future__ import annotations

from automl_tl.strategies import FineTuning


class FineTuneTop(FineTuning):
    """The Keras transfer-learning recipe: train the new head on frozen features, then unfreeze
    the top ``unfreeze_blocks`` blocks (searched from 1 to half the backbone) at a low rate."""

    name = "fine_tune_top"
    description = "head first on frozen features, then the top N blocks with it (N searched)"
    rank = 1

    @staticmethod
    def max_unfreeze(spec) -> int:
        """The most blocks searched for ``spec``: half the backbone (at least 2, never all of
        it, at least 1)."""
        return max(1, min(spec.n_blocks - 1, max(2, spec.n_blocks // 2)))

    def suggest(self, trial, spec, space):
        return {"unfreeze_blocks": trial.suggest_int("unfreeze_blocks", 1, self.max_unfreeze(spec))} \
            | super().suggest(trial, spec, space)

    def trainable(self, backbone, spec, cfg):
        blocks = spec.blocks(backbone)
        n = max(1, min(int(cfg.unfreeze_blocks or 1), len(blocks)))
        return {id(v) for block in blocks[-n:] for layer in block for v in layer.weights}
