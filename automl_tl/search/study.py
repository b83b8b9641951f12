"""The study: opening it (one per run directory or ``--storage``), checking that a joining worker
searches the same task, queueing the starting trials, recovering the trials of workers that are
gone, and reading the trials back. The proposer is Optuna's: :func:`default_sampler` and
:func:`default_pruner` are its defaults.
"""

from __future__ import annotations

import logging
import os
import warnings

from automl_tl.artifacts import STUDY_NAME, remove_leftovers
from automl_tl.errors import ConfigError
from automl_tl.pruners import DEFAULT_PRUNER, make_pruner
from automl_tl.schema import ATTR, STUDY_ATTR, TASK_KEYS, retry_links, task_changes
from automl_tl.search.storage import _hide_password, open_storage, storage_url
from automl_tl.workers import is_gone

__all__ = ["default_sampler", "default_pruner", "joining_seed", "StudyMixin"]

log = logging.getLogger("automl_tl")


def default_sampler(seed: int):
    """TPE, multivariate over grouped (conditional) parameters, five random proposals first; the
    constant liar keeps parallel workers from proposing the same point."""
    import optuna

    return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True, n_startup_trials=5,
                                      constant_liar=True)


def joining_seed(seed: int, existing: int) -> int:
    """The sampler's seed of a worker that joins a study (or resumes one) holding ``existing``
    trials: a function of the run's ``seed``, ``existing`` and this process (host and pid), so
    that workers started together propose apart, and a resumed search does not replay the
    sequence it made from scratch. Mixed by NumPy's ``SeedSequence``: the sum
    ``seed + existing + pid`` used before collided for workers started one after the other
    (pids n and n + 1 that found 1 and 0 trials): one seed, the same random proposals run twice."""
    import socket
    import zlib

    import numpy as np

    entropy = [seed & 0xFFFFFFFF, existing, os.getpid(), zlib.crc32(socket.gethostname().encode())]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])


def default_pruner():
    """The default pruner (:data:`automl_tl.pruners.DEFAULT_PRUNER`)."""
    return make_pruner(DEFAULT_PRUNER)


class StudyMixin:
    """The study of a :class:`~automl_tl.search.Search` (``self.study``) and its trials. Reads
    ``run_dir``, ``storage``, ``seed``, ``pruner``, ``make_sampler``, ``summary_base`` (its
    ``task``) and the starting points (``space``, ``recommendation``, ``rec_options``, ``probes``,
    ``compare_strategies``, ``warm_start``)."""

    def _open_study(self):
        import optuna

        optuna.logging.set_verbosity(optuna.logging.ERROR)  # failures: one line from our log, tracebacks in the study
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        storage = open_storage(storage_url(self.run_dir, self.storage), on_stale=self.on_stale)
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
        # trials 3 and 4 as copies of 1 and 2. Workers started together differ by host and pid.
        study.sampler = self.make_sampler(self.seed + existing if created else joining_seed(self.seed, existing))
        if created:
            self._enqueue_start(study)
        return study

    def _check_same_task(self, study, created: bool) -> None:
        """Workers that join a study must search the same task: the same data and labels, seed,
        validation fraction and metric (the trials are only comparable on the same split)."""
        task = {k: v for k, v in (self.summary_base.get("task") or {}).items() if k in TASK_KEYS}
        if created:
            study.set_user_attr(STUDY_ATTR.TASK, task)
            return
        differ = task_changes(study.user_attrs.get(STUDY_ATTR.TASK) or {}, task)
        if differ:
            raise ConfigError(
                f"the study in {_hide_password(self.storage) if self.storage else 'this run directory'} searches "
                f"another task ({', '.join(differ)} "
                f"differ): every worker of one search must use the same data, labels, --seed, --val-fraction "
                f"and --metric; give a new database (or run directory) for a new task")

    def _enqueue_start(self, study) -> None:
        """Trial 0 is the recommendation; then the linear probe of every other (backbone,
        options) pair, so every candidate is on the leaderboard with the baseline's strength;
        with ``compare_strategies`` one trial of each strategy not queued yet
        (:meth:`~automl_tl.space.SearchSpace.strategy_tour`); then the nearest past tasks' winners."""
        first = self.space.enqueue_params(self.recommendation, self.rec_options)
        queue: list[tuple[dict, dict]] = []
        if self.space.is_probe_strategy(self.recommendation.strategy) and first.get("head_units"):
            # the table asks for a new (hidden-layer) head: it follows the linear probe it must beat
            options = {k.split(":", 1)[1]: v for k, v in first.items() if ":" in k}
            linear = self.space.probe_params(first["backbone"], options)
            queue += [(linear, {ATTR.RECOMMENDED: True}), (first, {ATTR.TABLE_HEAD: True})]
        else:
            queue.append((first, {ATTR.RECOMMENDED: True}))
        for p in self.probes:
            params = self.space.probe_params(p["backbone"], p["options"])
            if all(params != q for q, _ in queue):
                queue.append((params, {ATTR.PROBE: True}))
        if self.compare_strategies:  # every strategy once, on one backbone, before the past tasks'
            tried = {self.space.config(q).strategy for q, _ in queue}
            for params in self.space.strategy_tour(self.recommendation, self.probes):
                strategy = self.space.config(params).strategy
                if strategy not in tried:
                    tried.add(strategy)
                    queue.append((params, {ATTR.STRATEGY_TOUR: True}))
        # then what won on the nearest past tasks (the probes before them cost next to nothing:
        # their features are cached)
        for w in self.warm_start:
            params = self.space.point(w["params"])
            if all(params != q for q, _ in queue):
                queue.append((params, {ATTR.WARM_START: w["label"], ATTR.WARM_START_DISTANCE: w["distance"]}))
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
        StudyMixin._retry(study, trial)

    @staticmethod
    def _retry(study, t, *, always: bool = False) -> None:
        """Queue ``t``'s parameters again unless ``t`` was itself a retry (one retry per trial);
        ``always``: a retry too (a trial stopped by a full disk did not fail on its merits)."""
        if (always or t.user_attrs.get(ATTR.RETRY_OF) is None) and t.params:
            study.enqueue_trial(dict(t.params), user_attrs={
                ATTR.RETRY_OF: t.number, ATTR.RECOMMENDED: bool(t.user_attrs.get(ATTR.RECOMMENDED, False))})

    def _trials(self, states=None):
        """The trials run to an end (complete, pruned or failed; or those of ``states``), not the
        proposals that were not run."""
        import optuna

        done = states or (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED,
                          optuna.trial.TrialState.FAIL)
        return [t for t in self.study.get_trials(deepcopy=False, states=done)
                if not t.user_attrs.get(ATTR.NOT_STARTED)]

    def _trial(self, number: int):
        return self.study.get_trials(deepcopy=False)[number]

    def finished_trials(self) -> int:
        return len(self._trials())

    def _taken_over(self) -> bool:
        """Whether this worker's current trial was failed and retried by another worker."""
        if self._current is None:
            return False
        trials = self.study.get_trials(deepcopy=False)
        return trials[self._current].state.name == "FAIL" and self._current in retry_links(trials)
