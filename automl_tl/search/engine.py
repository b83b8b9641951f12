""":class:`Search`, assembled from its roles: the study (:mod:`.study`), the selection
(:mod:`.selection`), admission (:mod:`.admission`), the loop (:mod:`.loop`), delivery
(:mod:`.delivery`) and the views (:mod:`.views`). Each role is a mixin over the one state set
up here; each says which of it it reads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from automl_tl.budget import NO_BUDGET
from automl_tl.costs import CostModel
from automl_tl.search.admission import AdmissionMixin
from automl_tl.search.delivery import DeliveryMixin
from automl_tl.search.loop import LoopMixin
from automl_tl.search.selection import SelectionMixin
from automl_tl.search.study import StudyMixin, default_pruner, default_sampler
from automl_tl.search.views import ViewsMixin
from automl_tl.space import SearchSpace
from automl_tl.training import TrialContext

__all__ = ["Search"]


class Search(StudyMixin, SelectionMixin, AdmissionMixin, LoopMixin, DeliveryMixin, ViewsMixin):
    """The loop between the space, Optuna's proposer and the strategies: runs each trial one
    ``optimize(n_trials=1)`` at a time, decides between trials whether to go on, what a failure
    means, keeps the run directory's views up to date, then delivers (:meth:`run`)."""

    def __init__(self, *, ctx: TrialContext, space: SearchSpace, run_dir, recommendation,
                 storage: str | None = None, seed: int = 0, labels: Sequence[str] = (),
                 summary_base: Mapping[str, Any] | None = None, probes: Sequence[Mapping] = (),
                 rec_options: Mapping[str, Any] | None = None, patience: int = 15,
                 seconds_per_item: Mapping[str, float] | None = None,
                 feature_dims: Mapping[str, int] | None = None, warm_start: Sequence[Mapping] = (),
                 compare_strategies: bool = False, sampler=default_sampler, pruner=None,
                 callbacks: Sequence = ()) -> None:
        """``sampler``: a function of the seed returning an Optuna sampler (called with the seed
        plus the number of trials already in the study, so a resumed search does not replay its
        proposals); ``pruner``: an Optuna pruner (default :func:`default_pruner`); ``warm_start``:
        configurations of the nearest past tasks (:func:`automl_tl.knowledge.warm_start_configs`),
        enqueued after the recommendation and the probes; ``compare_strategies``: before those, one
        trial of every strategy that applies (the demo's search, so its report compares them);
        ``callbacks``: Optuna callbacks called after each trial, after the loop's own (the MLflow mirror,
        :mod:`automl_tl.tracking`)."""
        self.ctx = ctx
        self.space = space
        self.run_dir = Path(run_dir)
        self.recommendation = recommendation
        self.rec_options = dict(rec_options or {})
        self.probes = list(probes)
        self.warm_start = list(warm_start)
        self.compare_strategies = compare_strategies
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
        # the run's settings (run() sets them)
        self.refit = True
        self.ensemble = True
        self.no_refit_reason = "--no-refit"
        self.trials: int | None = None  # the trial budget of the running search (global: all workers)
        self.budget = NO_BUDGET  # the time budget of the running search (this worker's)
        self._over_budget = False
        self._not_started_in_a_row = 0  # proposals in a row that did not fit the time left
        self._repeats_in_a_row = 0  # proposals in a row not run as repeats or heads on trailing features
        self._current: int | None = None  # the number of the trial this worker runs or ran last
        self.make_sampler = sampler
        self.pruner = pruner if pruner is not None else default_pruner()
        self.callbacks = list(callbacks)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.study = self._open_study()
