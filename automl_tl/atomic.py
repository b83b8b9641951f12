"""Atomic writes: a file is either its old content or its new content, never half of either.

A leaf module (standard library, numpy and the test-only kill points), so every other module may use it without
import circles.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

from automl_tl.killpoints import kill_point

__all__ = ["atomic_write_bytes", "atomic_write_text", "atomic_write_json", "json_default"]


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


#: mkstemp creates files readable by their owner only; the views of a run get the mode any other
#: file the user writes gets (0666 less the umask), like model.keras and the report
_MODE = 0o666 & ~_umask()
DIR_MODE = 0o777 & ~_umask()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to a temporary file next to ``path``, fsync it, and ``os.replace`` it into
    place. Returns ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # the pid in the name tells a leftover of a killed process from a live one's (artifacts.remove_leftovers)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", dir=path.parent)
    try:
        os.chmod(tmp, _MODE)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        kill_point("views")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path, obj) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, default=json_default, ensure_ascii=False))


def json_default(x):
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.floating):
        return float(x)
    if isinstance(x, np.ndarray):
        return x.tolist()
    if hasattr(x, "to_dict"):
        return x.to_dict()
    return str(x)
