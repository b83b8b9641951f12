"""The built-in transfer strategies, one module each, registered like any plugin's.

=================== ==========================================================================
feature_extraction  frozen backbone, a head on cached features; scored by cross-validation
fine_tune_top       head first, then the top N blocks (the Keras transfer-learning recipe)
fine_tune_all       every block and a fresh head together, one learning rate (classic fine-tuning)
lp_ft               linear probe first, then every block (Kumar et al., ICLR 2022)
layerwise_decay     LP-FT with block k from the top at ``lr * decay**k`` (AutoGluon-MultiModal)
=================== ==========================================================================
"""

from automl_tl import hookimpl
from automl_tl_strategies.feature_extraction import FeatureExtraction
from automl_tl_strategies.fine_tune_all import FineTuneAll
from automl_tl_strategies.fine_tune_top import FineTuneTop
from automl_tl_strategies.layerwise_decay import LayerwiseDecay
from automl_tl_strategies.lp_ft import LinearProbeThenFineTune

__all__ = ["FeatureExtraction", "FineTuneTop", "FineTuneAll", "LinearProbeThenFineTune", "LayerwiseDecay"]
__version__ = "0.2.0"


@hookimpl
def automl_tl_register_strategies(registry):
    for strategy in (FeatureExtraction(), FineTuneTop(), FineTuneAll(), LinearProbeThenFineTune(),
                     LayerwiseDecay()):
        registry.add(strategy)
