"""``automl-tl serve``: a saved run behind an HTTP server (automl_tl.serve, docs/deploy.md)."""

from __future__ import annotations

import argparse
import signal
import sys

from automl_tl.cli._common import EXIT_OK, _positive_int


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value}: a port is 0 to 65535 (0: any free one)")
    return value


def _number(text: str, *, zero: bool) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (value >= 0 if zero else value > 0) or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text} must be a number {'of 0 or more' if zero else 'above 0'}")
    return value


def _positive_float(text: str) -> float:
    return _number(text, zero=False)


def _non_negative_float(text: str) -> float:
    return _number(text, zero=True)


def add_parsers(sub) -> None:
    """The ``serve`` command."""
    p = sub.add_parser("serve", help="serve a saved run over HTTP (POST /predict, GET /metadata, /docs)",
                       description="Load the run's model once and answer HTTP requests: POST /predict with "
                                   "image or audio files (multipart/form-data) or texts as JSON {\"texts\": [...]} "
                                   "gives each input's label and calibrated probabilities, as `automl-tl predict` "
                                   "does; GET /health, GET /metadata (classes, backbone, strategy, metric, the "
                                   "estimate on new data), OpenAPI docs at /docs. Requests arriving together "
                                   "share one forward pass. Ctrl-C or SIGTERM stops it cleanly. Needs "
                                   "pip install 'automl-tl[serve]'.")
    p.add_argument("run_dir", help="a run directory written by `automl-tl fit` (or AutoTransfer.save)")
    p.add_argument("--host", default="127.0.0.1",
                   help="the address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 for every "
                        "interface)")
    p.add_argument("--port", type=_port, default=8000, help="the port (default 8000)")
    p.add_argument("--batch-window-ms", type=_non_negative_float, default=5.0, metavar="MS",
                   help="how long a request waits for others to share its forward pass (default 5; 0: only "
                        "requests already waiting share it)")
    p.add_argument("--max-batch", type=_positive_int, default=64, metavar="N",
                   help="the most inputs in one forward pass (default 64)")
    p.add_argument("--max-items", type=_positive_int, default=256, metavar="N",
                   help="the most inputs in one request; more are refused with 413 (default 256)")
    p.add_argument("--max-body-mb", type=_positive_float, default=32.0, metavar="MB",
                   help="the largest request body; larger ones are refused with 413 (default 32)")


def cmd_serve(args) -> int:
    from automl_tl.serve import ServeSettings, serve

    settings = ServeSettings(batch_window_ms=args.batch_window_ms, max_batch=args.max_batch,
                             max_items=args.max_items, max_body_mb=args.max_body_mb)
    try:
        stopped_by = serve(args.run_dir, host=args.host, port=args.port, settings=settings,
                           announce=lambda line: print(line, file=sys.stderr, flush=True))
    except KeyboardInterrupt:  # while the model loads, before the server listens
        stopped_by = signal.SIGINT
    if stopped_by == signal.SIGINT:
        print("stopped (Ctrl-C)", file=sys.stderr)
        return 130
    print("stopped" + (" (SIGTERM)" if stopped_by == signal.SIGTERM else ""), file=sys.stderr)
    return EXIT_OK


COMMANDS = {"serve": cmd_serve}
