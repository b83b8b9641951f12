"""Start the server: the optional dependencies checked, the port bound, the model loaded once,
then uvicorn until Ctrl-C or SIGTERM, which stop it cleanly (requests in flight are answered)."""

from __future__ import annotations

import contextlib
import errno
import importlib
import logging
import signal
import socket
import threading
from pathlib import Path

from automl_tl.errors import ConfigError, NotFittedError
from automl_tl.serve._settings import ServeSettings

__all__ = ["require_serve", "bind", "build_server", "serve"]

_log = logging.getLogger("automl_tl")

#: the modules `automl-tl serve` needs, and the package each comes from
NEEDED = {"fastapi": "fastapi", "uvicorn": "uvicorn", "python_multipart": "python-multipart"}


def require_serve() -> None:
    """ConfigError (exit 2) naming the extra when a module of the server is not installed."""
    missing = []
    for module, package in NEEDED.items():
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(package)
    if missing:
        raise ConfigError(f"`automl-tl serve` needs {' and '.join(missing)}, not installed here: "
                          f"pip install 'automl-tl[serve]'")


def bind(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` (not listening yet: uvicorn listens once the app is
    ready); a port in use or a host that is not this machine's is a ConfigError (exit 2)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except (socket.gaierror, UnicodeError, OverflowError) as exc:
        raise ConfigError(f"--host {host} --port {port}: not an address to listen on ({exc}).") from None
    sock = socket.socket(family, kind, proto)
    # as uvicorn does: a port a stopped server left in TIME_WAIT is free; one listened on is not
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(f"port {port} on {host} is in use (another server?): stop that one, or give "
                              f"another --port.") from None
        raise ConfigError(f"cannot listen on {host}:{port} ({exc.strerror or exc}): give another --host "
                          f"or --port.") from None
    return sock


def _server_class():
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn's server, told which signal stopped it. uvicorn raises the signal again after
        its graceful shutdown, which kills the process by SIGTERM's default action or reaches
        the command's Ctrl-C handler as if a search had been interrupted; here the command's
        exit code says how it stopped instead."""

        stopped_by: int | None = None

        @contextlib.contextmanager
        def capture_signals(self):
            if threading.current_thread() is not threading.main_thread():
                yield  # only the main thread can listen (a server run in a thread by a test)
                return

            def on_signal(sig, frame):
                self.stopped_by = sig
                self.handle_exit(sig, frame)  # a second Ctrl-C stops without waiting

            previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

    return Server


def build_server(predictor, settings=None):
    """The uvicorn server of ``predictor`` (a loaded Predictor, warmed up here), to
    ``run(sockets=[...])``."""
    import uvicorn

    from automl_tl.serve._app import create_app
    from automl_tl.serve._passes import warm_up

    settings = settings or ServeSettings()
    warm_up(predictor, settings.max_batch)
    app = create_app(predictor, settings)
    # a broken multipart body is answered 400 with the reason; the parser's own warning about it
    # would print a line in the server's log for each such request
    logging.getLogger("python_multipart").setLevel(logging.ERROR)
    # log_config None: uvicorn's warnings go through automl-tl's logging, not a second setup
    config = uvicorn.Config(app, log_config=None, log_level="warning", access_log=False, lifespan="on",
                            timeout_graceful_shutdown=10)
    return _server_class()(config)


def serve(run_dir, *, host: str, port: int, settings=None, announce=print) -> int | None:
    """Serve the run in ``run_dir`` on ``host:port`` until a signal: returns the signal that
    stopped it. Everything the user can fix (no such run, no model in it, the port in use, the
    server's packages missing) fails before the server starts, as ConfigError or NotFittedError."""
    require_serve()
    from automl_tl.artifacts import load_predictor

    if not Path(run_dir).is_dir():
        raise NotFittedError(f"{run_dir}: no such folder. Give the run directory that `automl-tl fit` wrote "
                             f"(its --run-dir, by default runs/<data folder name>).")
    sock = bind(host, port)
    try:
        predictor = load_predictor(run_dir)  # NotFittedError when the folder holds no model
        server = build_server(predictor, settings)
        shown = f"[{host}]" if ":" in host else host
        announce(f"serving {run_dir} ({predictor.config.get('backbone')}, {len(predictor.labels)} classes) on "
                 f"http://{shown}:{sock.getsockname()[1]}  (POST /predict, GET /metadata, docs at /docs); "
                 f"Ctrl-C stops it")
        server.run(sockets=[sock])
    finally:
        sock.close()
    if not server.started:
        raise ConfigError(f"the server for {run_dir} did not start (see the lines above).")
    return server.stopped_by
