"""Which trial the search would deliver now: the complete trials as candidates (score, standard
error with the between-source spread, complexity, recorded predictions), and the selection the
one-standard-error rule makes among them (:func:`automl_tl.evaluation.select`). The stop rules,
the time reserve, the views and the delivery all read it.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from automl_tl.evaluation import Candidate, Selection, complexity, select
from automl_tl.grouping import spread_term
from automl_tl.schema import ATTR
from automl_tl.strategies import FEATURE_EXTRACTION

__all__ = ["SelectionMixin"]


class SelectionMixin:
    """Candidates and the selection of a :class:`~automl_tl.search.Search`. Reads ``study``,
    ``space``, ``ctx`` and ``summary_base`` (its ``groups``); keeps ``_preds`` (predictions by
    trial number) and ``_paired`` (the paired gaps already computed)."""

    def candidates(self) -> list[Candidate]:
        import optuna

        out = []
        for t in self.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
            if t.value is None:
                continue
            a = t.user_attrs
            spec = self.space.specs.get(t.params.get("backbone"))
            index, pred, p_true, proba = self._predicted(t.number)
            se, spread = float(a.get(ATTR.SCORE_SE, float("nan"))), self._spread(index)
            out.append(Candidate(
                trial=t.number, score=float(t.value), se=float(np.hypot(se, spread)), spread=spread,
                seconds=float(a.get(ATTR.SECONDS, 0.0)),
                # a trial recorded before the strategy attribute existed was a feature-extraction one
                complexity=complexity(self._rank(a.get(ATTR.STRATEGY, FEATURE_EXTRACTION)),
                                      t.params.get("head_units", 0), bool(getattr(spec, "classical", False)),
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


def _unpack_predictions(pred: Mapping[str, Any] | None) -> tuple:
    """A trial's recorded predictions as ``(scored items, predicted classes, p(true class), class
    probabilities)`` arrays (None where not recorded: runs of earlier versions have fewer)."""
    if not pred:
        return None, None, None, None
    p_true, proba = pred.get("true_probability"), pred.get("probabilities")
    return (np.asarray(pred["index"]), np.asarray(pred["predicted"]),
            None if p_true is None else np.asarray(p_true, dtype=float),
            None if proba is None else np.asarray(proba, dtype=float))
