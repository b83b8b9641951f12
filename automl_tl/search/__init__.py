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

The package, a module a role: :mod:`.storage` (the study's database), :mod:`.study` (opening,
the task check, the starting queue, recovery), :mod:`.selection`, :mod:`.admission` (budget,
stop rules, whether a proposal runs), :mod:`.loop` (objective, fates, recording),
:mod:`.delivery` (refit, ensemble, saving), :mod:`.views` (summary), :mod:`.engine` (the class).
"""

from __future__ import annotations

# the names other modules, benchmarks and tests import from automl_tl.search
from automl_tl.costs import CostModel
from automl_tl.search.admission import MAX_REPEATS, SAVE_MARGIN_S, TRAILING_SE  # noqa: F401
from automl_tl.search.delivery import CHEAP_REFIT_S, REFIT_SLACK  # noqa: F401
from automl_tl.search.engine import Search
from automl_tl.search.storage import DB_BACKOFF_S, database_address, db_wait_s, storage_url  # noqa: F401
from automl_tl.search.study import default_pruner, default_sampler
from automl_tl.space import SearchSpace

__all__ = ["SearchSpace", "Search", "storage_url", "CostModel", "default_sampler", "default_pruner"]
