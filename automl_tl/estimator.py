"""AutoTransfer: the scikit-learn style estimator over the whole pipeline.

``__init__`` stores parameters only; ``fit`` returns ``self``; learned state ends in ``_``.
What a fit does before its search is in :mod:`automl_tl.preparation`, the knowledge base's part
in :mod:`automl_tl.warm_start`, the run directory's checks in :mod:`automl_tl.run_directory`.
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
import os
import time
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from automl_tl._version import __version__
from automl_tl import presets
from automl_tl.accelerator import predict_batch, record, requested_batch, resolve_precision
from automl_tl.budget import NO_BUDGET, Budget, require_a_budget
from automl_tl.artifacts import leaderboard_frame
from automl_tl.killpoints import kill_point
from automl_tl.errors import ConfigError, DataError, NotFittedError
# the names below were defined here before the estimator's parts had their own modules
from automl_tl.preparation import (_Clock, _Prepared, _baseline, _left_out, _opts,  # noqa: F401
                                   _probe_evidence, _recommendation_for, fit_featurizers, left_out_of,
                                   prepare, ranked_recommendations, search_space, select_backbones)
from automl_tl.run_directory import (check_early, check_resume, check_run_dir, copy_deliverable,
                                     default_run_dir, split_record, task_record)
from automl_tl.tracking import Tracker, check_tracking_uri
from automl_tl.warm_start import nearest_tasks, remember, warm_start_plan

__all__ = ["AutoTransfer", "select_backbones"]

log = logging.getLogger("automl_tl")

#: the former names of the run directory's checks
_check_run_dir, _check_resume, _split_record = check_run_dir, check_resume, split_record


def _quiet_tensorflow(method):
    """``method`` with TensorFlow's retracing notices held back while it runs ("5 out of the last 7
    calls ... triggered tf.function retracing": Keras' predict on each trial's new model, on texts
    of varying lengths; advice to TensorFlow programmers, not a problem of the user's fit), as the
    CLI holds them back; the ``tensorflow`` logger's level is restored after."""

    @functools.wraps(method)
    def quiet(*args, **kwargs):
        logger = logging.getLogger("tensorflow")
        before = logger.level
        logger.setLevel(max(before, logging.ERROR))
        try:
            return method(*args, **kwargs)
        finally:
            logger.setLevel(before)

    return quiet


def _predictor(est):
    """``est.predictor_``: after a fit, read from the run folder (its current model, as
    ``automl-tl predict`` reads it) at its first use; a fit that ends there, as ``automl-tl fit``
    does, does not read back the model it has just written (seconds, and the model's memory, for
    a large backbone). AttributeError before a fit or a load (``hasattr`` is False)."""
    if "_predictor" not in est.__dict__:
        run = est.__dict__.get("_predictor_run")
        if run is None:
            raise AttributeError("predictor_: this AutoTransfer is not fitted")
        from automl_tl.artifacts import load_predictor

        est.__dict__["_predictor"] = load_predictor(run, plugin_manager=est._pm())
    return est.__dict__["_predictor"]


def _set_predictor(est, predictor) -> None:
    est.__dict__["_predictor"] = predictor


class AutoTransfer:
    """Profile, recommend, search and deliver a transfer-learning classifier.

    >>> clf = AutoTransfer(trials=10).fit("data/flowers")      # doctest: +SKIP
    >>> clf.predict(["rose.jpg"]), clf.best_config_            # doctest: +SKIP

    ``preset`` (``"fast"``, ``"balanced"``, ``"best"``: :mod:`automl_tl.presets`) fills the
    settings left ``None``: ``trials`` and ``time_budget`` (given either, it replaces the preset's
    budget whole), ``strategies``, ``backbones``, ``compare_strategies``, ``patience``, ``ensemble``.
    """

    def __init__(self, *, backbones: Sequence[str] | None = None, trials: int | None = None,
                 time_budget: float | str | None = None, metric: str = "accuracy", seed: int = 0,
                 run_dir: str | None = None, storage: str | None = None, val_fraction: float = 0.2,
                 weights: Mapping[str, str] | None = None, modality: str | None = None,
                 text_column: str | None = None, label_column: str | None = None,
                 path_column: str | None = None, group_column: str | None = None,
                 detect_groups: bool = True,
                 split_column: str | None = None, strategies: Sequence[str] | None = None, cache_dir: str | None = None,
                 batch_size: int | str | None = None, precision: str = "auto", progress: bool = False, report: bool = True,
                 refit: bool | None = None, patience: int | None = None, ensemble: bool | None = None,
                 warm_start: bool | None = None, pruner: str = "median", compare_strategies: bool | None = None,
                 preset: str | None = None,
                 tracking_uri: str | None = None, plugin_manager=None) -> None:
        self.backbones = backbones
        self.trials = trials
        self.time_budget = time_budget
        self.metric = metric
        self.seed = seed
        self.run_dir = run_dir
        self.storage = storage
        self.val_fraction = val_fraction
        self.weights = weights
        self.modality = modality
        self.text_column = text_column
        self.label_column = label_column
        self.path_column = path_column
        self.group_column = group_column
        #: validate by the sources found in the data (automl_tl.sources) when no group_column is given
        self.detect_groups = detect_groups
        self.split_column = split_column
        self.strategies = strategies
        self.cache_dir = cache_dir
        self.batch_size = batch_size  # None / "auto": per backbone and device; precision: automl_tl.accelerator
        self.precision = precision
        self.progress = progress
        self.report = report
        self.refit = refit
        self.patience = patience
        self.ensemble = ensemble
        #: enqueue the winning configurations of the nearest past tasks of the knowledge base
        #: (automl_tl.knowledge); None: yes unless AUTOML_TL_WARM_START=0
        self.warm_start = warm_start
        #: how fine-tuning trials are stopped early (automl_tl.pruners.PRUNERS)
        self.pruner = pruner
        #: before the past tasks' winners, queue one trial of every strategy that applies to the
        #: recommended (or best fine-tunable) backbone, so the report compares strategies
        self.compare_strategies = compare_strategies
        self.preset = preset
        self.tracking_uri = tracking_uri  # log the fit to MLflow there (automl_tl.tracking)
        self.plugin_manager = plugin_manager

    # ------------------------------------------------------------------ sklearn protocol
    _PARAMS = ("backbones", "trials", "time_budget", "metric", "seed", "run_dir", "storage",
               "val_fraction", "weights", "modality", "text_column", "label_column", "path_column",
               "group_column", "detect_groups", "split_column", "strategies", "cache_dir", "batch_size", "precision", "progress", "report",
               "refit", "patience", "ensemble", "warm_start", "pruner", "compare_strategies", "preset", "tracking_uri", "plugin_manager")

    def get_params(self, deep: bool = True) -> dict:
        return {k: getattr(self, k) for k in self._PARAMS}

    def set_params(self, **params) -> "AutoTransfer":
        for k, v in params.items():
            if k not in self._PARAMS:
                raise ConfigError(f"unknown parameter {k!r}; valid: {', '.join(self._PARAMS)}")
            setattr(self, k, v)
        return self

    def __repr__(self) -> str:
        changed = {k: v for k, v in self.get_params().items() if v != _DEFAULTS.get(k)}
        return f"AutoTransfer({', '.join(f'{k}={v!r}' for k, v in changed.items())})"

    # ------------------------------------------------------------------ pieces
    def _pm(self):
        from automl_tl.plugin_manager import get_plugin_manager

        return self.plugin_manager or get_plugin_manager()

    def _load(self, X, y=None):
        from automl_tl.data import load_data

        return load_data(X, y, modalities=self._pm().modalities, modality=self.modality,
                         text_column=self.text_column, label_column=self.label_column,
                         path_column=self.path_column, group_column=self.group_column,
                         split_column=self.split_column, progress=self.progress)

    def profile(self, X, y=None):
        """Load and profile data, rank the candidates by a linear probe, recommend; returns
        ``(DatasetProfile, Recommendation, data, (specs, weights, left_out))``."""
        prep = self._prepare(X, y)
        return prep.profile, prep.recommendation, prep.data, (prep.specs, prep.weights, prep.left_out)

    def recommend(self, X, y=None, *, top: int = 3) -> dict:
        """Ranked recommendations without a search: for each of the ``top`` pretrained backbones
        (ranked by the linear probe of their frozen features), the strategy the table gives it
        and its first configuration, with the evidence (the table's rule and reason, the probe,
        the transferability proxies and each backbone's rank under them, the similarity)."""
        t0 = time.perf_counter()
        prep = self._prepare(X, y)
        prof = prep.profile
        out = ranked_recommendations(self._pm(), prep, top)
        baseline = _baseline(prep.probes, self.metric)
        near = nearest_tasks(prof, prep.probes, prep.data.fingerprint())
        return {"profile": prof.to_dict(), "recommendations": out, "baseline": baseline, "nearest_tasks": near,
                "groups": prep.groups,
                "left_out": prep.left_out, "metric": self.metric, "seconds": round(time.perf_counter() - t0, 1)}

    def _prepare(self, X, y=None, *, budget: Budget = NO_BUDGET, on_data=None) -> _Prepared:
        """Everything before the search: data, profile, folds, the probe, the recommendation
        (:func:`automl_tl.preparation.prepare`).

        ``budget``: the probe starts no new embedding once it is past.
        ``on_data(data)`` is called once the data are loaded, before anything costly.
        """
        return prepare(self, X, y, budget=budget, on_data=on_data)

    # ------------------------------------------------------------------ fit
    @_quiet_tensorflow
    def fit(self, X, y=None, *, started: float | None = None) -> "AutoTransfer":
        """``started``: when the time budget's clock started (``time.monotonic()``); by default
        now. The command line passes its process's start, so a slow start-up (imports on a loaded
        machine) is inside ``--time-budget``, and ``fit_seconds_`` is the wall time since then."""
        from automl_tl.artifacts import atomic_write_json, model_folder
        from automl_tl.pruners import make_pruner
        from automl_tl.search import Search
        from automl_tl.knowledge import task_meta

        now = time.monotonic()
        t_start = now if started is None else min(started, now)
        budget, registry, strategies, chosen = _fit_settings(self, t_start)
        # the probe may use up to half of a time budget; the search and the refit get the rest
        prep = self._prepare(X, y, budget=budget.share(0.5), on_data=lambda data: check_early(self, data))
        data, prof, rec, ctx = prep.data, prep.profile, prep.recommendation, prep.ctx
        run_dir = Path(self.run_dir or default_run_dir(data.source))
        check_run_dir(run_dir)  # checked by check_early already; creates it now
        atomic_write_json(run_dir / "split.json", split_record(data, ctx.plan))
        kill_point("start")
        space = search_space(prep, strategies)
        refit, no_refit_reason = self._refit_decision(prof, budget)
        summary_base = _summary_base(self, prep, task_record(self, data), strategies, registry, budget, refit,
                                     chosen, clock={"started": "process" if started is not None else "fit",
                                            "before_fit_s": round(now - t_start, 2)})
        meta = task_meta(prof, prep.probes)
        warm = warm_start_plan(self.warm_start, meta, ctx, space)
        summary_base["warm_start"] = warm
        tracker = Tracker(self.tracking_uri, run_dir)  # the MLflow mirror; nothing without a URI
        search = Search(ctx=ctx, space=space, run_dir=run_dir, recommendation=rec, storage=self.storage,
                        seed=self.seed, labels=prep.labels, summary_base=summary_base,
                        probes=[p for p in prep.probes if "score" in p], rec_options=prep.rec_options,
                        patience=chosen.patience, seconds_per_item=ctx.cache.seconds_per_item,
                        feature_dims={p["backbone"]: p["dim"] for p in prep.probes if "dim" in p},
                        warm_start=warm["configs"], compare_strategies=chosen.compare_strategies,
                        pruner=make_pruner(self.pruner, max_epochs=space.ft_epochs[1]), callbacks=tracker.callbacks())
        t0 = time.perf_counter()
        try:
            search.run(trials=chosen.trials, budget=budget, refit=refit, progress=self.progress,
                       no_refit_reason=no_refit_reason, ensemble=chosen.ensemble)
        except KeyboardInterrupt:
            if self.report:
                self._write_report(run_dir)  # reports what is finished
            raise
        self._searched(search, prep, run_dir, search_seconds=time.perf_counter() - t0, t_start=t_start)
        if not (run_dir / "model.keras").exists():
            if self.report:
                self._write_report(run_dir)  # explains every failure
            raise _no_model(search, run_dir)
        remember(meta, search, rec, data, seconds=self.fit_seconds_, selection=self.selection_)
        delivered = json.loads((model_folder(run_dir) / "config.json").read_text(encoding="utf-8"))
        self.best_config_ = dict(delivered["params"])
        self.best_score_ = float(delivered["score"])
        self.__dict__.pop("_predictor", None)  # read from the run folder at its first use
        self._predictor_run = run_dir
        if self.report:
            self._write_report(run_dir)
        self.fit_seconds_ = time.monotonic() - t_start  # wall time, the report included
        search.summary_base["clock"]["wall_s"] = round(self.fit_seconds_, 2)
        search.write_summary(finished=True)  # the summary's own record of the wall clock
        tracker.finish(search.study)
        return self

    def _searched(self, search, prep: _Prepared, run_dir: Path, *, search_seconds: float, t_start: float) -> None:
        """What the search learned, as the fitted attributes (the model is read at its first use)."""
        self.run_dir_ = run_dir
        self.study_ = search.study
        self.profile_ = prep.profile
        self.recommendation_ = prep.recommendation
        #: how validation was grouped (the sources found or given) and what to expect on new data
        self.groups_ = dict(prep.groups)
        self.classes_ = np.array(prep.labels)
        self.skipped_ = list(prep.data.skips)
        self.search_seconds_ = search_seconds
        self.fit_seconds_ = time.monotonic() - t_start
        self.cache_stats_ = dict(prep.ctx.cache.stats)
        self.selection_ = search.selection()
        self.delivered_ = dict(search.delivered)
        self.stop_ = dict(search.stop)

    def _refit_decision(self, prof, budget: Budget) -> tuple[bool, str]:
        """Refit by default on small and medium data, and on large data when a time budget is
        given (what it leaves is used); ``refit=True`` / ``False`` decides alone."""
        if self.refit is not None:
            return bool(self.refit), "--no-refit"
        if prof.size_category != "large" or budget.limited:
            return True, ""
        return False, (f"large data ({prof.median_per_class:.0f} per class) and no time budget: the "
                       f"hold-out items would add little for a whole retraining; pass --refit to refit")

    def _write_report(self, run_dir) -> None:
        try:
            from automl_tl.report import write_report
        except ImportError:
            return
        try:
            write_report(run_dir, strategies=self._pm().strategies)
        except Exception as exc:  # noqa: BLE001 - the model is saved; a report problem is reported
            log.warning("the report could not be written: %s: %s", type(exc).__name__, exc)

    # ------------------------------------------------------------------ predict
    predictor_ = property(_predictor, _set_predictor, doc="""The delivered model and what turns raw
        inputs into its inputs (:class:`~automl_tl.artifacts.Predictor`); after :meth:`fit`, read
        from the run folder at its first use (:func:`_predictor`).""")

    def _check_fitted(self):
        if "_predictor" not in self.__dict__ and "_predictor_run" not in self.__dict__:
            raise NotFittedError("this AutoTransfer is not fitted yet: call fit() or AutoTransfer.load()")

    def _inputs(self, X) -> list:
        """The inputs ``X`` stands for, as ``automl-tl predict`` reads them (:func:`automl_tl.data.api_inputs`)."""
        from automl_tl.data import api_inputs

        return api_inputs(X, self.predictor_.modality, self.predictor_.config.get("columns") or {})

    def _usable(self, X) -> list:
        items = self._inputs(X)
        _, cleaned, skips = self.predictor_.check_inputs(items)
        if skips:
            detail = "; ".join(f"{s.item}: {s.reason}" for s in skips[:5])
            raise DataError(f"{len(skips)} of {len(items)} inputs cannot be used: {detail}")
        return cleaned

    @_quiet_tensorflow
    def predict_proba(self, X) -> np.ndarray:
        self._check_fitted()
        return self.predictor_.predict_proba(self._usable(X), batch_size=_predict_batch(self))

    def predict(self, X) -> np.ndarray:
        proba = self.predict_proba(X)
        return np.array(self.predictor_.labels)[np.argmax(proba, axis=1)]

    def evaluate(self, X, y=None) -> dict:
        """``automl-tl evaluate``'s record (:func:`automl_tl.report.evaluate_labelled`) on ``X`` labelled ``y``,
        or on a folder or table ``X`` holding its labels."""
        from automl_tl.report import evaluate_labelled

        self._check_fitted()
        return evaluate_labelled(self.predictor_, X if y is None else self._inputs(X), y, batch_size=_predict_batch(self))

    def score(self, X, y) -> float:
        from automl_tl.metrics import metric_function

        from automl_tl.data import label_str

        return float(metric_function(self.metric)([label_str(v) for v in y], list(self.predict(X))))

    def leaderboard(self):
        """Every trial of the search as a pandas DataFrame: the columns of ``leaderboard.csv``,
        by state and then best score first, read from the study (a loaded run: its ``study.db``)."""
        return leaderboard_frame(getattr(self, "study_", None), getattr(self, "run_dir_", None))

    # ------------------------------------------------------------------ persistence
    def save(self, path) -> Path:
        """Copy the deliverable (model.keras, config.json, labels.json, assets/, an ensemble's
        members/) to ``path``."""
        self._check_fitted()
        return copy_deliverable(Path(self.run_dir_), Path(path))

    @classmethod
    def load(cls, path, **params) -> "AutoTransfer":
        from automl_tl.artifacts import load_predictor

        obj = cls(**params)
        obj.predictor_ = load_predictor(path, plugin_manager=params.get("plugin_manager"))
        obj.metric = obj.predictor_.config.get("metric", obj.metric)
        obj.classes_ = np.array(obj.predictor_.labels)
        obj.best_config_ = dict(obj.predictor_.config["params"])
        obj.best_score_ = float(obj.predictor_.config["score"])
        obj.run_dir_ = Path(path)
        return obj


_DEFAULTS = {k: v.default for k, v in inspect.signature(AutoTransfer.__init__).parameters.items()
             if k != "self"}


def _predict_batch(est: AutoTransfer) -> int:
    """The batch size of ``est``'s predictions (:func:`automl_tl.accelerator.predict_batch`)."""
    return predict_batch(est.batch_size, getattr(est, "best_config_", {}).get("backbone"))


def _fit_settings(est: AutoTransfer, t_start: float):
    """The settings ``fit`` of ``est`` checks before any work: ``(budget, registry, strategies,
    chosen)``, the time budget from ``t_start``, the strategy registry, the strategies searched and
    the settings with the preset's filled in (:func:`automl_tl.presets.settings`)."""
    from automl_tl.pruners import PRUNERS
    from automl_tl.metrics import metric_function

    chosen = presets.settings(est)
    require_a_budget(chosen.trials, chosen.time_budget, trials_word="trials=N", time_word="time_budget=seconds")
    if est.pruner not in PRUNERS:
        raise ConfigError(f"unknown pruner {est.pruner!r}: choose one of {', '.join(PRUNERS)}")
    if chosen.trials is not None and chosen.trials < 1:
        raise ConfigError(f"trials must be at least 1, not {chosen.trials}")
    budget = Budget.of(chosen.time_budget, started=t_start)  # 600, "10m", "1h30m"; NO_BUDGET for None
    metric_function(est.metric)
    requested_batch(est.batch_size), resolve_precision(est.precision)  # a bad value says so before any work
    check_tracking_uri(est.tracking_uri)
    registry = est._pm().strategies
    strategies = {name: registry.get(name) for name in (chosen.strategies or registry.names())}
    return budget, registry, strategies, chosen


def _summary_base(est: AutoTransfer, prep: _Prepared, task: dict, strategies: dict, registry, budget: Budget,
                  refit: bool, chosen: presets.Settings, *, clock: dict) -> dict:
    """What summary.json holds from the start of the search: the task, the profile, the
    recommendation, the probe, the candidates and strategies, the settings. ``clock``: where the
    budget's clock started."""
    plan, ctx = prep.ctx.plan, prep.ctx
    return {
        "version": __version__,
        "task": task | {"n_train": int(len(plan.train)), "n_val": int(len(plan.val))},
        "profile": prep.profile.to_dict(), "recommendation": prep.recommendation.to_dict(),
        "probe": list(prep.probes),
        "candidates": [s.summary() | {"weights": prep.weights[s.name].to_dict()} for s in prep.specs],
        # what each searched strategy declares, so a report needs no plugin installed to show it
        "strategies": [{"name": name, "rank": int(s.rank), "fine_tunes": bool(s.fine_tunes),
                        "description": str(s.description), "plugin": registry.plugin_of(name)}
                       for name, s in strategies.items()],
        "left_out": left_out_of(prep), "strategy_table": est._pm().strategy_table.to_dict(),
        "baseline": _baseline(prep.probes, est.metric), "refit": refit, "groups": prep.groups,
        "time_budget": budget.seconds if budget.limited else None, "timings": dict(prep.timings),
        "pruner": est.pruner, "preset": chosen.to_dict(),
        # where the budget's clock started: seconds before fit() (the process's start-up)
        "clock": clock,
        "forward_seconds": {"probe": round(float(ctx.cache.stats.get("forward_seconds", 0.0)), 2)},
        # the device, the precision and each candidate's batch size (logged once here)
        "accelerator": record(est.batch_size, est.precision, ctx.precision,
                              {s.name: ctx.batch_for(s.name) for s in prep.specs}),
    }


def _no_model(search, run_dir: Path) -> NotFittedError:
    """The error of a search that saved no model, with its failure reasons or why it stopped."""
    reasons = sorted({t.user_attrs.get("fail_reason", "") for t in search.study.trials} - {""})
    why = (f"Failure reasons: {'; '.join(reasons[:5])}" if reasons else
           f"The search stopped: {search.stop.get('reason', 'unknown')}. Give it more time or trials.")
    return NotFittedError(f"no trial completed, so no model was saved in {run_dir}. {why}")
