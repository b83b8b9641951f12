"""Transfer strategies: how a trial turns a pretrained backbone into a classifier.

A :class:`TransferStrategy` names itself, describes itself in one line, declares its own
hyperparameters for a given backbone (:meth:`~TransferStrategy.suggest`), trains and scores a
trial (:meth:`~TransferStrategy.run`), retrains the selected configuration on all labelled data
(:meth:`~TransferStrategy.refit`) and says what its saved model holds
(:attr:`~TransferStrategy.saves`). The engine tells strategies apart only by what they declare
(:attr:`~TransferStrategy.fine_tunes`, :attr:`~TransferStrategy.probe_equivalent`, ...), never by
name. :class:`FineTuning` is the base of every strategy that moves
backbone weights: a subclass usually overrides only :meth:`~FineTuning.trainable` (which
variables move) and perhaps :meth:`~FineTuning.learning_rates` (how fast each moves).

Strategies are registered by plugins through ``automl_tl_register_strategies(registry)``; the
built-in ones (feature extraction, fine-tune top N, fine-tune all, LP-FT, layer-wise learning-rate
decay) live in ``plugins/automl_tl_strategies``, one module each, loaded like any other plugin.
"""

from automl_tl.strategies._base import FineTuning, TransferStrategy
from automl_tl.strategies._optimizers import LayerwiseAdam
from automl_tl.strategies._registry import StrategyRegistry

__all__ = ["TransferStrategy", "FineTuning", "StrategyRegistry", "LayerwiseAdam", "FEATURE_EXTRACTION"]

#: the name of the built-in strategy that declares ``probe_equivalent`` (frozen features, scored
#: by cross-validation; the linear probe of every candidate backbone is a trial of it). The engine
#: finds that strategy by its capability (:meth:`StrategyRegistry.probe`), never by this name; the
#: name stays as the built-in's own and as the value of stored trials that predate the
#: ``strategy`` attribute (old records).
FEATURE_EXTRACTION = "feature_extraction"
