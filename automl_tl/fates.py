"""What happens to a trial, and to the run, when training raises: one table, by exception type.

keras-tuner's rule, made explicit: the type of the exception decides. Nothing here matches on
message text. The table is read top to bottom; the first row whose types the exception is an
instance of gives the fate:

================================  ===============================================================
out of memory                     retry the trial once with half the batch, then FAIL with reason
interrupted (Ctrl-C)              FAIL the trial as interrupted, queue it again, stop: exit 130
a full disk                       FAIL the trial, queue it again (not counted), stop: exit 2
the user's data or settings       stop the run: exit 2 with the error's own message
a broken plugin                   stop the run: exit 3
a bad configuration               FAIL the trial with its reason; the search goes on
anything else                     FAIL the trial with its reason; the search goes on
================================  ===============================================================

Out-of-memory types come from the frameworks that are already imported (TensorFlow's
``ResourceExhaustedError``, PyTorch's ``OutOfMemoryError``) and Python's ``MemoryError``; no
framework is imported to build the table. JAX has no out-of-memory type of its own (it raises
``XlaRuntimeError`` for every runtime failure), so there such a trial fails with its reason.

A Ctrl-C is not always a ``KeyboardInterrupt`` by the time it reaches us: Python raises it wherever
the main thread is, and C code it lands in (TensorFlow's, NumPy's) may turn it into another error
(seen: ``SystemError: Objects/listobject.c: bad argument to internal function``). So while a search
runs, :func:`watch_interrupts` remembers that SIGINT arrived, and from then on every exception is
"interrupted" whatever its type.

Inside :func:`safe_points` (the search's trials and delivery) the first Ctrl-C raises nothing: it
is recorded, and the engine stops at the next safe point, :func:`checkpoint` (after a training
batch, an embedding batch, between trials), so the ``KeyboardInterrupt`` starts where the engine
can take it, never inside a weakref callback or a library's C code. A second Ctrl-C, or
``AUTOML_TL_INTERRUPT_GRACE_S`` seconds (default 10) without a safe point (a long step with none),
raises at once as Python's own handler does.

A full disk is known by type (:class:`~automl_tl.errors.NoSpaceError`) or by the errno of an
``OSError`` in the exception's chain (:func:`~automl_tl.errors.no_space_cause`: ENOSPC, EDQUOT,
SQLite's "disk is full"), whatever library raised it: the trial did not fail on its merits, so it
is queued again like an interrupted one and does not count against the trial budget; the run
stops, and after space is freed the same command runs it.
"""

from __future__ import annotations

import _thread
import contextlib
import enum
import os
import signal
import sys
import threading

from automl_tl.errors import AutoMLTLError, ConfigError, DataError, NoSpaceError, NotFittedError, PluginError, \
    TrialFailed, WeightsUnavailableError, no_space_cause

__all__ = ["Fate", "fate_of", "FATES", "watch_interrupts", "interrupted", "safe_points", "checkpoint"]


class Fate(enum.Enum):
    RETRY_SMALLER_BATCH = "retry with half the batch, then fail"
    INTERRUPT = "fail as interrupted, queue again, stop the run (exit 130)"
    NO_SPACE = "fail, queue again (not counted), stop the run (exit 2)"
    STOP = "stop the run (the error's exit code)"
    FAIL = "fail this trial; the search goes on"


def _out_of_memory_types() -> tuple[type, ...]:
    types: list[type] = [MemoryError]
    tf = sys.modules.get("tensorflow")
    if tf is not None and hasattr(tf, "errors"):
        types.append(tf.errors.ResourceExhaustedError)
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(getattr(torch, "cuda", None), "OutOfMemoryError"):
        types.append(torch.cuda.OutOfMemoryError)
    return tuple(types)


def _bad_configuration_types() -> tuple[type, ...]:
    types: list[type] = [TrialFailed, ValueError, ArithmeticError, TypeError]
    tf = sys.modules.get("tensorflow")
    if tf is not None and hasattr(tf, "errors"):
        types.append(tf.errors.InvalidArgumentError)
    return tuple(types)


#: (what, exception types, fate); the types of framework errors are filled in when looked up
FATES = (
    ("out of memory", _out_of_memory_types, Fate.RETRY_SMALLER_BATCH),
    ("interrupted", lambda: (KeyboardInterrupt,), Fate.INTERRUPT),
    ("a full disk", lambda: (NoSpaceError,), Fate.NO_SPACE),  # before DataError, its base
    ("the user's data or settings", lambda: (DataError, ConfigError, WeightsUnavailableError, NotFittedError),
     Fate.STOP),
    ("a broken plugin", lambda: (PluginError,), Fate.STOP),
    ("the process is ending", lambda: (SystemExit, GeneratorExit), Fate.STOP),
    ("a bad configuration", _bad_configuration_types, Fate.FAIL),
    ("another error of ours", lambda: (AutoMLTLError,), Fate.FAIL),
    ("anything else", lambda: (Exception,), Fate.FAIL),
)


_sigint = threading.Event()
_safe = {"depth": 0, "timer": None}  # safe_points() blocks open, the grace timer of a deferred Ctrl-C


def interrupted() -> bool:
    """Whether SIGINT arrived inside the current :func:`watch_interrupts` block."""
    return _sigint.is_set()


def checkpoint() -> None:
    """A safe point: raise ``KeyboardInterrupt`` here if a Ctrl-C was recorded (cheap: one flag)."""
    if _sigint.is_set():
        _cancel_grace()
        raise KeyboardInterrupt("interrupted")


def _grace_seconds() -> float:
    try:
        return max(0.0, float(os.environ.get("AUTOML_TL_INTERRUPT_GRACE_S", "10")))
    except ValueError:
        return 10.0


def _cancel_grace() -> None:
    timer, _safe["timer"] = _safe["timer"], None
    if timer is not None:
        timer.cancel()


@contextlib.contextmanager
def safe_points():
    """Inside this block a first Ctrl-C waits for the next :func:`checkpoint` (see the module)."""
    _safe["depth"] += 1
    try:
        yield
    finally:
        _safe["depth"] -= 1
        if not _safe["depth"]:
            _cancel_grace()


@contextlib.contextmanager
def watch_interrupts():
    """Remember a Ctrl-C that arrives in the block: it raises ``KeyboardInterrupt`` at once, as
    Python's own handler does, except the first one inside :func:`safe_points`, which waits for the
    next :func:`checkpoint`. Only the main thread can install a handler; elsewhere, or when the
    caller installed its own handler, this does nothing."""
    if threading.current_thread() is not threading.main_thread() \
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield  # an outer block (or the caller's own handler) is watching
        return
    _sigint.clear()

    def on_sigint(signum, frame):
        first = not _sigint.is_set()
        _sigint.set()
        if first and _safe["depth"] and _safe["timer"] is None:
            # recorded; the engine raises at its next safe point. If none comes in the grace
            # period, the timer interrupts the main thread again, which raises below
            timer = threading.Timer(_grace_seconds(), _thread.interrupt_main)
            timer.daemon = True
            _safe["timer"] = timer
            timer.start()
            return
        _cancel_grace()
        signal.default_int_handler(signum, frame)

    previous_hook = sys.unraisablehook

    def on_unraisable(unraisable):
        # the KeyboardInterrupt raised where the interpreter happened to be (outside safe_points,
        # or forced): inside a weakref callback (SQLAlchemy's class registry) or a __del__, Python
        # cannot raise it and prints "Exception ignored in: ..." with a traceback. The flag above
        # already stops the run at the next safe point: nothing to print
        if isinstance(unraisable.exc_value, KeyboardInterrupt) and _sigint.is_set():
            return
        previous_hook(unraisable)

    signal.signal(signal.SIGINT, on_sigint)
    sys.unraisablehook = on_unraisable
    try:
        yield
    finally:
        _cancel_grace()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        sys.unraisablehook = previous_hook
        _sigint.clear()


def fate_of(exc: BaseException) -> tuple[str, Fate]:
    """``(what it is, its fate)`` for ``exc`` (the first matching row of :data:`FATES`; any
    exception once a Ctrl-C arrived is "interrupted"; one with a full disk in its chain is "a full
    disk")."""
    if interrupted() and not isinstance(exc, SystemExit):
        return "interrupted", Fate.INTERRUPT
    if isinstance(exc, Exception) and no_space_cause(exc) is not None:
        return "a full disk", Fate.NO_SPACE  # an OSError's errno, not its text (see the module)
    for what, types, fate in FATES:
        if isinstance(exc, types()):
            return what, fate
    return "the process is ending", Fate.STOP  # BaseException that is none of the above
