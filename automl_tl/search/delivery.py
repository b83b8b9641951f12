"""Delivery: the selected trial's model refitted on all labelled items when that fits the time
left, averaged with the cheap trials that improve it on validation (:func:`ensemble`), and saved
as the run's model with its calibration and validation predictions. A failure here (out of
memory, a bad configuration) leaves the search's model delivered; a Ctrl-C, a stop or a full
disk ends the run.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, replace
from typing import Any, Sequence

import numpy as np

from automl_tl.artifacts import save_model
from automl_tl.calibration import Calibration, calibrate
from automl_tl.errors import RefitStopped
from automl_tl.evaluation import Ensemble, Selection, ensemble
from automl_tl.fates import fate_of
from automl_tl.schema import ATTR, STUDY_ATTR
from automl_tl.search.admission import SAVE_MARGIN_S
from automl_tl.search.loop import ENDS_THE_RUN
from automl_tl.training import classifier, train_final

__all__ = ["DeliveryMixin", "REFIT_SLACK", "CHEAP_REFIT_S"]

log = logging.getLogger("automl_tl")

#: a refit is attempted when its predicted cost is within this factor of the time left, or is
#: cheap: it stops at the deadline anyway (keeping the search's model), and the time after the
#: search is otherwise unused
REFIT_SLACK = 2.0
CHEAP_REFIT_S = 10.0


@dataclass
class _Result:
    head: Any
    backbone: Any = None


class DeliveryMixin:
    """The delivery of a :class:`~automl_tl.search.Search`: reads ``refit``, ``ensemble``,
    ``no_refit_reason``, ``budget``, ``_results`` (models in memory) and ``_saved_trial``; sets
    ``delivered``."""

    def deliver(self) -> None:
        """Save the selected trial's model: refitted on all labelled items when ``self.refit`` and
        the refit fits the time left, else as the search trained it; averaged with the cheap trials
        :func:`~automl_tl.evaluation.ensemble` adds (trained on the same items as it)."""
        sel = self.selection()
        if sel is None:
            return
        t = self._trial(sel.trial)
        cfg = self.space.config(t.params)
        info: dict[str, Any] = {"trial": sel.trial, "refit": False, "n_train": int(len(self.ctx.plan.train))}
        if self.refit:
            result, calibration = self._refitted(sel.trial, cfg, t, info)
        else:
            result, calibration = None, None
            info["refit_reason"] = f"not refitted ({self.no_refit_reason}): the search's model is delivered"
        ens, members = self._ensemble_members(sel, info)
        if members or (result is None and self._saved_trial != sel.trial):
            if result is None:
                result = self._results.get(sel.trial)
            if result is None:  # selected from an earlier process: rebuild on the training split
                head, backbone = train_final(cfg, replace(self.ctx, seed=self.seed), self.ctx.plan.train,
                                             epochs=t.user_attrs.get(ATTR.EPOCHS) or {})
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
        self.study.set_user_attr(STUDY_ATTR.DELIVERED, info)  # where the model is: part of the record

    def _refitted(self, number: int, cfg, t, info: dict) -> tuple[_Result | None, Calibration | None]:
        """Trial ``number`` (``cfg``, its frozen trial ``t``) refitted on all labelled items and
        saved, with the calibration it was saved with; ``(None, None)`` when the refit does not fit
        the time left, runs out of it or fails. Records what and why in ``info``."""
        epochs = t.user_attrs.get(ATTR.EPOCHS) or {}
        n_all = len(self.ctx.y)
        budget = self.budget.keeping(SAVE_MARGIN_S)
        left, predicted = budget.left(), self.costs.refit(cfg, epochs, t)
        if predicted > max(REFIT_SLACK * left, CHEAP_REFIT_S):
            info["refit_reason"] = (f"not refitted: the refit ({predicted:.0f} s predicted) does not fit "
                                    f"the {max(0.0, left):.0f} s left of the time budget")
            return None, None
        t0 = time.perf_counter()
        try:
            head, backbone = train_final(cfg, replace(self.ctx, seed=self.seed), np.arange(n_all),
                                         epochs=epochs, budget=budget)
        except RefitStopped as exc:
            info["refit_reason"] = f"not refitted: {exc}; the search's model is delivered"
            return None, None
        except BaseException as exc:  # noqa: BLE001 - the fates table decides
            if self._ends_the_run(exc):
                raise
            # out of memory, a bad configuration, anything else: the search's model is still good
            log.warning("the refit failed (%s: %s); delivering the search's model", type(exc).__name__, exc)
            info["refit_reason"] = f"not refitted: the refit failed ({type(exc).__name__}: {exc})"
            return None, None
        result = _Result(head=head, backbone=backbone)
        calibration = self._save(number, result, refitted=True)  # saved before anything else can fail
        info |= {"refit": True, "n_train": n_all, "refit_seconds": round(time.perf_counter() - t0, 1),
                 "refit_reason": f"refitted on all {n_all} labelled items with the epochs "
                                 f"trial {number} needed"}
        return result, calibration

    def _ends_the_run(self, exc: BaseException) -> bool:
        """Whether a failure while delivering ends the run: a Ctrl-C (one that library code turned
        into another error is raised here as KeyboardInterrupt), a stop or a full disk
        (:mod:`automl_tl.fates`). Anything else leaves the search's model to deliver."""
        self._raise_if_interrupted()
        return fate_of(exc)[1] in ENDS_THE_RUN

    def _cheap(self, number: int) -> bool:
        """A trial retrained in seconds: a linear probe on frozen (cached) or classical features."""
        cfg = self.space.config(self._trial(number).params)
        return self.space.is_probe(cfg)

    def _ensemble_members(self, sel: Selection, info: dict) -> tuple[Ensemble | None, list]:
        """The ensemble and its other members, ``(trial number, trained model)``: the cheap trials
        to average with the selected one, trained on the items it was (all labelled items after a
        refit, else the training split); ``(None, [])`` when none helps, when ``--no-ensemble``, or
        when their training does not fit the time left. Records what and why in ``info``."""
        from automl_tl.metrics import metric_function

        none: tuple[Ensemble | None, list] = (None, [])
        if not self.ensemble:
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
        left = self.budget.keeping(SAVE_MARGIN_S).left()
        if cost > left:
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
            if self._ends_the_run(exc):
                raise
            log.warning("training the ensemble's members failed (%s: %s); delivering trial %d alone",
                        type(exc).__name__, exc, sel.trial)
            info["ensemble_reason"] = f"not averaged: training its members failed ({type(exc).__name__}: {exc})"
            return none
        info["ensemble"] = ens.to_dict()
        info["ensemble_reason"] = ens.reason
        return ens, members

    # ------------------------------------------------------------------ saving
    def _deliverable(self, number: int, result, refitted: bool) -> dict:
        """Trial ``number``'s model, adapter and config, as :func:`save_model` takes them."""
        t = self._trial(number)
        cfg = self.space.config(t.params)
        spec = self.ctx.specs[cfg.backbone]
        weights = self.ctx.weights.get(cfg.backbone)
        input_config = dict(self.ctx.input_configs[cfg.backbone])
        model = classifier(spec, weights, input_config, cfg.options, result.head, result.backbone,
                           precision=self.ctx.precision)
        adapter = spec.make_adapter(input_config, weights, None)
        config = {"backbone": cfg.backbone, "input_config": input_config, "options": dict(cfg.options),
                  "params": cfg.to_dict(), "metric": self.ctx.metric, "labels": self.labels,
                  "trial": number, "score": t.value, "score_se": t.user_attrs.get(ATTR.SCORE_SE),
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
