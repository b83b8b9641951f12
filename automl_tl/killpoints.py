"""Named points where a test can make the process kill itself with SIGKILL (a leaf module).

``AUTOML_TL_TEST_KILL_AT=<point>`` kills the process the first time it reaches ``<point>``;
``<point>:<n>`` the n-th time. Tests use it to prove that a kill -9 at any instant loses nothing
(tests/core/test_kill_points.py). Without the variable a point costs one dictionary lookup.

Points: ``start`` (the run directory and split are written, the study is not), ``trial`` (a trial
is running), ``model-save`` (a model's files are written, not yet in
place), ``model-swap`` (the model's folder is in place, ``current`` not yet pointed to it),
``views`` (a view's temporary file is written, not yet renamed), ``report`` (the report is
half written).
"""

from __future__ import annotations

import os
import signal

__all__ = ["kill_point", "ENV"]

ENV = "AUTOML_TL_TEST_KILL_AT"
_seen: dict[str, int] = {}


def kill_point(name: str) -> None:
    spec = os.environ.get(ENV)
    if not spec:
        return
    point, _, nth = spec.partition(":")
    if point != name:
        return
    _seen[name] = _seen.get(name, 0) + 1
    if _seen[name] >= int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
