"""The ``automl-tl`` command line.

Exit codes: 0 success; 2 bad input or settings (data, options, missing weights, no model);
3 a plugin is broken; 1 an internal error (a bug: please report it with the traceback that
``--debug`` prints).

The parser is built in :mod:`automl_tl.cli._parser`; each command lives in its own module, which
adds its subparser and holds its ``cmd_`` function: ``_profile`` (profile, recommend), ``_fit``,
``_predict``, ``_lists`` (backbones, strategies, plugins), ``_reports`` (report, compare),
``_demo``; ``_common`` holds the exit codes, argument types and data options they share. This
module runs a command: logging, quiet imports, exit codes.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from automl_tl.cli import _demo, _export, _fit, _lists, _predict, _profile, _reports, _serve
from automl_tl.cli._common import EXIT_INPUT, EXIT_INTERNAL, EXIT_OK, EXIT_PLUGIN  # noqa: F401
from automl_tl.cli._parser import DESCRIPTION, build_parser  # noqa: F401
# the names of the former single module, for those who import them from here
from automl_tl.cli._common import (_add_data_options, _csv_list, _estimator, _non_negative_int,  # noqa: F401
                                   _positive_int, _time_budget, _weights_arg)
from automl_tl.cli._demo import cmd_demo  # noqa: F401
from automl_tl.cli._fit import WEAK_RECALL, _minority_note, _print_fit, _process_started, cmd_fit  # noqa: F401
from automl_tl.cli._lists import cmd_backbones, cmd_plugins, cmd_strategies  # noqa: F401
from automl_tl.cli._predict import (PREDICTION_COLUMNS, _class_columns, _prediction_file,  # noqa: F401
                                    _write_predictions, cmd_predict)
from automl_tl.cli._profile import _print_profile, cmd_profile, cmd_recommend  # noqa: F401
from automl_tl.cli._reports import _rebuild_views, cmd_compare, cmd_report  # noqa: F401


def _quiet_jax() -> None:
    """JAX logs a warning for every accelerator plugin it probes and does not find (TPU on a
    GPU or CPU machine): not a problem of the user's."""
    import logging

    logging.getLogger("jax._src.xla_bridge").setLevel(logging.ERROR)


def _quiet_tensorflow_import() -> None:
    """TensorFlow 2.21 prints C++ start-up lines (oneDNN, CUDA probing) that no environment
    variable silences; import it once with stderr pointed at /dev/null. An import that fails
    here fails again, loudly, where Keras needs it."""
    if os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow" or "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow

        # CUDA is probed on first device use, not at import: on a machine without a GPU that
        # prints "failed call to cuInit" later, on every command; probe it here, quietly
        tensorflow.config.list_physical_devices("GPU")
        # tf.function retracing notices (Keras' predict on each trial's new model) are advice to
        # TensorFlow programmers, not a problem of the user's run
        logging.getLogger("tensorflow").setLevel(logging.ERROR)
    except Exception:  # noqa: BLE001
        pass
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


class _TqdmHandler(logging.Handler):
    """Log lines printed above progress bars instead of through them."""

    def emit(self, record):
        from tqdm.auto import tqdm

        tqdm.write(self.format(record), file=sys.stderr)


def _configure_logging(level: str = "INFO") -> None:
    handler = _TqdmHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    logging.getLogger("automl_tl").setLevel(level)


COMMANDS = {name: cmd for module in (_profile, _fit, _predict, _lists, _reports, _demo, _serve, _export)
            for name, cmd in module.COMMANDS.items()}


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return EXIT_INPUT
    _configure_logging(args.log_level)
    import warnings

    from automl_tl.errors import BackboneLeftOutWarning

    warnings.simplefilter("ignore", BackboneLeftOutWarning)  # the log line says it once
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.command in ("profile", "recommend", "fit", "predict", "evaluate", "backbones", "strategies", "demo", "serve",
                        "export"):
        _quiet_tensorflow_import()
        _quiet_jax()
    from automl_tl.fates import interrupted, watch_interrupts

    with watch_interrupts():
        return _dispatch(args, interrupted)


def _interrupted() -> int:
    print("interrupted: finished trials are saved; run the same command to resume", file=sys.stderr)
    return 130


def _dispatch(args, interrupted) -> int:
    """Run the command; its exception decides the exit code (docs/errors.md)."""
    from automl_tl.errors import AutoMLTLError

    try:
        return COMMANDS[args.command](args)
    except AutoMLTLError as exc:
        if args.debug:
            raise
        exc = _disk_full(exc, args) or exc
        print(f"error: {exc}", file=sys.stderr)
        return getattr(exc, "exit_code", EXIT_INPUT) if exc.exit_code != 1 else EXIT_INPUT
    except KeyboardInterrupt:
        return _interrupted()
    except Exception as exc:  # noqa: BLE001
        if interrupted():  # a Ctrl-C that C code turned into another error
            return _interrupted()
        if args.debug:
            raise
        full = _disk_full(exc, args)
        if full is not None:
            print(f"error: {full}", file=sys.stderr)
            return full.exit_code
        print(f"internal error: {type(exc).__name__}: {exc}\n(this is a bug; rerun with --debug for "
              f"the traceback and report it)", file=sys.stderr)
        return EXIT_INTERNAL


def _disk_full(exc: BaseException, args):
    """A full disk anywhere in ``exc``'s chain (``OSError`` ENOSPC or EDQUOT, SQLite's "database or
    disk is full"), whatever raised it, as a :class:`~automl_tl.errors.NoSpaceError` (exit 2) naming
    the folder: the file the error names, else whichever folder this command writes to (the run
    directory, the embedding cache, an output) has the least space left. None for other errors,
    and for a NoSpaceError already (it says more: about how much was needed)."""
    from automl_tl.errors import NoSpaceError, no_space_cause

    cause = no_space_cause(exc)
    if cause is None or isinstance(exc, NoSpaceError):
        return None
    rerun = "free some space there and run the same command again: the finished trials are kept"
    folders = []  # (folder, what to do)
    if args.command == "fit":
        from automl_tl.run_directory import default_run_dir

        folders.append((Path(args.run_dir or default_run_dir(args.data)), rerun))
    elif getattr(args, "run_dir", None) and args.command in ("demo", "report"):
        folders.append((Path(args.run_dir), rerun))
    if args.command in ("fit", "profile", "recommend", "demo"):
        from automl_tl.cache import CACHE_ENV, default_cache_dir

        folders.append((Path(getattr(args, "cache_dir", None) or default_cache_dir()),
                        f"free some space there, or give --cache-dir (or {CACHE_ENV}) a folder on another disk"))
    for name in ("out", "output"):
        if getattr(args, name, None):
            folders.append((Path(getattr(args, name)), "free some space there, or write elsewhere"))
    named = getattr(cause, "filename", None)
    if named:
        named = os.path.abspath(os.fsdecode(named))
        inside = [(f, hint) for f, hint in folders if Path(named).is_relative_to(f.absolute())]
        return NoSpaceError(named, hint=(inside or [(None, "free some space there")])[0][1])
    candidates = [NoSpaceError(f, hint=hint) for f, hint in folders] or [NoSpaceError(Path.cwd())]
    return min(candidates, key=lambda e: e.free if e.free is not None else float("inf"))
