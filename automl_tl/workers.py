"""Who runs a trial, and whether that process is gone: what lets many processes share a study.

Optuna's heartbeat (``RDBStorage(heartbeat_interval=..., grace_period=...)``) tells a trial whose
process stopped beating; it takes a grace period, because on another machine nothing faster is
known. On the same machine there is: the process is gone when its pid is. Each trial records its
worker (:func:`identity`), and a RUNNING trial whose worker ran here and is gone is failed at once.
A live process's trial is never failed (a second process on the same run directory used to mark
the first one's trial interrupted).
"""

from __future__ import annotations

import os
import socket

from automl_tl.errors import env_seconds

__all__ = ["identity", "is_gone", "pid_alive", "heartbeat_interval_s", "grace_period_s"]


def heartbeat_interval_s() -> int:
    """Optuna's heartbeat: a worker writes one this often (seconds) while a trial runs
    (``AUTOML_TL_HEARTBEAT_S``, 20 by default). Read when a storage opens, not at import: the
    process's environment then, as for a worker forked after its imports."""
    return int(env_seconds("AUTOML_TL_HEARTBEAT_S", 20))


def grace_period_s() -> int:
    """A trial silent this long (seconds) is failed and retried by whichever worker notices first
    (``AUTOML_TL_GRACE_S``, six heartbeats by default); read at use, as the heartbeat is."""
    return int(env_seconds("AUTOML_TL_GRACE_S", 6 * heartbeat_interval_s()))


def _namespace() -> str:
    """The boot and the pid namespace: two containers (or two boots) with one host name have
    different ones, so a pid is only compared within the space it means something in."""
    parts = []
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            parts.append(f.read().strip())
        parts.append(str(os.stat("/proc/self/ns/pid").st_ino))
    except OSError:
        pass
    return ":".join(parts)


def identity() -> dict:
    return {"host": socket.gethostname(), "pid": os.getpid(), "ns": _namespace()}


def is_gone(worker) -> bool:
    """True only when ``worker`` (an :func:`identity`) ran on this machine and its pid is gone;
    False when it lives, ran elsewhere, or is unknown (then the heartbeat decides)."""
    if not isinstance(worker, dict) or worker.get("host") != socket.gethostname() \
            or worker.get("ns") != _namespace() or not worker.get("ns"):
        return False
    try:
        return not pid_alive(int(worker["pid"]))
    except (ValueError, KeyError, TypeError):
        return False


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True
