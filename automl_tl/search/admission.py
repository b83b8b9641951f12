"""Admission: between trials, whether the search goes on (the trial budget, the time budget less
what the delivery needs, saturation, patience), and for each proposal whether it runs (a repeat
of a deterministic trial, a new head on features that trail far behind, a cost that does not
fit the time left).
"""

from __future__ import annotations

import math

import numpy as np

from automl_tl.budget import Budget
from automl_tl.schema import ATTR, retry_links
from automl_tl.training import TrialConfig

__all__ = ["AdmissionMixin", "SAVE_MARGIN_S", "MAX_REPEATS", "TRAILING_SE"]

#: seconds kept free at the end of a time budget for saving the model and writing the report
SAVE_MARGIN_S = 8.0
# proposals in a row that repeat a finished deterministic trial before the search calls its space
# exhausted (a probe-only space, e.g. one classical featurizer, has a single configuration)
MAX_REPEATS = 10
#: a hidden-layer head on a backbone's frozen features is not tried while that backbone's best
#: linear trial trails another backbone's by more than this many standard errors of the gap: a new
#: head on the same features has not closed such a gap on any benchmark task (hidden heads score
#: within a few points of the linear one on the same features), and such trials took 140 s of the
#: 10 minutes on Rotten Tomatoes 2 000 (TF-IDF, 0.70 against MiniLM's 0.77 probe)
TRAILING_SE = 3.0


class AdmissionMixin:
    """Stop rules and admission of a :class:`~automl_tl.search.Search`. Reads ``trials`` (the
    trial budget), ``budget`` (the :class:`~automl_tl.budget.Budget`), ``refit``, ``patience``,
    ``costs``; counts ``_repeats_in_a_row`` and ``_not_started_in_a_row``."""

    # ------------------------------------------------------------------ budget
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

    def _reserve(self) -> float:
        """Seconds kept for the refit of the currently selected trial and for saving."""
        sel = self.selection()
        if sel is None or not self.refit:
            return SAVE_MARGIN_S
        t = self._trial(sel.trial)
        return SAVE_MARGIN_S + self.costs.refit(self.space.config(t.params), t.user_attrs.get(ATTR.EPOCHS), t)

    def _trial_budget(self) -> Budget:
        """The time budget of trials: the run's, less :meth:`_reserve` (not computed without one)."""
        return self.budget.keeping(self._reserve()) if self.budget.limited else self.budget

    # ------------------------------------------------------------------ stop rules
    def _why_stop(self) -> dict | None:
        trials = self.trials
        n = self.counted_trials()
        if trials is not None and n >= trials:
            return {"kind": "trials", "reason": f"the trial budget ({trials}) is used"}
        if self._trial_budget().past() and not self._first_owed():
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
                                          f"{sel.top_score:.4f}, no trial can score higher on this data"})
        if self._stagnant() >= self.patience:
            return self._early({"kind": "patience",
                                "reason": f"no improvement beyond half a standard error in the last "
                                          f"{self.patience} trials"})
        return None

    def _early(self, why: dict) -> dict:
        """``why`` with what stopping early saves: seconds of the time budget, trials of the trial budget."""
        if self.budget.limited:
            why["seconds_saved"] = round(max(0.0, self._trial_budget().left()), 1)
        if self.trials is not None:
            done = self._trials()
            why["trials_saved"] = max(0, self.trials - len(done))
            secs = [t.user_attrs.get(ATTR.SECONDS, 0.0) for t in done]
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
                se = float(t.user_attrs.get(ATTR.SCORE_SE, 0.0) or 0.0)
                best, band, last = float(t.value), 0.5 * (se if math.isfinite(se) else 0.0), i
        return len(done) - 1 - last

    def _first_owed(self) -> bool:
        """Whether the run still owes its user a first model: no trial has run yet (complete,
        pruned or failed). A budget that the profile and the probe used up (``--time-budget 5s``)
        still gets one linear probe on the cached features (about a second), rather than an exit
        with nothing; proposals that do not fit are still refused (and a feature-extraction one
        queued), so this ends after at most one trial."""
        return not self._trials()

    # ------------------------------------------------------------------ whether a proposal runs
    def _not_to_run(self, trial, cfg: TrialConfig) -> str | None:
        """Why this proposal is not run (recorded on the trial), or None: run it."""
        repeat = self._repeat_of(trial, cfg)
        if repeat is not None:
            # a linear probe is a function of its configuration and the folds: running it again
            # gives the same score (or the same failure), so it is not run and not counted
            # against the trial budget
            why = f"not run: a repeat of trial {repeat} (same configuration, same outcome)"
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
        why_not = self._fits(cfg)
        if why_not is not None:
            # told PRUNED (the sampler learns to avoid it), never counted as a trial; the next
            # proposal is a feature-extraction one, which is cheap
            trial.set_user_attr(ATTR.NOT_STARTED, why_not)
            trial.set_user_attr(ATTR.FAIL_REASON, why_not)
            self._not_started_in_a_row += 1
            if self.space.strategies.get(cfg.strategy) is None or self.space.strategies[cfg.strategy].fine_tunes:
                # while no trial has run, the linear probe (the owed first model, see _first_owed)
                self.study.enqueue_trial({"strategy": self.space.probe_strategy()}
                                         | ({"head_units": 0} if self._first_owed() else {}))
            return why_not
        self._not_started_in_a_row = 0
        return None

    def _fits(self, cfg: TrialConfig) -> str | None:
        """None if the trial fits the time left (always, without a time budget), else why not."""
        if not self.budget.limited:
            return None
        if self.space.is_probe(cfg) and self._first_owed():
            return None  # the owed first model: cheap on features the probe cached
        spec = self.space.specs.get(cfg.backbone)
        if spec is not None and not spec.classical and cfg.backbone not in self.costs.per_item:
            # never embedded here (the probe's share of the budget ran out first): its frozen
            # trial would embed every item before its head is fitted, at a speed not measured.
            # Measured: mpnet-base's first trial, started with 26 s left, took 75 s (120 s budget)
            return (f"not started: the probe had no time to embed {cfg.backbone}'s features, so its cost is "
                    f"unknown (a bigger --time-budget, or --backbones {cfg.backbone} alone, tries it)")
        left = self._trial_budget().left()
        predicted = self.costs.predict(cfg, self._trials())
        if predicted <= left:
            return None
        return f"not started: its predicted cost ({predicted:.0f} s) exceeds the time left ({max(0.0, left):.0f} s)"

    def _repeat_of(self, trial, cfg: TrialConfig) -> int | None:
        """The earlier complete trial with exactly these parameters, when the configuration is
        deterministic (a linear probe on frozen features); None otherwise. (Optuna's samplers
        re-propose a good categorical configuration often; it has no built-in deduplication.)"""
        import optuna

        if not self.space.is_probe(cfg):
            return None
        params = dict(trial.params)
        # a RUNNING twin counts too: another worker is computing the same score right now; and a
        # FAILED one: a deterministic probe that failed fails again, and an interrupted one is told
        # FAIL a moment before its retry is queued (StudyMixin._retry): a worker that proposed the
        # same probe in that moment ran it beside the retry (seen with three workers starting together)
        states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.RUNNING)
        if trial.user_attrs.get(ATTR.RETRY_OF) is None:  # a retry itself runs: its original failed
            states += (optuna.trial.TrialState.FAIL,)
        for t in self._trials(states):
            if t.number != trial.number and dict(t.params) == params:
                return t.number
        # and so does a queued one (a retry of an interrupted trial, enqueued by another worker
        # after this trial was sampled): it will compute this score. Its parameters are Optuna's
        # fixed_params until a worker pops it.
        for t in self.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,)):
            if t.system_attrs.get("fixed_params") == params:
                return t.number
        return None

    def _trailing(self, cfg: TrialConfig) -> tuple[int, str] | None:
        """``(leader, why)`` when ``cfg`` is a hidden-layer head on frozen features of a backbone
        whose best linear trial trails another backbone's (trial ``leader``) by more than
        :data:`TRAILING_SE` standard errors of the gap; None otherwise (or before its linear
        trial has run)."""
        import optuna

        if cfg.linear_head or not self.space.is_probe_strategy(cfg.strategy):
            return None
        best: dict[str, tuple[float, float, int]] = {}
        for t in self._trials((optuna.trial.TrialState.COMPLETE,)):
            c = self.space.config(t.params)
            se = float(t.user_attrs.get(ATTR.SCORE_SE, math.nan) or 0.0)
            if self.space.is_probe(c) and t.value is not None and math.isfinite(se):
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
