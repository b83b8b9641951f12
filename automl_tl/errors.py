"""One exception root, specific children. Messages say what was wrong, where, and what to do."""

from __future__ import annotations

import errno
import os
import re
import shutil

__all__ = [
    "AutoMLTLError",
    "DataError",
    "ConfigError",
    "PluginError",
    "WeightsUnavailableError",
    "TrialFailed",
    "RefitStopped",
    "EmbeddingOverBudget",
    "NotFittedError",
    "NoSpaceError",
    "DatabaseUnreachableError",
    "NO_SPACE_ERRNOS",
    "no_space_cause",
    "env_seconds",
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


#: the errno values of a full disk: no space left, or the user's disk quota used up
NO_SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


class NoSpaceError(DataError):
    """A disk automl-tl writes to (the run directory, the embedding cache) is full: the user's to
    fix by freeing space or writing elsewhere (exit 2). The message names the device, the folder,
    about how much was needed and how much is free, and ``hint``, what to do."""

    def __init__(self, path, *, needed: int | None = None, hint: str = "free some space there") -> None:
        self.path, self.needed = str(path), needed
        self.free = _free_bytes(self.path)
        self.device = _device_of(self.path)
        sizes = ", ".join(([f"needs about {_mb(needed)}"] if needed else [])
                          + ([f"{_mb(self.free)} free"] if self.free is not None else []))
        super().__init__(f"no space left on {self.device} at {self.path}" + (f" ({sizes})" if sizes else "")
                         + f": {hint}")


def env_seconds(name: str, default: float) -> float:
    """A duration in seconds from the environment variable ``name`` (``default`` where unset),
    read at use; a value that is not a number of seconds, 0 or more, is a
    :class:`ConfigError` naming the variable (exit 2), not a traceback."""
    raw = os.environ.get(name)
    if raw is None:
        return float(default)
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0:  # NaN too
        raise ConfigError(f"{name} must be a number of seconds, 0 or more, got {raw!r}: set it so or unset it")
    return value


#: SQLite's result code for "database or disk is full" (``sqlite3.SQLITE_FULL``)
_SQLITE_FULL = 13


def no_space_cause(exc: BaseException | None) -> BaseException | None:
    """The full-disk error in ``exc``'s chain (itself, its cause or context, or the driver's error
    a SQLAlchemy error wraps): an ``OSError`` whose errno is in :data:`NO_SPACE_ERRNOS`, or
    SQLite's "database or disk is full"; None where there is none."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in NO_SPACE_ERRNOS:
            return exc
        if getattr(exc, "sqlite_errorcode", None) == _SQLITE_FULL:
            return exc
        exc = exc.__cause__ or exc.__context__ or getattr(exc, "orig", None)
    return None


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n < 10e6 else f"{n / 1e6:.0f} MB"


def _existing(path: str) -> str:
    """``path`` or its nearest existing parent (a run directory may not be made yet)."""
    path = os.path.abspath(path)
    while not os.path.exists(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    return path


def _free_bytes(path: str) -> int | None:
    try:
        return shutil.disk_usage(_existing(path)).free
    except OSError:
        return None


def _device_of(path: str) -> str:
    """The device (file system) holding ``path``, as ``/proc/self/mounts`` names it ("/dev/sda1",
    "tmpfs"), with its mount point; the mount point alone where there is no such file."""
    real = os.path.realpath(_existing(path))
    best = ("", "")
    try:
        with open("/proc/self/mounts", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                fields = line.split()
                if len(fields) < 2:
                    continue
                # the file escapes spaces, tabs, newlines and backslashes in paths as octal (\040)
                device, mount = (re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), f) for f in fields[:2])
                inside = real == mount or real.startswith(mount.rstrip("/") + "/")
                if inside and len(mount) >= len(best[1]):
                    best = (device, mount)
    except OSError:
        pass
    if best[1]:
        return f"{best[0]} (mounted at {best[1]})"
    mount = real
    while not os.path.ismount(mount):
        mount = os.path.dirname(mount)
    return mount


class DatabaseUnreachableError(ConfigError):
    """The database of a shared search (``--storage``) did not answer for the whole time a worker
    waits for it (exit 2). The message names the host and port, never the password."""


class TrialFailed(AutoMLTLError):
    """One search trial failed (NaN loss, out of memory, ...); the search records it and goes on."""


class RefitStopped(Exception):
    """A refit ran past the time budget; the search's model stays delivered. (Not an
    :class:`AutoMLTLError`: the search catches it, a user never sees it.)"""


class EmbeddingOverBudget(Exception):
    """An embedding pass measured on its first batches would end after the time it was given
    (:attr:`EmbeddingCache.guard`); nothing of it is cached. (Not an :class:`AutoMLTLError`: the
    probe catches it and leaves the backbone out, saying why.)"""

    def __init__(self, backbone: str, predicted: float, left: float) -> None:
        super().__init__(f"embedding with {backbone} would take about {predicted:.0f} s more (measured on its "
                         f"first items), and {max(0.0, left):.0f} s are left for probing")
        self.backbone, self.predicted, self.left = backbone, predicted, left


class BackboneLeftOutWarning(UserWarning):
    """A candidate backbone was left out of the search (its weights cannot be had here)."""
