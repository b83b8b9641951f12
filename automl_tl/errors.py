"""One exception root, specific children. Messages say what was wrong, where, and what to do."""

from __future__ import annotations

__all__ = [
    "AutoMLTLError",
    "DataError",
    "ConfigError",
    "PluginError",
    "WeightsUnavailableError",
    "TrialFailed",
    "NotFittedError",
    "BackboneLeftOutWarning",
]


class AutoMLTLError(Exception):
    """Root of every error automl-tl raises on purpose."""

    exit_code = 1


class DataError(AutoMLTLError):
    """The user's data cannot be used as given (empty, one class, wrong columns, ...)."""

    exit_code = 2


class ConfigError(AutoMLTLError):
    """An option, backbone name, storage URL or other setting is wrong."""

    exit_code = 2


class PluginError(AutoMLTLError):
    """A plugin registered something invalid; the message names the plugin."""

    exit_code = 3


class WeightsUnavailableError(AutoMLTLError):
    """No weight source of a backbone can be used here (no local file, no package, no network)."""

    exit_code = 2


class NotFittedError(AutoMLTLError):
    """A model or run directory was used before anything was fitted or saved there."""

    exit_code = 2


class TrialFailed(AutoMLTLError):
    """One search trial failed (NaN loss, out of memory, ...); the search records it and goes on."""


class BackboneLeftOutWarning(UserWarning):
    """A candidate backbone was left out of the search (its weights cannot be had here)."""
