"""The pruners a search may use (``automl-tl fit --pruner``): Optuna's, configured for this
engine's fidelity, the fine-tuning epoch. Kept apart from :mod:`automl_tl.search` so that the
command line can list them without importing Keras."""

from __future__ import annotations

from automl_tl.errors import ConfigError

__all__ = ["PRUNERS", "DEFAULT_PRUNER", "make_pruner"]

#: the pruners ``--pruner`` names; each compares fine-tuning trials epoch by epoch (step = the
#: fine-tuning epoch, from 0; a trial's head training on cached features is not reported)
PRUNERS = ("median", "successive-halving", "hyperband", "none")
DEFAULT_PRUNER = "median"


def make_pruner(name: str = DEFAULT_PRUNER, *, max_epochs: int = 4):
    """The Optuna pruner ``name`` of :data:`PRUNERS`.

    ``median``: a trial below the median of earlier trials at the same epoch stops, from its second
    epoch, after two complete trials. ``successive-halving`` (asynchronous successive halving,
    rungs at steps 1, 3, 9..., i.e. after the 2nd and 4th epochs): only the best third of the
    trials that reached a rung goes on, so the cheap fidelity (two epochs) is spent on many
    configurations and full epochs on few. ``hyperband``: successive halving in brackets that
    start pruning at different epochs (TPE then proposes within each bracket's own trials).
    ``none``: every trial runs its epochs. ``max_epochs``: the most fine-tuning epochs a trial may
    have; its last step, ``max_epochs - 1``, is Hyperband's maximum resource.
    """
    import optuna

    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1)
    if name == "successive-halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(1, int(max_epochs) - 1),
                                              reduction_factor=3)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise ConfigError(f"unknown pruner {name!r}: choose one of {', '.join(PRUNERS)}")
