"""Loading plugins and calling their hooks through a typed wrapper.

Built-in plugins are ordinary plugins: they are declared as entry points of group ``automl_tl``
in ``pyproject.toml`` like any third-party package, and also listed in :data:`DEFAULT_PLUGINS` so
that they load even when entry-point autoloading is switched off with
``AUTOML_TL_DISABLE_PLUGIN_AUTOLOAD=1`` (that switch affects third-party packages only).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
from dataclasses import dataclass
from typing import Iterable

import pluggy

from automl_tl import hookspecs
from automl_tl.errors import PluginError

__all__ = ["PluginManager", "PluginInfo", "DEFAULT_PLUGINS", "ENTRY_POINT_GROUP", "get_plugin_manager"]

ENTRY_POINT_GROUP = "automl_tl"
AUTOLOAD_ENV = "AUTOML_TL_DISABLE_PLUGIN_AUTOLOAD"
DEFAULT_PLUGINS = ("automl_tl_strategies", "automl_tl_vision", "automl_tl_text", "automl_tl_audio")


@dataclass(frozen=True, kw_only=True)
class PluginInfo:
    name: str
    version: str
    hooks: tuple[str, ...]
    builtin: bool


class PluginManager:
    """A pluggy manager plus typed hook calls and the registries the hooks fill."""

    def __init__(self, *, plugins: Iterable[object] = (), autoload: bool | None = None,
                 builtins: bool = True) -> None:
        self._pm = pluggy.PluginManager(hookspecs.PROJECT)
        self._pm.add_hookspecs(hookspecs)
        self._versions: dict[str, str] = {}
        self._builtin_names: set[str] = set()
        if autoload is None:
            autoload = not os.environ.get(AUTOLOAD_ENV)
        if autoload:
            self._load_entry_points()
        if builtins:
            for modname in DEFAULT_PLUGINS:
                if self._pm.get_plugin(modname) is None:
                    try:
                        module = importlib.import_module(modname)
                    except ImportError as exc:  # an optional extra is not installed
                        self._versions.setdefault(modname, f"not loaded: {exc}")
                        continue
                    self._register(module, modname, "builtin")
                self._builtin_names.add(modname)
        for plugin in plugins:
            self.register(plugin)
        try:
            self._pm.check_pending()
        except pluggy.PluginValidationError as exc:
            raise PluginError(f"plugin {exc.plugin!r} implements an unknown hook: {exc}") from exc
        self._backbones = None
        self._modalities = None
        self._strategies = None
        self._strategy_table = None

    # ----------------------------------------------------------------- loading
    def _load_entry_points(self) -> None:
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            if self._pm.get_plugin(ep.name) is not None:
                continue
            try:
                plugin = ep.load()
            except Exception as exc:  # noqa: BLE001 - a broken plugin must be named, not crash
                raise PluginError(
                    f"plugin {ep.name!r} (entry point {ep.value!r}) failed to import: {exc}. "
                    f"Fix or uninstall it, or set {AUTOLOAD_ENV}=1 to skip third-party plugins."
                ) from exc
            version = ep.dist.version if ep.dist is not None else "?"
            self._register(plugin, ep.name, version)

    def _register(self, plugin: object, name: str, version: str) -> None:
        try:
            self._pm.register(plugin, name=name)
        except (ValueError, pluggy.PluginValidationError) as exc:
            raise PluginError(f"plugin {name!r} could not be registered: {exc}") from exc
        self._versions[name] = version

    def register(self, plugin: object, name: str | None = None) -> None:
        """Register a plugin object or module (tests, notebooks, programmatic use)."""
        name = name or getattr(plugin, "__name__", None) or type(plugin).__name__
        self._register(plugin, name, getattr(plugin, "__version__", "local"))
        self._backbones = self._modalities = self._strategies = self._strategy_table = None

    # ----------------------------------------------------------------- typed hook calls
    def _call_with_registrar(self, hook_name: str, registrar) -> None:
        hook = getattr(self._pm.hook, hook_name)
        for impl in hook.get_hookimpls():  # registration order: built-ins first
            plugin_name = self._pm.get_name(impl.plugin) or repr(impl.plugin)
            registrar._current_plugin = plugin_name
            try:
                impl.function(registrar)
            except PluginError:
                raise
            except Exception as exc:  # noqa: BLE001
                raise PluginError(f"plugin {plugin_name!r} failed in {hook_name}: {exc!r}") from exc
            finally:
                registrar._current_plugin = None

    @property
    def modalities(self):
        if self._modalities is None:
            from automl_tl.modalities import ModalityRegistry

            reg = ModalityRegistry()
            self._call_with_registrar("automl_tl_register_modalities", reg)
            self._modalities = reg
        return self._modalities

    @property
    def backbones(self):
        if self._backbones is None:
            from automl_tl.backbones import BackboneRegistry

            reg = BackboneRegistry(modalities=self.modalities)
            self._call_with_registrar("automl_tl_register_backbones", reg)
            self._backbones = reg
        return self._backbones

    @property
    def strategies(self):
        """The :class:`~automl_tl.strategies.StrategyRegistry` the plugins filled."""
        if self._strategies is None:
            from automl_tl.strategies import StrategyRegistry

            reg = StrategyRegistry()
            self._call_with_registrar("automl_tl_register_strategies", reg)
            if reg.probe() is None:
                raise PluginError("no registered strategy declares probe_equivalent (a linear head on its "
                                  "frozen features is the linear probe): the engine's probe trials need one "
                                  "(the built-in feature_extraction does: is the automl_tl_strategies plugin "
                                  "installed?)")
            self._strategies = reg
        return self._strategies

    @property
    def strategy_table(self):
        if self._strategy_table is None:
            from automl_tl.strategy import StrategyTable

            table = StrategyTable.default()
            self._call_with_registrar("automl_tl_adjust_strategy_table", table)
            table.validate(self.strategies.names())
            table.bind(self.strategies)
            self._strategy_table = table
        return self._strategy_table

    def list_plugins(self) -> list[PluginInfo]:
        out = []
        for name, plugin in self._pm.list_name_plugin():
            hooks = tuple(sorted(h.name for h in self._pm.get_hookcallers(plugin) or ()))
            out.append(PluginInfo(name=name, version=self._versions.get(name, "?"), hooks=hooks,
                                  builtin=name in self._builtin_names))
        return sorted(out, key=lambda p: (not p.builtin, p.name))


_DEFAULT: PluginManager | None = None


def get_plugin_manager(*, fresh: bool = False) -> PluginManager:
    """The process-wide plugin manager (built once)."""
    global _DEFAULT
    if _DEFAULT is None or fresh:
        _DEFAULT = PluginManager()
    return _DEFAULT
