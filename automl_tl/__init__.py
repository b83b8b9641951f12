"""automl-tl: transfer learning for people with a labelled dataset and no time to become experts."""

from automl_tl.errors import (
    AutoMLTLError,
    ConfigError,
    DataError,
    NotFittedError,
    PluginError,
    TrialFailed,
    WeightsUnavailableError,
)
from automl_tl._version import __version__
from automl_tl.hookspecs import hookimpl, hookspec

__all__ = [
    "AutoMLTLError",
    "ConfigError",
    "DataError",
    "NotFittedError",
    "PluginError",
    "TrialFailed",
    "WeightsUnavailableError",
    "hookimpl",
    "hookspec",
    "AutoTransfer",
    "__version__",
]


def __getattr__(name):  # lazy: importing automl_tl must not import TensorFlow
    if name == "AutoTransfer":
        from automl_tl.estimator import AutoTransfer

        return AutoTransfer
    raise AttributeError(name)
