"""Views: the run's record of the search as a whole (``summary.json`` and ``leaderboard.csv``,
rebuilt from the study after every trial; the summary also kept in the study) and how well the
probe ranked the candidates against what the search found.
"""

from __future__ import annotations

import json

import numpy as np

from automl_tl.artifacts import write_views
from automl_tl.atomic import json_default
from automl_tl.grouping import on_new_data
from automl_tl.schema import ATTR, SCHEMA_VERSION, SUMMARY_ATTR

__all__ = ["ViewsMixin"]


class ViewsMixin:
    """The views of a :class:`~automl_tl.search.Search`: reads ``summary_base``, ``stop``,
    ``delivered``, ``timings``, ``labels``, ``probes`` and the selection."""

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
            best = {"trial": bt.number, "score": bt.value, "score_se": bt.user_attrs.get(ATTR.SCORE_SE),
                    "params": dict(bt.params), "strategy": bt.user_attrs.get(ATTR.STRATEGY)}
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
