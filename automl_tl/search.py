"""The search loop (keras-tuner's three roles kept apart).

- The space is :class:`~automl_tl.space.SearchSpace` (``suggest(trial) -> TrialConfig``), seeded
  by the strategy table's recommendation (enqueued first) and by the linear probe of every
  candidate backbone.
- The proposer is Optuna's: a sampler and a pruner, configuration of :class:`Search` (defaults:
  :func:`default_sampler`, TPE; :func:`default_pruner`, :mod:`automl_tl.pruners`).
- The evaluator is the trial's strategy (:func:`automl_tl.training.run_trial`).

:class:`Search` is the loop between them: it runs each trial one ``optimize(n_trials=1)`` at a
time (Optuna keeps the heartbeat and the trial's state), decides between trials whether to go on
(budget, time left, saturation, patience), what a failure means (:mod:`automl_tl.fates`), keeps
the run directory's views up to date after every trial, then delivers the trial the
one-standard-error rule selects, refitted on all labelled data.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
import traceback
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from automl_tl.artifacts import STUDY_NAME, SUMMARY_ATTR, remove_leftovers, save_model, write_views
from automl_tl.costs import CostModel
from automl_tl.calibration import Calibration, calibrate
from automl_tl.atomic import json_default
from automl_tl.schema import ATTR, SCHEMA_VERSION, TASK_KEYS, retry_links, task_changes
from automl_tl.errors import ConfigError, TrialFailed
from automl_tl.pruners import DEFAULT_PRUNER, make_pruner
from automl_tl.evaluation import Candidate, Ensemble, Selection, complexity, ensemble, select
from automl_tl.grouping import on_new_data, spread_term
from automl_tl.fates import Fate, fate_of, interrupted, watch_interrupts
from automl_tl.killpoints import kill_point
from automl_tl.workers import GRACE_PERIOD_S, HEARTBEAT_INTERVAL_S, identity, is_gone
from automl_tl.space import SearchSpace
from automl_tl.strategies import FEATURE_EXTRACTION
from automl_tl.training import (RefitStopped, TrialConfig, TrialContext, classifier, run_trial,
                                train_final)

__all__ = ["SearchSpace", "Search", "storage_url", "CostModel", "default_sampler", "default_pruner"]

log = logging.getLogger("automl_tl")

#: seconds kept free at the end of a time budget for saving the model and writing the report
SAVE_MARGIN_S = 8.0
#: a refit is attempted when its predicted cost is within this factor of the time left, or is
#: cheap: it stops at the deadline anyway (keeping the search's model), and the time after the
#: search is otherwise unused
REFIT_SLACK = 2.0
CHEAP_REFIT_S = 10.0


def default_sampler(seed: int):
    """TPE, multivariate over grouped (conditional) parameters, five random proposals first; the
    constant liar keeps parallel workers from proposing the same point."""
    import optuna

    return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True, n_startup_trials=5,
                                      constant_liar=True)


def default_pruner():
    """The default pruner (:data:`automl_tl.pruners.DEFAULT_PRUNER`)."""
    return make_pruner(DEFAULT_PRUNER)


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


#: how long a worker waits for its database server to come back (a restart, a failover, a
#: network cut) before it stops with "cannot reach the database" (exit 2); seconds
DB_WAIT_S = float(os.environ.get("AUTOML_TL_DB_WAIT_S", "120"))
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


def _database_gone(exc: BaseException | None):
    """The :class:`~automl_tl.errors.DatabaseUnreachableError` in ``exc``'s chain, or None."""
    from automl_tl.errors import DatabaseUnreachableError

    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, DatabaseUnreachableError):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


class _Reconnecting:
    """Retries a database server's storage calls while the server is away, for :data:`DB_WAIT_S`.

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
        self.wait_s = DB_WAIT_S if wait_s is None else wait_s

    def wrap(self, storage) -> None:
        """Replace ``storage``'s public methods by ones that wait for the server."""
        import inspect

        for name in dir(storage):
            method = getattr(storage, name, None)
            if (not name.startswith("_") or name in self.CALLED_BY_OPTUNA) and inspect.ismethod(method) \
                    and name not in ("remove_session", "upgrade"):
                setattr(storage, name, self._wrap(name, method))

    def unreachable(self, exc: BaseException | None = None):
        from automl_tl.errors import DatabaseUnreachableError

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


# proposals in a row that repeat a finished deterministic trial before the search calls its space
# exhausted (a probe-only space, e.g. one classical featurizer, has a single configuration)
MAX_REPEATS = 10
#: a hidden-layer head on a backbone's frozen features is not tried while that backbone's best
#: linear trial trails another backbone's by more than this many standard errors of the gap: a new
#: head on the same features has not closed such a gap on any benchmark task (hidden heads score
#: within a few points of the linear one on the same features), and such trials took 140 s of the
#: 10 minutes on Rotten Tomatoes 2 000 (TF-IDF, 0.70 against MiniLM's 0.77 probe)
TRAILING_SE = 3.0


class Search:
    def __init__(self, *, ctx: TrialContext, space: SearchSpace, run_dir, recommendation,
                 storage: str | None = None, seed: int = 0, labels: Sequence[str] = (),
                 summary_base: Mapping[str, Any] | None = None, probes: Sequence[Mapping] = (),
                 rec_options: Mapping[str, Any] | None = None, patience: int = 15,
                 seconds_per_item: Mapping[str, float] | None = None,
                 feature_dims: Mapping[str, int] | None = None, warm_start: Sequence[Mapping] = (),
                 sampler=default_sampler, pruner=None) -> None:
        """``sampler``: a function of the seed returning an Optuna sampler (called with the seed
        plus the number of trials already in the study, so a resumed search does not replay its
        proposals); ``pruner``: an Optuna pruner (default :func:`default_pruner`); ``warm_start``:
        configurations of the nearest past tasks (:func:`automl_tl.knowledge.warm_start_configs`),
        enqueued after the recommendation and the probes."""
        self.ctx = ctx
        self.space = space
        self.run_dir = Path(run_dir)
        self.recommendation = recommendation
        self.rec_options = dict(rec_options or {})
        self.probes = list(probes)
        self.warm_start = list(warm_start)
        self.storage = storage
        self.seed = seed
        self.labels = list(labels)
        self.summary_base = dict(summary_base or {})
        #: seconds this process spent running trials and delivering (summary.json ``timings``)
        self.timings: dict[str, float] = {}
        self.patience = patience
        plan = ctx.plan
        self.costs = CostModel(seconds_per_item=seconds_per_item or {}, n_train=len(plan.train),
                               n_val=len(plan.val), n_all=len(ctx.y), k_folds=plan.k,
                               feature_dims=feature_dims,
                               frozen=[n for n, st in space.strategies.items() if not st.fine_tunes])
        self.stop: dict[str, Any] = {}
        self.delivered: dict[str, Any] = {}
        self._saved_trial: int | None = None
        self._results: dict[int, Any] = {}  # trial number -> TrialResult of this process (models in memory)
        self._preds: dict[int, tuple] = {}  # trial number -> (scored items, predicted, p(true class), probabilities)
        self._paired: dict = {}  # (top trial, other trial) -> paired gap and its standard error
        self.refit = True
        self.ensemble = True
        self.trials: int | None = None  # the trial budget of the running search (global: all workers)
        self._over_budget = False
        self._current: int | None = None  # the number of the trial this worker runs or ran last
        self.make_sampler = sampler
        self.pruner = pruner if pruner is not None else default_pruner()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.study = self._open_study()

    # ------------------------------------------------------------------ study
    def _open_study(self):
        import optuna

        optuna.logging.set_verbosity(optuna.logging.ERROR)  # failures: one line from our log, tracebacks in the study
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        url = storage_url(self.run_dir, self.storage)
        server = not url.startswith("sqlite")
        # two processes on one SQLite file wait for each other's writes instead of failing
        # with "database is locked" after SQLite's default 5 s; a server's connections are
        # checked before use, so those a restart broke are replaced (see _Reconnecting)
        engine = {"pool_pre_ping": True} if server else {"connect_args": {"timeout": 120}}
        start, pause = time.monotonic(), DB_BACKOFF_S[0]
        while True:
            try:
                # Optuna's heartbeat fails the trial of a worker that stopped beating (killed, machine
                # gone) after the grace period; our callback queues it again as a retry that names it
                storage = optuna.storages.RDBStorage(
                    url, engine_kwargs=engine, heartbeat_interval=HEARTBEAT_INTERVAL_S, grace_period=GRACE_PERIOD_S,
                    heartbeat_stale_trial_callback=self.on_stale)
                break
            except Exception as exc:  # noqa: BLE001 - bad URL, driver missing, server down
                if server and _connection_lost(exc) is not None:  # the server is away: wait for it, bounded
                    if time.monotonic() - start < DB_WAIT_S:
                        time.sleep(pause)
                        pause = min(2 * pause, DB_BACKOFF_S[1])
                        continue
                    raise _Reconnecting(url).unreachable(_connection_lost(exc)) from None
                shown = _hide_password(url)
                raise ConfigError(f"cannot open the Optuna storage {shown!r}: {_hide_password(url, str(exc))}. Use a "
                                  f"SQLAlchemy URL such as sqlite:///study.db or postgresql://user:pw@host/db "
                                  f"(pip install 'automl-tl[postgres]').") from exc
        if server:
            _Reconnecting(url).wrap(storage)
        # Exactly one process creates the study (the storage's unique study name decides), and
        # only it queues the starting trials: two workers starting together queue them once.
        try:
            study = optuna.create_study(study_name=STUDY_NAME, storage=storage, pruner=self.pruner,
                                        direction="maximize")
            created = True
        except optuna.exceptions.DuplicatedStudyError:
            study = optuna.load_study(study_name=STUDY_NAME, storage=storage, pruner=self.pruner)
            created = False
        self._check_same_task(study, created)
        remove_leftovers(self.run_dir)
        self._recover_interrupted(study)
        existing = len(study.get_trials(deepcopy=False))
        # A resumed search must not replay the proposals it already made: the sampler's seed
        # moves on with the trials already in the study (from scratch, a seed still gives the
        # same sequence). Seeding with the seed alone made `--trials 3` then `--trials 6` run
        # trials 3 and 4 as copies of 1 and 2. Workers started together differ by their pid.
        study.sampler = self.make_sampler(self.seed + existing + (0 if created else os.getpid()))
        if created:
            self._enqueue_start(study)
        return study

    def _check_same_task(self, study, created: bool) -> None:
        """Workers that join a study must search the same task: the same data and labels, seed,
        validation fraction and metric (the trials are only comparable on the same split)."""
        task = {k: v for k, v in (self.summary_base.get("task") or {}).items() if k in TASK_KEYS}
        if created:
            study.set_user_attr("task", task)
            return
        differ = task_changes(study.user_attrs.get("task") or {}, task)
        if differ:
            raise ConfigError(
                f"the study in {_hide_password(self.storage) if self.storage else 'this run directory'} searches "
                f"another task ({', '.join(differ)} "
                f"differ): every worker of one search must use the same data, labels, --seed, --val-fraction "
                f"and --metric; give a new database (or run directory) for a new task")

    def _enqueue_start(self, study) -> None:
        """Trial 0 is the recommendation; then the linear probe of every other (backbone,
        options) pair, so every candidate is on the leaderboard with the baseline's strength."""
        first = self.space.enqueue_params(self.recommendation, self.rec_options)
        queue: list[tuple[dict, dict]] = []
        if self.recommendation.strategy == FEATURE_EXTRACTION and first.get("head_units"):
            # the table asks for a new (hidden-layer) head: it follows the linear probe it must beat
            options = {k.split(":", 1)[1]: v for k, v in first.items() if ":" in k}
            linear = self.space.probe_params(first["backbone"], options)
            queue += [(linear, {"recommended": True}), (first, {"table_head": True})]
        else:
            queue.append((first, {"recommended": True}))
        for p in self.probes:
            params = self.space.probe_params(p["backbone"], p["options"])
            if all(params != q for q, _ in queue):
                queue.append((params, {"probe": True}))
        # then what won on the nearest past tasks (the probes before them cost next to nothing:
        # their features are cached)
        for w in self.warm_start:
            params = self.space.point(w["params"])
            if all(params != q for q, _ in queue):
                queue.append((params, {"warm_start": w["label"], "warm_start_distance": w["distance"]}))
        for params, attrs in queue:
            study.enqueue_trial(params, user_attrs=attrs)

    def _recover_interrupted(self, study) -> None:
        """Fail the RUNNING trials whose process is gone (it ran on this machine and its pid is
        no more: a crash or kill -9) and queue each again, once, as a retry that names it
        (``retry_of``); the leaderboard derives the failed trial's reason from that link. A
        trial of a live process, or of another machine, is left to Optuna's heartbeat."""
        import optuna

        for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
            if is_gone(t.user_attrs.get(ATTR.WORKER)):
                try:
                    study.tell(t.number, state=optuna.trial.TrialState.FAIL)
                except (ValueError, optuna.exceptions.UpdateFinishedTrialError):
                    continue  # another worker got there first (tell refuses a finished trial), and retried it
                self._retry(study, t)

    @staticmethod
    def on_stale(study, trial) -> None:
        """Optuna's heartbeat failed ``trial`` (its worker stopped beating): retry it, once."""
        log.warning("trial %d: its worker stopped sending heartbeats; queued again", trial.number)
        Search._retry(study, trial)

    @staticmethod
    def _retry(study, t, *, always: bool = False) -> None:
        """Queue ``t``'s parameters again unless ``t`` was itself a retry (one retry per trial);
        ``always``: a retry too (a trial stopped by a full disk did not fail on its merits)."""
        if (always or t.user_attrs.get("retry_of") is None) and t.params:
            study.enqueue_trial(dict(t.params), user_attrs={
                "retry_of": t.number, "recommended": bool(t.user_attrs.get("recommended", False))})

    def _trials(self, states=None):
        import optuna

        done = states or (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED,
                          optuna.trial.TrialState.FAIL)
        return [t for t in self.study.get_trials(deepcopy=False, states=done)
                if not t.user_attrs.get("not_started")]

    def _trial(self, number: int):
        return self.study.get_trials(deepcopy=False)[number]

    def finished_trials(self) -> int:
        return len(self._trials())

    def counted_trials(self, before: int | None = None) -> int:
        """Trials that count against the (global) trial budget: finished or running, in any
        worker; not proposals that were not run, nor interrupted trials (their retry counts);
        with ``before``, only trials numbered lower."""
        import optuna

        states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED,
                  optuna.trial.TrialState.FAIL, optuna.trial.TrialState.RUNNING)
        trials = self.study.get_trials(deepcopy=False)
        retried = retry_links(trials)
        return sum(1 for t in trials if t.state in states and not t.user_attrs.get(ATTR.NOT_STARTED)
                   and t.number not in retried and (before is None or t.number < before))

    # ------------------------------------------------------------------ selection
    def candidates(self) -> list[Candidate]:
        import optuna

        out = []
        for t in self.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
            if t.value is None:
                continue
            a = t.user_attrs
            spec = self.space.specs.get(t.params.get("backbone"))
            index, pred, p_true, proba = self._predicted(t.number)
            se, spread = float(a.get("score_se", float("nan"))), self._spread(index)
            out.append(Candidate(
                trial=t.number, score=float(t.value), se=float(np.hypot(se, spread)), spread=spread,
                seconds=float(a.get("seconds", 0.0)),
                complexity=complexity(self._rank(a.get("strategy", FEATURE_EXTRACTION)), t.params.get("head_units", 0),
                                      bool(getattr(spec, "classical", False)),
                                      unfreeze_blocks=t.params.get("unfreeze_blocks")),
                index=index, pred=pred, p_true=p_true, proba=proba))
        return out

    def _spread(self, index) -> float:
        """The between-source part of the standard error of a score measured on the items ``index``
        (:func:`automl_tl.grouping.spread_term`): none without groups or over enough sources."""
        spread = float((self.summary_base.get("groups") or {}).get("spread") or 0.0)
        if not spread or index is None or self.ctx.data.groups is None:
            return 0.0
        return spread_term(spread, len(set(np.asarray(self.ctx.data.groups)[np.asarray(index)].tolist())))

    def _rank(self, strategy: str) -> int:
        s = self.space.strategies.get(strategy)
        return s.rank if s is not None else 3

    def _predicted(self, number: int):
        """The items trial ``number`` was scored on, its predicted classes, the probability it gave
        each item's true class and all its class probabilities (from memory, else from the study;
        None where not recorded)."""
        if number not in self._preds:
            self._preds[number] = _unpack_predictions(self._trial(number).user_attrs.get(ATTR.PREDICTIONS))
        return self._preds[number]

    def selection(self) -> Selection | None:
        from automl_tl.metrics import metric_function

        return select(self.candidates(), y=self.ctx.y, metric=metric_function(self.ctx.metric),
                      cache=self._paired)

    # ------------------------------------------------------------------ running
    def run(self, *, trials: int | None = None, deadline: float | None = None, refit: bool = True,
            progress: bool = False, no_refit_reason: str = "--no-refit", ensemble: bool = True):
        """Run trials until the trial budget, the ``deadline`` (``time.monotonic()``) or a stop
        rule; then deliver the selected trial (refitted on all labelled data when ``refit``;
        averaged with cheap trials that improve it on validation when ``ensemble``).

        Each step is ``study.optimize(n_trials=1)``: Optuna keeps doing what it does well (the
        heartbeat, failing stale trials, telling the trial's state), while this loop decides
        between trials whether to go on.
        """
        if trials is None and deadline is None:
            raise ConfigError("give a trial budget (--trials) or a time budget (--time-budget)")
        from tqdm.auto import tqdm

        self.refit = refit
        self.ensemble = ensemble
        self.trials = trials
        self._over_budget = False
        self.no_refit_reason = no_refit_reason
        bar = tqdm(total=trials, desc="trials", unit="trial", disable=not progress, leave=False,
                   initial=min(self.finished_trials(), trials or 0))
        t_start = time.monotonic()
        self._not_started_in_a_row = 0
        self._repeats_in_a_row = 0
        with watch_interrupts():
            try:
                self._loop(trials, deadline, bar)
            finally:
                bar.close()
            self.timings["trials"] = round(time.monotonic() - t_start, 2)
            self.stop.setdefault("seconds", round(self.timings["trials"], 1))
            log.info("search stopped: %s", self.stop.get("reason"))
            t_deliver = time.monotonic()
            self.deliver(deadline=deadline)
            self.timings["deliver"] = round(time.monotonic() - t_deliver, 2)
            self._raise_if_interrupted()
        self.write_summary(finished=True)
        return self.study

    @staticmethod
    def _raise_if_interrupted() -> None:
        """A Ctrl-C that library code swallowed or turned into another error still stops the run."""
        if interrupted():
            raise KeyboardInterrupt

    def _loop(self, trials, deadline, bar) -> None:
        import optuna

        while True:
            why = self._why_stop(trials, deadline)
            if why:
                self.stop = why
                break
            self._recover_interrupted(self.study)
            try:
                self.study.optimize(lambda trial: self._objective(trial, deadline), n_trials=1,
                                    catch=(TrialFailed,), callbacks=[self._after_trial_callback],
                                    gc_after_trial=True)
            except (optuna.exceptions.UpdateFinishedTrialError, ValueError) as exc:
                # another worker failed this trial (no heartbeat within the grace period, e.g. a
                # machine frozen that long) and queued its retry: Optuna then cannot tell it
                # (UpdateFinishedTrialError, or ValueError from tell); the retry stands, go on
                if not self._taken_over():
                    raise
                log.warning("trial %d was failed by another worker (no heartbeat for %d s) and queued "
                            "again; this worker goes on (%s)", self._current, GRACE_PERIOD_S, type(exc).__name__)
            except Exception as exc:  # noqa: BLE001 - the database gone is said as such
                gone = _database_gone(exc)
                if gone is None:
                    raise
                # Optuna's _run_trial masks it (an UnboundLocalError from its `finally` when even
                # reading the trial fails): the worker stops with the error that says why
                raise gone from None
            self._raise_if_interrupted()
            if self._over_budget:
                self.stop = {"kind": "trials", "reason": f"the trial budget ({trials}) is used"}
                break
            if self._repeats_in_a_row >= MAX_REPEATS:
                self.stop = self._early({
                    "kind": "exhausted",
                    "reason": f"the last {MAX_REPEATS} configurations the sampler proposed had all been "
                              f"tried (or were heads on far-trailing features): the search space is "
                              f"exhausted"}, trials, deadline)
                break
            if self._repeats_in_a_row:
                continue
            if self._not_started_in_a_row == 0:
                bar.update(1)
            elif self._not_started_in_a_row >= 3:
                self.stop = {"kind": "time", "reason": "the time left fits none of the trials the "
                                                       "search proposes"}
                break

    def _taken_over(self) -> bool:
        """Whether this worker's current trial was failed and retried by another worker."""
        if self._current is None:
            return False
        trials = self.study.get_trials(deepcopy=False)
        return trials[self._current].state.name == "FAIL" and self._current in retry_links(trials)

    def _reserve(self) -> float:
        """Seconds kept for the refit of the currently selected trial and for saving."""
        sel = self.selection()
        if sel is None or not self.refit:
            return SAVE_MARGIN_S
        t = self._trial(sel.trial)
        return SAVE_MARGIN_S + self.costs.refit(self.space.config(t.params), t.user_attrs.get("epochs"), t)

    def _why_stop(self, trials, deadline) -> dict | None:
        n = self.counted_trials()
        if trials is not None and n >= trials:
            return {"kind": "trials", "reason": f"the trial budget ({trials}) is used"}
        if deadline is not None and time.monotonic() >= deadline - self._reserve() and not self._first_owed():
            return {"kind": "time", "reason": "the time budget is used (what is left is kept for the "
                                              "refit and saving)"}
        if not self.patience:  # early stopping turned off
            return None
        sel = self.selection()
        if sel is not None and sel.top_score >= 1.0 - 1e-12:
            # saturated under the estimate that matches deployment: with sources, the folds that hold
            # them out (automl_tl.grouping), so a baseline that memorises the sources never stops it
            groups = self.summary_base.get("groups") or {}
            on = f"validation on new {groups['units']}" if groups.get("used") else "validation"
            return self._early({"kind": "saturated",
                                "reason": f"{on} is saturated: trial {sel.top_trial} scores "
                                          f"{sel.top_score:.4f}, no trial can score higher on this data"},
                               trials, deadline)
        if self._stagnant() >= self.patience:
            return self._early({"kind": "patience",
                                "reason": f"no improvement beyond half a standard error in the last "
                                          f"{self.patience} trials"}, trials, deadline)
        return None

    def _early(self, why: dict, trials, deadline) -> dict:
        if deadline is not None:
            why["seconds_saved"] = round(max(0.0, deadline - time.monotonic() - self._reserve()), 1)
        if trials is not None:
            done = self._trials()
            why["trials_saved"] = max(0, trials - len(done))
            secs = [t.user_attrs.get("seconds", 0.0) for t in done]
            if "seconds_saved" not in why and secs:
                why["seconds_saved"] = round(float(np.mean(secs)) * why["trials_saved"], 1)
        return why

    def _stagnant(self) -> int:
        """Trials finished since the last one that raised the top score by more than half its
        standard error. (Optuna's BestValueStagnationEvaluator counts any rise, noise included.)"""
        import optuna

        done = sorted(self._trials(), key=lambda t: t.number)
        best, band, last = -math.inf, 0.0, -1
        for i, t in enumerate(done):
            if t.state == optuna.trial.TrialState.COMPLETE and t.value is not None and t.value > best + band:
                se = float(t.user_attrs.get("score_se", 0.0) or 0.0)
                best, band, last = float(t.value), 0.5 * (se if math.isfinite(se) else 0.0), i
        return len(done) - 1 - last

    def _first_owed(self) -> bool:
        """Whether the run still owes its user a first model: no trial has run yet (complete,
        pruned or failed). A budget that the profile and the probe used up (``--time-budget 5s``)
        still gets one linear probe on the cached features (about a second), rather than an exit
        with nothing; proposals that do not fit are still refused (and a feature-extraction one
        queued), so this ends after at most one trial."""
        return not self._trials()

    def _fits(self, cfg: TrialConfig, deadline) -> str | None:
        """None if the trial fits the time left, else why not."""
        if deadline is None:
            return None
        if cfg.strategy == FEATURE_EXTRACTION and cfg.linear_head and self._first_owed():
            return None  # the owed first model: cheap on features the probe cached
        left = deadline - time.monotonic() - self._reserve()
        predicted = self.costs.predict(cfg, self._trials())
        if predicted <= left:
            return None
        return f"not started: its predicted cost ({predicted:.0f} s) exceeds the time left ({max(0.0, left):.0f} s)"

    def _repeat_of(self, trial, cfg: TrialConfig) -> int | None:
        """The earlier complete trial with exactly these parameters, when the configuration is
        deterministic (a linear probe on frozen features); None otherwise. (Optuna's samplers
        re-propose a good categorical configuration often; it has no built-in deduplication.)"""
        import optuna

        if cfg.strategy != FEATURE_EXTRACTION or not cfg.linear_head:
            return None
        params = dict(trial.params)
        # a RUNNING twin counts too: another worker is computing the same score right now
        for t in self._trials((optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.RUNNING)):
            if t.number != trial.number and dict(t.params) == params:
                return t.number
        # and so does a queued one (a retry of an interrupted trial, enqueued by another worker
        # after this trial was sampled): it will compute this score. Its parameters are Optuna's
        # fixed_params until a worker pops it.
        for t in self.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,)):
            if t.system_attrs.get("fixed_params") == params:
                return t.number
        return None

    def _objective(self, trial, deadline) -> float:
        import optuna

        t0 = time.perf_counter()
        history: list = []
        self._current = trial.number
        trial.set_user_attr(ATTR.WORKER, identity())
        cfg = self.space.suggest(trial)
        trial.set_user_attr(ATTR.STRATEGY, cfg.strategy)
        if self.trials is not None and self.counted_trials(before=trial.number) >= self.trials:
            # another worker took the last trial of the budget between our check and this trial
            why = f"not run: the trial budget ({self.trials}) is used by other workers"
            trial.set_user_attr(ATTR.NOT_STARTED, why)
            self._over_budget = True
            raise optuna.TrialPruned(why)
        kill_point("trial")
        why_not = self._not_to_run(trial, cfg, deadline)
        if why_not is not None:
            raise optuna.TrialPruned(why_not)
        trial_deadline = None if deadline is None else deadline - self._reserve()
        ctx = replace(self.ctx, seed=self.seed + trial.number, deadline=trial_deadline)
        result = self._run_with_fates(trial, cfg, ctx, t0, history)
        ft_run = sum(1 for h in history if h.get("phase") == "fine_tune")
        for key, value in ((ATTR.SCORE_SE, result.se), (ATTR.N_EVAL, result.n_eval),
                           (ATTR.EVALUATION, result.evaluation), (ATTR.EPOCHS, result.epochs), (ATTR.C, result.C),
                           (ATTR.FT_EPOCHS_RUN, ft_run), (ATTR.STOPPED_EARLY, result.stopped_early)):
            if value not in (None, "", {}):
                trial.set_user_attr(key, value)
        self._record(trial, cfg, "COMPLETE", result.score, t0, history, result=result)
        self.costs.observe(cfg, time.perf_counter() - t0, ft_run)
        self._results[trial.number] = result
        return result.score

    def _not_to_run(self, trial, cfg: TrialConfig, deadline) -> str | None:
        """Why this proposal is not run (recorded on the trial), or None: run it."""
        repeat = self._repeat_of(trial, cfg)
        if repeat is not None:
            # a linear probe is a function of its configuration and the folds: running it again
            # gives the same score, so it is not run and not counted against the trial budget
            why = f"not run: a repeat of trial {repeat} (same configuration, same score)"
            trial.set_user_attr(ATTR.NOT_STARTED, why)
            trial.set_user_attr(ATTR.REPEAT_OF, repeat)
            self._repeats_in_a_row += 1
            return why
        trailing = self._trailing(cfg)
        if trailing is not None:
            # cheap to decide, not counted: like a repeat, the sampler is told PRUNED and asked again
            leader, why = trailing
            trial.set_user_attr(ATTR.NOT_STARTED, why)
            trial.set_user_attr(ATTR.TRAILS, leader)
            self._repeats_in_a_row += 1
            return why
        self._repeats_in_a_row = 0
        why_not = self._fits(cfg, deadline)
        if why_not is not None:
            # told PRUNED (the sampler learns to avoid it), never counted as a trial; the next
            # proposal is a feature-extraction one, which is cheap
            trial.set_user_attr(ATTR.NOT_STARTED, why_not)
            trial.set_user_attr(ATTR.FAIL_REASON, why_not)
            self._not_started_in_a_row += 1
            if self.space.strategies.get(cfg.strategy) is None or self.space.strategies[cfg.strategy].fine_tunes:
                # while no trial has run, the linear probe (the owed first model, see _first_owed)
                self.study.enqueue_trial({"strategy": FEATURE_EXTRACTION}
                                         | ({"head_units": 0} if self._first_owed() else {}))
            return why_not
        self._not_started_in_a_row = 0
        return None

    def _trailing(self, cfg: TrialConfig) -> tuple[int, str] | None:
        """``(leader, why)`` when ``cfg`` is a hidden-layer head on frozen features of a backbone
        whose best linear trial trails another backbone's (trial ``leader``) by more than
        :data:`TRAILING_SE` standard errors of the gap; None otherwise (or before its linear
        trial has run)."""
        import optuna

        if cfg.strategy != FEATURE_EXTRACTION or cfg.linear_head:
            return None
        best: dict[str, tuple[float, float, int]] = {}
        for t in self._trials((optuna.trial.TrialState.COMPLETE,)):
            c = self.space.config(t.params)
            se = float(t.user_attrs.get(ATTR.SCORE_SE, math.nan) or 0.0)
            if c.strategy == FEATURE_EXTRACTION and c.linear_head and t.value is not None and math.isfinite(se):
                if c.backbone not in best or t.value > best[c.backbone][0]:
                    best[c.backbone] = (float(t.value), se, t.number)
        own = best.pop(cfg.backbone, None)
        if own is None or not best:
            return None
        score, se, leader = max(best.values())
        gap = score - own[0]
        if gap <= TRAILING_SE * math.hypot(se, own[1]) or gap <= 0:
            return None
        name = self._trial(leader).params.get("backbone")
        return leader, (f"not run: its linear head is {gap:.3f} behind trial {leader}'s ({name}): too far "
                        f"for a new head on the same features")

    def _run_with_fates(self, trial, cfg: TrialConfig, ctx, t0, history):
        """Run the trial; an exception's type decides what follows (:mod:`automl_tl.fates`)."""
        import optuna

        while True:
            try:
                return run_trial(cfg, ctx, trial=trial, history=history)
            except optuna.TrialPruned:
                self._record(trial, cfg, "PRUNED", None, t0, history)
                raise
            except BaseException as exc:  # noqa: BLE001 - the fates table decides
                what, fate = fate_of(exc)
                if fate is Fate.RETRY_SMALLER_BATCH and ctx.batch_size > 1 and not trial.user_attrs.get(ATTR.BATCH_SIZE):
                    ctx = replace(ctx, batch_size=max(1, ctx.batch_size // 2))
                    trial.set_user_attr(ATTR.BATCH_SIZE, ctx.batch_size)
                    log.warning("trial %d ran out of memory; retrying with batch size %d", trial.number, ctx.batch_size)
                    history.clear()
                    continue
                reason = f"{type(exc).__name__}: {exc}".strip()
                if fate is Fate.RETRY_SMALLER_BATCH:
                    reason = f"out of memory (also at batch size {ctx.batch_size}): {reason}"
                elif fate is Fate.INTERRUPT:
                    reason = "interrupted: stopped (Ctrl-C) before this trial finished"
                elif fate is Fate.NO_SPACE:
                    reason = f"interrupted: a full disk stopped the run before this trial finished ({reason})"
                elif isinstance(exc, TrialFailed):
                    reason = str(exc)
                self._fail(trial, cfg, reason, t0, history, exc)
                if fate is Fate.INTERRUPT:  # Optuna marks it FAIL; queue it again, once
                    self._retry(self.study, self.study.get_trials(deepcopy=False)[trial.number])
                if fate is Fate.NO_SPACE:  # queued again whatever it was (a retry too): it never counts
                    self._retry(self.study, self.study.get_trials(deepcopy=False)[trial.number], always=True)
                if fate is Fate.INTERRUPT and not isinstance(exc, KeyboardInterrupt):
                    raise KeyboardInterrupt from exc  # a Ctrl-C that C code turned into another error
                if fate in (Fate.INTERRUPT, Fate.STOP, Fate.NO_SPACE):
                    raise  # a full disk: the command line names it (NoSpaceError's message, or cli._disk_full)
                raise TrialFailed(reason) from exc

    def _fail(self, trial, cfg, reason, t0, history, exc):
        trial.set_user_attr("fail_reason", reason[:2000])
        tb = "".join(traceback.format_exception(exc))[-8000:]
        self._record(trial, cfg, "FAIL", None, t0, history, reason, tb)
        log.warning("trial %d failed: %s", trial.number, reason)

    def _record(self, trial, cfg, state, score, t0, history, reason="", tb="", result=None):
        """Everything about the trial goes into the study (the one record; see automl_tl.schema)."""
        trial.set_user_attr(ATTR.SECONDS, time.perf_counter() - t0)
        if history:
            trial.set_user_attr(ATTR.HISTORY, history)
        if tb:
            trial.set_user_attr(ATTR.TRACEBACK, tb)
        if result is not None:
            probs = np.asarray(result.val_probs)
            index = np.asarray(result.val_index, dtype=int)
            pred = {"index": index.tolist(), "predicted": [int(i) for i in probs.argmax(1)],
                    "probability": [round(float(x), 6) for x in probs.max(1)],
                    "true_probability": [round(float(x), 6) for x in probs[np.arange(len(index)), self.ctx.y[index]]],
                    "probabilities": np.round(probs.astype(float), 5).tolist()}
            trial.set_user_attr(ATTR.PREDICTIONS, pred)
            self._preds[trial.number] = _unpack_predictions(pred)   # as a later read of the study gives

    def _after_trial_callback(self, study, frozen) -> None:
        self._after_trial(frozen.number)

    def _after_trial(self, number: int) -> None:
        import optuna

        t = self._trial(number)
        sel = self.selection()
        if sel is not None and sel.trial != self._saved_trial and sel.trial in self._results:
            self._save(sel.trial, self._results[sel.trial], refitted=False)
        # keep in memory only the models that may be delivered without retraining
        keep = {sel.trial, sel.top_trial} if sel is not None else set()
        self._results = {k: v for k, v in self._results.items() if k in keep}
        self.write_summary(finished=False)  # also rewrites leaderboard.csv
        state = t.state.name.lower()
        value = (f"{t.value:.4f} ± {t.user_attrs.get('score_se', float('nan')):.4f}"
                 if t.state == optuna.trial.TrialState.COMPLETE
                 else (t.user_attrs.get(ATTR.FAIL_REASON) or t.user_attrs.get(ATTR.NOT_STARTED, ""))[:110])
        log.info("trial %d %s: %s %s %s", number, state, t.params.get("backbone"),
                 t.user_attrs.get("strategy", ""), value)

    # ------------------------------------------------------------------ delivering
    def deliver(self, *, deadline: float | None = None) -> None:
        """Save the selected trial's model: refitted on all labelled items when ``self.refit`` and
        the refit fits the time left, else as the search trained it; averaged with the cheap trials
        :func:`~automl_tl.evaluation.ensemble` adds (trained on the same items as it)."""
        sel = self.selection()
        if sel is None:
            return
        t = self._trial(sel.trial)
        cfg = self.space.config(t.params)
        epochs = t.user_attrs.get("epochs") or {}
        n_all = len(self.ctx.y)
        info: dict[str, Any] = {"trial": sel.trial, "refit": False, "n_train": int(len(self.ctx.plan.train))}
        result = None
        calibration = None  # of the model saved last
        if getattr(self, "refit", True):
            left = None if deadline is None else deadline - time.monotonic() - SAVE_MARGIN_S
            predicted = self.costs.refit(cfg, epochs, t)
            if left is not None and predicted > max(REFIT_SLACK * left, CHEAP_REFIT_S):
                info["refit_reason"] = (f"not refitted: the refit ({predicted:.0f} s predicted) does not fit "
                                        f"the {max(0.0, left):.0f} s left of the time budget")
            else:
                t0 = time.perf_counter()
                try:
                    head, backbone = train_final(cfg, replace(self.ctx, seed=self.seed), np.arange(n_all),
                                                 epochs=epochs, deadline=None if left is None else deadline - SAVE_MARGIN_S)
                except RefitStopped as exc:
                    info["refit_reason"] = f"not refitted: {exc}; the search's model is delivered"
                except BaseException as exc:  # noqa: BLE001 - the fates table decides
                    self._raise_if_interrupted()
                    if fate_of(exc)[1] in (Fate.STOP, Fate.INTERRUPT, Fate.NO_SPACE):
                        raise
                    # out of memory, a bad configuration, anything else: the search's model is still good
                    log.warning("the refit failed (%s: %s); delivering the search's model", type(exc).__name__, exc)
                    info["refit_reason"] = f"not refitted: the refit failed ({type(exc).__name__}: {exc})"
                else:
                    result = _Result(head=head, backbone=backbone)
                    calibration = self._save(sel.trial, result, refitted=True)  # saved before anything else can fail
                    info |= {"refit": True, "n_train": n_all, "refit_seconds": round(time.perf_counter() - t0, 1),
                             "refit_reason": f"refitted on all {n_all} labelled items with the epochs "
                                             f"trial {sel.trial} needed"}
        else:
            info["refit_reason"] = f"not refitted ({self.no_refit_reason}): the search's model is delivered"
        ens, members = self._ensemble_members(sel, info, deadline)
        if members or (result is None and self._saved_trial != sel.trial):
            if result is None:
                result = self._results.get(sel.trial)
            if result is None:  # selected from an earlier process: rebuild on the training split
                head, backbone = train_final(cfg, replace(self.ctx, seed=self.seed), self.ctx.plan.train, epochs=epochs)
                result = _Result(head=head, backbone=backbone)
            calibration = self._save(sel.trial, result, refitted=info["refit"], members=members, ens=ens)
        elif calibration is None:  # the model saved during the search is delivered: what it was saved with
            calibration = self._calibration(sel.trial)
        if calibration is not None:
            info["calibration"] = calibration.to_dict()
        spec = self.space.specs[cfg.backbone]
        info["kind"] = ("ensemble" if members else
                        "classical baseline" if getattr(spec, "classical", False) else "transfer learning")
        info["model"] = os.path.abspath(self.run_dir / "model.keras")
        self.delivered = info
        self.study.set_user_attr("delivered", info)  # where the model is: part of the record

    def _cheap(self, number: int) -> bool:
        """A trial retrained in seconds: a linear probe on frozen (cached) or classical features."""
        cfg = self.space.config(self._trial(number).params)
        return cfg.strategy == FEATURE_EXTRACTION and cfg.linear_head

    def _ensemble_members(self, sel: Selection, info: dict, deadline: float | None) -> tuple[Ensemble | None, list]:
        """The ensemble and its other members, ``(trial number, trained model)``: the cheap trials
        to average with the selected one, trained on the items it was (all labelled items after a
        refit, else the training split); ``(None, [])`` when none helps, when ``--no-ensemble``, or
        when their training does not fit the time left. Records what and why in ``info``."""
        from automl_tl.metrics import metric_function

        none: tuple[Ensemble | None, list] = (None, [])
        if not getattr(self, "ensemble", True):
            return none
        cands = {c.trial: c for c in self.candidates()}
        base = cands.get(sel.trial)
        if base is None:
            return none
        # beside a selected probe, another probe of the same backbone adds no new view of the data
        # (a linear model on much the same features); beside a fine-tuned model, its frozen probe does
        mine = self._trial(sel.trial).params.get("backbone") if self._cheap(sel.trial) else None
        pool = [c for n, c in cands.items() if n != sel.trial and self._cheap(n)
                and (mine is None or self._trial(n).params.get("backbone") != mine)]
        ens = ensemble(base, pool, y=self.ctx.y, metric=metric_function(self.ctx.metric))
        if ens is None:
            return none
        others = ens.trials[1:]
        cost = sum(float(self._trial(n).user_attrs.get(ATTR.SECONDS, 0.0)) for n in others)
        left = None if deadline is None else deadline - time.monotonic() - SAVE_MARGIN_S
        if left is not None and cost > left:
            info["ensemble_reason"] = (f"not averaged with trial(s) {', '.join(map(str, others))}: training them "
                                       f"(about {cost:.0f} s) does not fit the {max(0.0, left):.0f} s left")
            return none
        index = np.arange(len(self.ctx.y)) if info["refit"] else self.ctx.plan.train
        members = []
        try:
            for n in others:
                head, backbone = train_final(self.space.config(self._trial(n).params),
                                             replace(self.ctx, seed=self.seed), index)
                members.append((n, _Result(head=head, backbone=backbone)))
        except BaseException as exc:  # noqa: BLE001 - the fates table decides
            self._raise_if_interrupted()
            if fate_of(exc)[1] in (Fate.STOP, Fate.INTERRUPT, Fate.NO_SPACE):
                raise
            log.warning("training the ensemble's members failed (%s: %s); delivering trial %d alone",
                        type(exc).__name__, exc, sel.trial)
            info["ensemble_reason"] = f"not averaged: training its members failed ({type(exc).__name__}: {exc})"
            return none
        info["ensemble"] = ens.to_dict()
        info["ensemble_reason"] = ens.reason
        return ens, members

    def _deliverable(self, number: int, result, refitted: bool) -> dict:
        """Trial ``number``'s model, adapter and config, as :func:`save_model` takes them."""
        t = self._trial(number)
        cfg = self.space.config(t.params)
        spec = self.ctx.specs[cfg.backbone]
        weights = self.ctx.weights.get(cfg.backbone)
        input_config = dict(self.ctx.input_configs[cfg.backbone])
        model = classifier(spec, weights, input_config, cfg.options, result.head, result.backbone)
        adapter = spec.make_adapter(input_config, weights, None)
        config = {"backbone": cfg.backbone, "input_config": input_config, "options": dict(cfg.options),
                  "params": cfg.to_dict(), "metric": self.ctx.metric, "labels": self.labels,
                  "trial": number, "score": t.value, "score_se": t.user_attrs.get("score_se"),
                  "refitted": refitted, "featurize": spec.featurize is not None,
                  "classical": bool(getattr(spec, "classical", False)),
                  "modality": spec.modality, "weights": weights.to_dict() if weights else None}
        if self.ctx.data.columns:  # a table: predict reads new tables by the same column names
            config["columns"] = dict(zip(("inputs", "labels"), self.ctx.data.columns))
        return {"model": model, "adapter": adapter, "config": config}

    def _save(self, number: int, result, *, refitted: bool, members: Sequence[tuple[int, Any]] = (),
              ens: Ensemble | None = None) -> Calibration | None:
        """Save trial ``number``'s model as the run's; with ``members`` (and the ``ens`` that chose
        them), as an ensemble whose other members are saved beside it. The saved model carries
        the calibration of what it delivers (the ensemble's, not a member's): returned."""
        main = self._deliverable(number, result, refitted)
        config = main["config"]
        if members:
            config["ensemble"] = ens.to_dict()
        calibration = self._calibration(number, ens if members else None)
        if calibration is not None:  # the top-level model's only: Predictor applies it after averaging
            config["calibration"] = calibration.to_dict()
        save_model(self.run_dir, model=main["model"], config=config, labels=self.labels, adapter=main["adapter"],
                   val_predictions=self._predictions(number, ens if members else None),
                   members=[self._deliverable(n, r, refitted) for n, r in members],
                   name=f"trial-{number}{'-refit' if refitted else ''}{'-ensemble' if members else ''}")
        self._saved_trial = number
        return calibration

    def _calibration(self, number: int, ens: Ensemble | None = None) -> Calibration | None:
        """The temperature for the delivered probabilities (:func:`automl_tl.calibration.calibrate`),
        fitted on the ensemble ``ens``'s averaged out-of-fold probabilities, else on trial
        ``number``'s; None where the trial recorded none (runs of earlier versions).

        Under cross-validation those probabilities come from the fold models while the delivered
        model may be refitted on all items: the standard practice (the fold models stand in for
        it, as they do for its score), since only out-of-fold probabilities are of items the model
        did not learn from; the model's own probabilities on its training items are overconfident."""
        if ens is not None:
            index, proba = ens.index, ens.proba
        else:
            index, _, _, proba = self._predicted(number)
        if index is None or proba is None or len(index) == 0:
            return None
        return calibrate(proba, np.asarray(self.ctx.y)[np.asarray(index)], seed=self.seed)

    def _predictions(self, number: int, ens: Ensemble | None = None) -> list[dict] | None:
        """Validation predictions for ``val_predictions.csv``: trial ``number``'s, or the
        ensemble ``ens``'s on the items all its members were scored on."""
        if ens is not None:
            index, predicted, prob = ens.index, ens.proba.argmax(1), np.round(ens.proba.max(1), 6)
        else:
            pred = self._trial(number).user_attrs.get(ATTR.PREDICTIONS)
            if not pred:
                return None
            index, predicted, prob = pred["index"], pred["predicted"], pred["probability"]
        items, y = self.ctx.data.items, self.ctx.y
        return [{"item": str(items[i]), "label": self.labels[y[i]], "predicted": self.labels[k],
                 "probability": float(p)} for i, k, p in zip(index, predicted, prob)]

    # ------------------------------------------------------------------ views
    def transferability(self) -> dict | None:
        """How well the probe and the proxies ranked the candidates (backbone and readout) against
        what the search found (each candidate's best finished trial)."""
        import optuna

        from automl_tl.transferability import candidate_key, transferability_summary

        if not self.probes:
            return None
        found: dict[str, float] = {}
        for t in self.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
            b = t.params.get("backbone")
            if b is None or t.value is None:
                continue
            key = candidate_key(b, {k.split(":", 1)[1]: v for k, v in t.params.items() if k.startswith(f"{b}:")})
            found[key] = max(found.get(key, -np.inf), float(t.value))
        return transferability_summary(self.probes, found)

    def write_summary(self, *, finished: bool) -> dict:
        sel = self.selection()
        best = None
        if sel is not None:
            bt = self._trial(sel.trial)
            best = {"trial": bt.number, "score": bt.value, "score_se": bt.user_attrs.get("score_se"),
                    "params": dict(bt.params), "strategy": bt.user_attrs.get("strategy")}
        summary = dict(self.summary_base) | {
            "schema": SCHEMA_VERSION, "best": best, "selection": sel.to_dict() if sel else None,
            "transferability": self.transferability(),
            "labels": self.labels, "finished": finished, "stop": self.stop or None,
            "delivered": self.delivered or None, "evaluation": self.ctx.plan.to_dict(),
            "on_new_data": on_new_data(self.summary_base.get("groups"), sel.to_dict() if sel else None,
                                       self.delivered, self.ctx.plan.to_dict(), self.ctx.metric),
            "timings": dict(self.summary_base.get("timings") or {}) | self.timings,
            # of those, the backbones' embedding passes in this process: the probe's, and all
            "forward_seconds": dict(self.summary_base.get("forward_seconds") or {}) | {
                "all": round(float(self.ctx.cache.stats.get("forward_seconds", 0.0)), 2)}}
        record = json.loads(json.dumps({k: v for k, v in summary.items() if k != "counts"}, default=json_default))
        self.study.set_user_attr(SUMMARY_ATTR, record)  # the views are rebuilt from the study alone
        return write_views(self.study, self.run_dir, summary)


@dataclass
class _Result:
    head: Any
    backbone: Any = None


def _unpack_predictions(pred: Mapping[str, Any] | None) -> tuple:
    """A trial's recorded predictions as ``(scored items, predicted classes, p(true class), class
    probabilities)`` arrays (None where not recorded: runs of earlier versions have fewer)."""
    if not pred:
        return None, None, None, None
    p_true, proba = pred.get("true_probability"), pred.get("probabilities")
    return (np.asarray(pred["index"]), np.asarray(pred["predicted"]),
            None if p_true is None else np.asarray(p_true, dtype=float),
            None if proba is None else np.asarray(proba, dtype=float))
