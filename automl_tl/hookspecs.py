"""The hook specifications of automl-tl: the whole plugin API in one module.

A plugin is a module or object with functions marked ``@automl_tl.hookimpl`` whose names match
the specs below. Built-in plugins (``plugins/automl_tl_vision`` ...) are loaded exactly like
third-party ones, through the ``automl_tl`` entry-point group.
"""

from __future__ import annotations

import pluggy

PROJECT = "automl_tl"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def automl_tl_register_modalities(registry):
    """Register input modalities (image, text, audio, ...).

    :param registry: a :class:`automl_tl.modalities.ModalityRegistry`; call
        ``registry.add(modality)`` with a :class:`automl_tl.modalities.Modality` instance. A second
        modality with a name already taken is an error that names both plugins.
    """


@hookspec
def automl_tl_register_backbones(registry):
    """Register pretrained backbones.

    :param registry: a :class:`automl_tl.backbones.BackboneRegistry`; call
        ``registry.add(spec)`` with a :class:`automl_tl.backbones.BackboneSpec`. The spec is
        validated at once; an invalid spec raises :class:`automl_tl.errors.PluginError` naming the
        plugin that added it.
    """


@hookspec
def automl_tl_register_strategies(registry):
    """Register transfer strategies (how a trial trains a backbone).

    :param registry: a :class:`automl_tl.strategies.StrategyRegistry`; call
        ``registry.add(strategy)`` with an instance of a :class:`automl_tl.strategies.TransferStrategy`
        subclass (usually of :class:`automl_tl.strategies.FineTuning`, overriding ``trainable``).
        A name already taken, or a strategy without a name or description, is an error naming
        the plugin. Registered strategies are searched, may be named by strategy-table rules and
        by ``--strategies``, and are listed by ``automl-tl strategies``.
    """


@hookspec
def automl_tl_adjust_strategy_table(table):
    """Extend or override the strategy table (size x similarity -> strategy).

    :param table: a :class:`automl_tl.strategy.StrategyTable`; call ``table.add(rule)`` or
        ``table.replace(name, rule)`` or ``table.set_thresholds(...)``. Called after all rules of
        the built-in table exist.
    """
