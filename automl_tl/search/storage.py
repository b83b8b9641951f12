"""The study's storage: the SQLAlchemy URL of a run's study, and waiting for a database server
that went away (:class:`_Reconnecting`), with the errors that say so without printing a password.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from automl_tl.errors import ConfigError, DatabaseUnreachableError, env_seconds

__all__ = ["storage_url", "open_storage", "database_address", "db_wait_s", "DB_BACKOFF_S"]

log = logging.getLogger("automl_tl")


def storage_url(run_dir: Path, storage: str | None) -> str:
    """The SQLAlchemy URL of the study: the run's own SQLite file by default. A plain
    ``postgresql://`` URL gets the psycopg (3) driver that ``automl-tl[postgres]`` installs
    (SQLAlchemy's default for it is psycopg2, which that extra does not install)."""
    if not storage:
        return f"sqlite:///{(Path(run_dir) / 'study.db').resolve()}"
    if storage.startswith(("postgresql://", "postgres://")):
        import importlib.util

        if importlib.util.find_spec("psycopg2") is None and importlib.util.find_spec("psycopg") is not None:
            return "postgresql+psycopg://" + storage.split("://", 1)[1]
    return storage


def db_wait_s() -> float:
    """How long a worker waits for its database server to come back (a restart, a failover, a
    network cut) before it stops with "cannot reach the database" (exit 2); seconds
    (``AUTOML_TL_DB_WAIT_S``, 120 by default). Read when a storage opens, not at import: the
    process's environment then, as for a process forked after its imports."""
    return env_seconds("AUTOML_TL_DB_WAIT_S", 120)


#: the first wait between tries, doubled after each up to the last
DB_BACKOFF_S = (0.5, 10.0)


def database_address(url: str) -> str:
    """``HOST:PORT`` of a server URL (never its password)."""
    from sqlalchemy.engine import make_url

    try:
        u = make_url(url)
    except Exception:  # noqa: BLE001 - not a URL SQLAlchemy reads: say nothing of its parts
        return "the --storage URL"
    return f"{u.host or 'localhost'}:{u.port or {'postgresql': 5432, 'mysql': 3306}.get(u.get_backend_name(), '')}"


def _hide_password(url: str, text: str | None = None) -> str:
    """``url`` with its password as ``***``; with ``text``, that text with the password hidden."""
    from sqlalchemy.engine import make_url

    try:
        u = make_url(url)
    except Exception:  # noqa: BLE001 - unreadable: show none of it
        shown = url.split("://", 1)[0] + "://..." if "@" in url else url
        return shown if text is None else text.replace(url, shown)
    if text is None:
        return u.render_as_string(hide_password=True)
    return text.replace(u.password, "***") if u.password else text


def _connection_lost(exc: BaseException | None) -> BaseException | None:
    """The driver's error (or SQLAlchemy's) when ``exc``'s chain holds a lost or refused database
    connection: SQLAlchemy's ``OperationalError`` or ``InterfaceError`` (the driver's, e.g.
    psycopg's ``AdminShutdown``, under them), or one SQLAlchemy marks as a disconnect. Optuna wraps a failed commit in a
    ``StorageInternalError`` ("invalid data in the commit") whose cause is one of these. None
    for any other error."""
    import sqlalchemy.exc as sa

    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, (sa.OperationalError, sa.InterfaceError)) or getattr(exc, "connection_invalidated", False):
            return getattr(exc, "orig", None) or exc
        exc = exc.__cause__ or exc.__context__
    return None


def _creation_race(exc: BaseException) -> bool:
    """True when ``exc`` says another process created Optuna's tables (or its version row) in the
    moment between this one's check and its own creation: workers started together on an empty
    database. Optuna's ``RDBStorage`` checks, then creates, with no lock (PostgreSQL's
    ``DuplicateTable`` / ``UniqueViolation``, SQLite's "already exists"); opened again, it finds
    them made."""
    import sqlalchemy.exc as sa

    text = str(exc).lower()
    return isinstance(exc, sa.DBAPIError) and ("already exists" in text or "duplicate key" in text)


def _database_gone(exc: BaseException | None):
    """The :class:`~automl_tl.errors.DatabaseUnreachableError` in ``exc``'s chain, or None."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, DatabaseUnreachableError):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


class _Reconnecting:
    """Retries a database server's storage calls while the server is away, for :func:`db_wait_s`.

    Optuna's public API has no retry on a lost connection: this wraps each public method of the
    ``RDBStorage`` instance (the one place that does). A call whose connection is lost is tried
    again with backoff; the engine's ``pool_pre_ping`` replaces the dead connections. A failed
    commit was rolled back by the server, so trying it again does it once. Once the wait is spent
    the call raises :class:`~automl_tl.errors.DatabaseUnreachableError`, and so does every later
    call at once (the run is ending: nothing waits twice). A heartbeat that cannot be written is
    skipped (the next one is tried; a worker away longer than the grace period has its trial
    retried by another, as for any silent worker)."""

    #: private methods of the RDBStorage that Optuna's own wrapper of it (``_CachedStorage``) and
    #: its heartbeat call (Optuna 4 and 5): wrapped too, or a lost connection there is not waited for
    CALLED_BY_OPTUNA = ("_create_new_trial", "_get_trials", "_get_best_trial_id", "_get_stale_trial_ids",
                        "_set_trial_param")

    def __init__(self, url: str, wait_s: float | None = None) -> None:
        self.address, self.gone = database_address(url), False
        self.wait_s = db_wait_s() if wait_s is None else wait_s

    def wrap(self, storage) -> None:
        """Replace ``storage``'s public methods by ones that wait for the server."""
        import inspect

        for name in dir(storage):
            method = getattr(storage, name, None)
            if (not name.startswith("_") or name in self.CALLED_BY_OPTUNA) and inspect.ismethod(method) \
                    and name not in ("remove_session", "upgrade"):
                setattr(storage, name, self._wrap(name, method))

    def unreachable(self, exc: BaseException | None = None):
        self.gone = True
        why = f" ({type(exc).__name__})" if exc is not None else ""
        return DatabaseUnreachableError(
            f"cannot reach the database at {self.address}{why}: tried for {self.wait_s:.0f} s "
            f"(AUTOML_TL_DB_WAIT_S). Start the server (or check --storage), then run the same command "
            f"again: the finished trials are kept and the interrupted one is run again")

    def _wrap(self, name, method):
        def call(*args, **kwargs):
            if self.gone:
                if name == "record_heartbeat":
                    return None  # never an error in Optuna's heartbeat thread
                raise self.unreachable()
            start, pause, said = time.monotonic(), DB_BACKOFF_S[0], False
            while True:
                try:
                    return method(*args, **kwargs)
                except Exception as exc:  # noqa: BLE001 - only a lost connection is tried again
                    lost = _connection_lost(exc)
                    if lost is None:
                        raise
                    if name == "record_heartbeat":
                        return None  # the next beat is tried; see the class
                    left = start + self.wait_s - time.monotonic()
                    if left <= 0:
                        raise self.unreachable(lost) from None
                    if not said:
                        log.warning("the database at %s does not answer (%s); trying again for up to %.0f s",
                                    self.address, type(lost).__name__, left)
                        said = True
                    time.sleep(min(pause, left))
                    pause = min(2 * pause, DB_BACKOFF_S[1])

        return call


def open_storage(url: str, *, on_stale):
    """Optuna's ``RDBStorage`` at ``url``, waiting (bounded) for a database server that does not
    answer yet; a server's storage is wrapped to wait for it later too (:class:`_Reconnecting`).
    ``on_stale(study, trial)``: Optuna's heartbeat calls it for a trial whose worker went silent.
    Raises :class:`~automl_tl.errors.ConfigError` for a URL that cannot be opened."""
    import optuna

    from automl_tl.workers import grace_period_s, heartbeat_interval_s

    server = not url.startswith("sqlite")
    # two processes on one SQLite file wait for each other's writes instead of failing
    # with "database is locked" after SQLite's default 5 s; a server's connections are
    # checked before use, so those a restart broke are replaced (see _Reconnecting)
    engine = {"pool_pre_ping": True} if server else {"connect_args": {"timeout": 120}}
    start, pause, wait_s = time.monotonic(), DB_BACKOFF_S[0], db_wait_s()
    heartbeat = {"heartbeat_interval": heartbeat_interval_s(), "grace_period": grace_period_s()}
    while True:
        try:
            # Optuna's heartbeat fails the trial of a worker that stopped beating (killed, machine
            # gone) after the grace period; our callback queues it again as a retry that names it
            storage = optuna.storages.RDBStorage(
                url, engine_kwargs=engine, **heartbeat, heartbeat_stale_trial_callback=on_stale)
            break
        except Exception as exc:  # noqa: BLE001 - bad URL, driver missing, server down
            if _creation_race(exc) and time.monotonic() - start < wait_s:
                log.debug("another worker created the study's tables meanwhile; opening them: %s", exc)
                time.sleep(pause)
                continue
            if server and _connection_lost(exc) is not None:  # the server is away: wait for it, bounded
                if time.monotonic() - start < wait_s:
                    time.sleep(pause)
                    pause = min(2 * pause, DB_BACKOFF_S[1])
                    continue
                raise _Reconnecting(url).unreachable(_connection_lost(exc)) from None
            shown = _hide_password(url)
            raise ConfigError(f"cannot open the Optuna storage {shown!r}: {_hide_password(url, str(exc))}. Use a "
                              f"SQLAlchemy URL such as sqlite:///study.db or postgresql://user:pw@host/db "
                              f"(pip install 'automl-tl[postgres]').") from exc
    if server:
        _Reconnecting(url, wait_s).wrap(storage)
    return storage
