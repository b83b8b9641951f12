"""The loop: one ``study.optimize(n_trials=1)`` at a time until a stop rule says stop; the
objective (a proposal admitted, run by its strategy); what a failure means
(:mod:`automl_tl.fates`); and everything about a trial recorded in the study, the run
directory's views rewritten after each.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import time
import traceback
from dataclasses import replace

import numpy as np

from automl_tl.budget import NO_BUDGET, Budget, require_a_budget
from automl_tl.errors import TrialFailed
from automl_tl.fates import Fate, fate_of, interrupted, safe_points, watch_interrupts
from automl_tl.killpoints import kill_point
from automl_tl.schema import ATTR
from automl_tl.search.admission import MAX_REPEATS
from automl_tl.search.selection import _unpack_predictions
from automl_tl.search.storage import _database_gone
from automl_tl.training import TrialConfig, run_trial
from automl_tl.workers import grace_period_s, identity

__all__ = ["LoopMixin", "ENDS_THE_RUN"]

log = logging.getLogger("automl_tl")

#: the fates of an error that ends the run, whether it comes from a trial or from the delivery
ENDS_THE_RUN = (Fate.INTERRUPT, Fate.STOP, Fate.NO_SPACE)


@contextlib.contextmanager
def _frozen_heap():
    """The search's per-trial garbage collections (Optuna's ``gc_after_trial``: a trial's dead
    models and train steps sit in reference cycles, and a GPU's buffers go with them) walk only
    what the search allocates.

    A full collection walks every object alive, most of them the modules TensorFlow or JAX keep
    (0.2 s a trial after the imports; up to 3 s in a process that has traced other trials, as
    measured for :mod:`automl_tl.trainable_pool`; 110 s of the test suite's 1 260 CPU-seconds,
    py-spy). Here the objects alive when the search starts go to the permanent generation for the
    search's length (``gc.freeze``) and back after it (``gc.unfreeze``). One of them that dies in
    a cycle during the search waits for the first collection after it. Python has no other way
    to skip them: ``gc.collect(1)`` leaves a trial's cycles that were promoted meanwhile.

    Before the freeze, the garbage is collected, so that little of it is kept: the young
    generations only on a CPU, a full collection on an accelerator. A full collection walks the
    whole heap again (0.5-1.5 s a search in a process that has run others: a notebook; 86 of the
    test suite's 1 270 CPU-seconds, py-spy), to find what an earlier fit left in cycles; on a CPU
    that is host memory, which the first full collection after the search frees; on an
    accelerator it holds device memory, which Python's collection thresholds never see, and
    the search needs it. Left as it is where the heap is frozen already (another search in a
    thread of this process)."""
    if gc.get_freeze_count():
        yield
        return
    from automl_tl.accelerator import device

    gc.collect() if device().accelerator else gc.collect(1)
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


class LoopMixin:
    """The loop of a :class:`~automl_tl.search.Search`: sets the run's settings (``trials``,
    ``budget``, ``refit``, ``ensemble``, ``no_refit_reason``), runs trials, then delivers."""

    def run(self, *, trials: int | None = None, budget: Budget = NO_BUDGET, refit: bool = True,
            progress: bool = False, no_refit_reason: str = "--no-refit", ensemble: bool = True):
        """Run trials until the trial budget, the time ``budget`` (:class:`~automl_tl.budget.Budget`)
        or a stop rule; then deliver the selected trial (refitted on all labelled data when
        ``refit``; averaged with cheap trials that improve it on validation when ``ensemble``).

        Each step is ``study.optimize(n_trials=1)``: Optuna keeps doing what it does well (the
        heartbeat, failing stale trials, telling the trial's state), while this loop decides
        between trials whether to go on.
        """
        require_a_budget(trials, budget)
        from tqdm.auto import tqdm

        self.refit = refit
        self.ensemble = ensemble
        self.trials = trials
        self.budget = budget
        self._over_budget = False
        self.no_refit_reason = no_refit_reason
        bar = tqdm(total=trials, desc="trials", unit="trial", disable=not progress, leave=False,
                   initial=min(self.finished_trials(), trials or 0))
        t_start = time.monotonic()
        self._not_started_in_a_row = 0
        self._repeats_in_a_row = 0
        with watch_interrupts(), safe_points(), _frozen_heap():  # a Ctrl-C stops the trial at its next batch
            try:
                self._loop(bar)
            finally:
                bar.close()
            self.timings["trials"] = round(time.monotonic() - t_start, 2)
            self.stop.setdefault("seconds", round(self.timings["trials"], 1))
            log.info("search stopped: %s", self.stop.get("reason"))
            t_deliver = time.monotonic()
            self.deliver()
            self.timings["deliver"] = round(time.monotonic() - t_deliver, 2)
            self._raise_if_interrupted()
        self.write_summary(finished=True)
        return self.study

    @staticmethod
    def _raise_if_interrupted() -> None:
        """A Ctrl-C that library code swallowed or turned into another error still stops the run."""
        if interrupted():
            raise KeyboardInterrupt

    def _loop(self, bar) -> None:
        while True:
            why = self._why_stop()
            if why:
                self.stop = why
                break
            self._recover_interrupted(self.study)
            self._one_trial()
            self._raise_if_interrupted()
            if self._over_budget:
                self.stop = {"kind": "trials", "reason": f"the trial budget ({self.trials}) is used"}
                break
            if self._repeats_in_a_row >= MAX_REPEATS:
                self.stop = self._early({
                    "kind": "exhausted",
                    "reason": f"the last {MAX_REPEATS} configurations the sampler proposed had all been "
                              f"tried (or were heads on far-trailing features): the search space is "
                              f"exhausted"})
                break
            if self._repeats_in_a_row:
                continue
            if self._not_started_in_a_row == 0:
                bar.update(1)
            elif self._not_started_in_a_row >= 3:
                self.stop = {"kind": "time", "reason": "the time left fits none of the trials the "
                                                       "search proposes"}
                break

    def _one_trial(self) -> None:
        """One ``study.optimize(n_trials=1)``, its trial taken over by another worker survived."""
        import optuna

        try:
            self.study.optimize(self._objective, n_trials=1, catch=(TrialFailed,),
                                callbacks=[self._after_trial_callback, *getattr(self, "callbacks", ())],
                                gc_after_trial=True)
        except (optuna.exceptions.UpdateFinishedTrialError, ValueError) as exc:
            # another worker failed this trial (no heartbeat within the grace period, e.g. a
            # machine frozen that long) and queued its retry: Optuna then cannot tell it
            # (UpdateFinishedTrialError, or ValueError from tell); the retry stands, go on
            if not self._taken_over():
                raise
            log.warning("trial %d was failed by another worker (no heartbeat for %d s) and queued "
                        "again; this worker goes on (%s)", self._current, grace_period_s(), type(exc).__name__)
        except Exception as exc:  # noqa: BLE001 - the database gone is said as such
            gone = _database_gone(exc)
            if gone is None:
                raise
            # Optuna's _run_trial masks it (an UnboundLocalError from its `finally` when even
            # reading the trial fails): the worker stops with the error that says why
            raise gone from None

    def _objective(self, trial) -> float:
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
        why_not = self._not_to_run(trial, cfg)
        if why_not is not None:
            raise optuna.TrialPruned(why_not)
        ctx = replace(self.ctx, seed=self.seed + trial.number, budget=self._trial_budget())
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
                _, fate = fate_of(exc)
                if fate is Fate.RETRY_SMALLER_BATCH and ctx.batch_for(cfg.backbone) > 1 \
                        and not trial.user_attrs.get(ATTR.BATCH_SIZE):  # half the smaller: fine-tuning's
                    ctx = replace(ctx, batch_size=max(1, ctx.train_batch_for(cfg.backbone) // 2))
                    trial.set_user_attr(ATTR.BATCH_SIZE, ctx.batch_size)
                    log.warning("trial %d ran out of memory; retrying with batch size %d", trial.number, ctx.batch_size)
                    history.clear()
                    continue
                reason = _failure_reason(exc, fate, ctx.batch_for(cfg.backbone))
                self._fail(trial, cfg, reason, t0, history, exc)
                if fate is Fate.INTERRUPT:  # Optuna marks it FAIL; queue it again, once
                    self._retry(self.study, self.study.get_trials(deepcopy=False)[trial.number])
                if fate is Fate.NO_SPACE:  # queued again whatever it was (a retry too): it never counts
                    self._retry(self.study, self.study.get_trials(deepcopy=False)[trial.number], always=True)
                if fate is Fate.INTERRUPT and not isinstance(exc, KeyboardInterrupt):
                    raise KeyboardInterrupt from exc  # a Ctrl-C that C code turned into another error
                if fate in ENDS_THE_RUN:
                    raise  # a full disk: the command line names it (NoSpaceError's message, or cli._disk_full)
                raise TrialFailed(reason) from exc

    def _fail(self, trial, cfg, reason, t0, history, exc):
        trial.set_user_attr(ATTR.FAIL_REASON, reason[:2000])
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
        value = (f"{t.value:.4f} ± {t.user_attrs.get(ATTR.SCORE_SE, float('nan')):.4f}"
                 if t.state == optuna.trial.TrialState.COMPLETE
                 else (t.user_attrs.get(ATTR.FAIL_REASON) or t.user_attrs.get(ATTR.NOT_STARTED, ""))[:110])
        log.info("trial %d %s: %s %s %s", number, state, t.params.get("backbone"),
                 t.user_attrs.get(ATTR.STRATEGY, ""), value)


def _failure_reason(exc: BaseException, fate: Fate, batch_size: int) -> str:
    """A failed trial's reason, as the leaderboard says it."""
    reason = f"{type(exc).__name__}: {exc}".strip()
    if fate is Fate.RETRY_SMALLER_BATCH:
        return f"out of memory (also at batch size {batch_size}): {reason}"
    if fate is Fate.INTERRUPT:
        return "interrupted: stopped (Ctrl-C) before this trial finished"
    if fate is Fate.NO_SPACE:
        return f"interrupted: a full disk stopped the run before this trial finished ({reason})"
    if isinstance(exc, TrialFailed):
        return str(exc)
    return reason
