"""A third-party transfer strategy: BitFit.

BitFit (Ben Zaken, Ravfogel and Goldberg, ACL 2022) fine-tunes only the bias terms of a
pretrained network, with the head: about 0.1 % of a transformer's weights move, which is cheap,
hard to overfit on small data, and leaves the pretrained features nearly intact.

A strategy plugin subclasses :class:`automl_tl.strategies.FineTuning` and says which variables
train; the engine does the rest (head start, scoring, pruning, refit, saving). Install this
package and ``automl-tl strategies`` lists ``bitfit``; ``automl-tl fit DATA --strategies
feature_extraction,bitfit`` searches it, and a strategy-table rule may recommend it.
"""

from automl_tl import hookimpl
from automl_tl.strategies import FineTuning

__version__ = "0.1.0"


class BitFit(FineTuning):
    name = "bitfit"
    description = "head first, then only the backbone's bias terms (Ben Zaken et al. 2022)"
    rank = 1  # fewer weights move than in any top-N fine-tuning: simpler in a tie

    def trainable(self, backbone, spec, cfg):
        # Keras names a layer's additive term "bias" (Dense, Conv, EinsumDense) or "beta"
        # (LayerNormalization); BatchNormalization stays frozen whatever this returns
        return {id(v) for v in backbone.weights if v.path.rsplit("/", 1)[-1] in ("bias", "beta")}


@hookimpl
def automl_tl_register_strategies(registry):
    registry.add(BitFit())
