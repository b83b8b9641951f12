"""AutoTransfer: the scikit-learn style estimator over the whole pipeline.

``__init__`` stores parameters only; ``fit`` returns ``self``; learned state ends in ``_``.
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
import shutil
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from automl_tl._version import __version__
from automl_tl.budget import NO_BUDGET, Budget, require_a_budget
from automl_tl.killpoints import kill_point
from automl_tl.errors import (BackboneLeftOutWarning, ConfigError, DataError, NotFittedError,
                              WeightsUnavailableError)

__all__ = ["AutoTransfer", "select_backbones"]

log = logging.getLogger("automl_tl")


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


def _left_out(msg: str) -> None:
    """Say a backbone was left out once: as a warning a caller may filter, and in the log where
    logging is set up (the CLI, which filters the warning); without a handler Python's last resort
    printed the log record as well, the same line twice."""
    warnings.warn(msg, BackboneLeftOutWarning, stacklevel=3)
    if log.hasHandlers():
        log.warning(msg)


def select_backbones(pm, modality: str, names: Sequence[str] | None = None,
                     overrides: Mapping[str, str] | None = None):
    """Candidate backbones whose weights can be had here: ``(specs, weights, left_out)``.

    A backbone without obtainable weights is left out with a warning that says how to provide
    them; if none is left, :class:`WeightsUnavailableError`.
    """
    overrides = dict(overrides or {})
    if names:
        specs = [pm.backbones.get(n) for n in names]
        wrong = [s.name for s in specs if s.modality != modality]
        if wrong:
            raise ConfigError(f"backbone(s) {', '.join(wrong)} are not for {modality} data; run "
                              f"`automl-tl backbones --modality {modality}` to list those that are.")
    else:
        specs = pm.backbones.list(modality=modality)
    for name in overrides:
        pm.backbones.get(name)  # unknown names in --weights fail clearly
    kept, weights, left_out = [], {}, []
    for spec in specs:
        try:
            weights[spec.name] = spec.resolve_weights(overrides)
            kept.append(spec)
        except WeightsUnavailableError as exc:
            left_out.append({"backbone": spec.name, "reason": str(exc)})
            if names:  # asked for by name: each one is said, with how to provide its weights
                _left_out(f"backbone {spec.name!r} left out: {exc}")
    if left_out and not names:
        # the default candidates: offline, most have no weights here; one line says which (each
        # reason is in summary.json's "left_out" and in `automl-tl backbones`)
        from automl_tl.data import listed

        msg = (f"{len(left_out)} {modality} backbone(s) left out, no pretrained weights here: "
               f"{listed([x['backbone'] for x in left_out])} (give them with --weights NAME=PATH or "
               f"$AUTOML_TL_WEIGHTS_DIR, or connect to the network; `automl-tl backbones` says where "
               f"each one comes from)")
        _left_out(msg)
    if not kept:
        raise WeightsUnavailableError(
            f"no {modality} backbone has pretrained weights available here. "
            + " ".join(x["reason"] for x in left_out))
    return kept, weights, left_out


class AutoTransfer:
    """Profile, recommend, search and deliver a transfer-learning classifier.

    >>> clf = AutoTransfer(trials=10).fit("data/flowers")      # doctest: +SKIP
    >>> clf.predict(["rose.jpg"]), clf.best_config_            # doctest: +SKIP
    """

    def __init__(self, *, backbones: Sequence[str] | None = None, trials: int | None = 20,
                 time_budget: float | str | None = None, metric: str = "accuracy", seed: int = 0,
                 run_dir: str | None = None, storage: str | None = None, val_fraction: float = 0.2,
                 weights: Mapping[str, str] | None = None, modality: str | None = None,
                 text_column: str | None = None, label_column: str | None = None,
                 path_column: str | None = None, group_column: str | None = None,
                 detect_groups: bool = True,
                 split_column: str | None = None, strategies: Sequence[str] | None = None, cache_dir: str | None = None,
                 batch_size: int = 32, progress: bool = False, report: bool = True,
                 refit: bool | None = None, patience: int = 15, ensemble: bool = True,
                 warm_start: bool | None = None, pruner: str = "median", plugin_manager=None) -> None:
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
        self.batch_size = batch_size
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
        self.plugin_manager = plugin_manager

    # ------------------------------------------------------------------ sklearn protocol
    _PARAMS = ("backbones", "trials", "time_budget", "metric", "seed", "run_dir", "storage",
               "val_fraction", "weights", "modality", "text_column", "label_column", "path_column",
               "group_column", "detect_groups", "split_column", "strategies", "cache_dir", "batch_size", "progress", "report",
               "refit", "patience", "ensemble", "warm_start", "pruner", "plugin_manager")

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
        from automl_tl.transferability import PROXIES

        t0 = time.perf_counter()
        prep = self._prepare(X, y)
        pm, prof = self._pm(), prep.profile
        scored = [p for p in prep.probes if "score" in p]
        best: dict[str, dict] = {}
        for p in scored:  # probes are best first: the first row of a backbone is its best readout
            best.setdefault(p["backbone"], p)
        pretrained = [b for b in best if not best[b]["classical"]]
        ranks = {"linear_probe": {b: i + 1 for i, b in enumerate(pretrained)}}
        for proxy in PROXIES:
            values = {b: max(float((p.get("proxies") or {}).get(proxy, -np.inf)) for p in scored if p["backbone"] == b)
                      for b in pretrained}
            order = sorted((b for b in values if np.isfinite(values[b])), key=lambda b: -values[b])
            ranks[proxy] = {b: i + 1 for i, b in enumerate(order)}
        out = []
        for name in pretrained[:max(1, int(top))]:
            rec, _ = _recommendation_for(pm, prof, pm.backbones.get(name))  # what fit would enqueue
            info = prof.backbones.get(name, {})
            out.append({
                "rank": len(out) + 1, "backbone": name, "strategy": rec.strategy, "rule": rec.rule,
                "config": {"backbone": name, "strategy": rec.strategy} | dict(rec.params),
                "reason": rec.reason,
                "evidence": {"probe": {k: best[name].get(k) for k in ("score", "se", "C", "options")},
                             "proxies": {k: v for k, v in (best[name].get("proxies") or {}).items() if k in PROXIES},
                             "ranks": {m: r.get(name) for m, r in ranks.items()},
                             "similarity": info.get("similarity"), "similar": info.get("similar")}})
        baseline = _baseline(prep.probes, self.metric)
        from automl_tl.knowledge import nearest, read_records, task_meta

        meta = task_meta(prof, prep.probes)
        near = [{"distance": round(d, 3), "label": r.get("label", ""), "source": r.get("source"), "meta": r["meta"],
                 "best": {k: r["best"][k] for k in ("strategy", "backbone", "score")},
                 "selected": None if not r.get("selected") else {
                     "strategy": r["selected"]["strategy"], "backbone": r["selected"]["params"]["backbone"],
                     "score": r["selected"]["score"]},
                 "recommended": r.get("recommended")}
                for d, r in nearest(meta, read_records(), 3, exclude_fingerprint=prep.data.fingerprint())]
        return {"profile": prof.to_dict(), "recommendations": out, "baseline": baseline, "nearest_tasks": near,
                "groups": prep.groups,
                "left_out": prep.left_out, "metric": self.metric, "seconds": round(time.perf_counter() - t0, 1)}

    def _prepare(self, X, y=None, *, budget: Budget = NO_BUDGET, on_data=None) -> "_Prepared":
        """Everything before the search: data, profile, folds, the probe, the recommendation.

        ``budget``: the probe starts no new embedding once it is past.
        ``on_data(data)`` is called once the data are loaded, before anything costly.
        """
        from dataclasses import replace

        from automl_tl.cache import EmbeddingCache
        from automl_tl import grouping
        from automl_tl.data import evaluation_plan
        from automl_tl.probe import probe_candidates
        from automl_tl.profile import profile_data
        from automl_tl.training import TrialContext

        if not 0 < self.val_fraction < 1:
            raise ConfigError(f"val_fraction must be between 0 and 1, not {self.val_fraction}")
        pm = self._pm()
        clock = _Clock()
        data = self._load(X, y)
        if on_data is not None:
            on_data(data)
        # validate the way the model will be used: on new sources when the items come from a few
        data, groups = grouping.resolve(data, detect=self.detect_groups, column=self.group_column)
        clock.lap("load")
        specs, weights, left_out = select_backbones(pm, data.modality, self.backbones, self.weights)
        cache = EmbeddingCache(self.cache_dir)
        weights = dict(weights) | fit_featurizers(specs, data, cache.root)
        modality = pm.modalities.get(data.modality)
        prof = profile_data(data, modality=modality, table=pm.strategy_table, candidates=specs,
                            weights=weights, progress=self.progress)
        clock.lap("profile")
        labels = data.classes
        index = {c: i for i, c in enumerate(labels)}
        y_int = np.array([index[c] for c in data.labels], dtype=np.int64)
        plan = evaluation_plan(data, y_int, val_fraction=self.val_fraction, seed=self.seed)
        class_weight = None
        if prof.imbalanced:
            counts = np.bincount(y_int, minlength=len(labels)).astype(float)
            class_weight = {i: float(len(y_int) / (len(labels) * max(c, 1))) for i, c in enumerate(counts)}
        input_configs = {s.name: dict(prof.backbones[s.name]["input_config"]) for s in specs}
        ctx = TrialContext(data=data, plan=plan, y=y_int, n_classes=len(labels),
                           input_configs=input_configs, weights=weights, specs={s.name: s for s in specs},
                           modality=modality, cache=cache, metric=self.metric, class_weight=class_weight,
                           seed=self.seed, batch_size=self.batch_size, progress=self.progress,
                           strategies=pm.strategies.as_dict())
        probes = probe_candidates(ctx, specs, budget=budget, log=log)
        if not groups["used"] and self.detect_groups and data.groups is None and data.split is None \
                and not groups.get("confounded"):
            # the last resort: near-duplicates in the best frozen features; the probe again on
            # folds that keep each cluster whole (the features are cached: a logistic regression each)
            found = grouping.clusters(ctx, probes)
            if found is None:
                groups["reason"] += ", and the frozen features hold no tight clusters of near-duplicates"
            else:
                data, groups = grouping.resolve(replace(data, found=found), detect=True)
                plan = evaluation_plan(data, y_int, val_fraction=self.val_fraction, seed=self.seed)
                ctx = replace(ctx, data=data, plan=plan, probes={})
                probes = probe_candidates(ctx, specs, budget=budget, log=log)
        groups = grouping.compare(ctx, probes, groups, seed=self.seed, val_fraction=self.val_fraction)
        clock.lap("probe")
        backbones = {name: dict(info) | {"probe": next((p for p in probes if p["backbone"] == name
                                                        and "score" in p), None)}
                     for name, info in prof.backbones.items()}
        prof = replace(prof, backbones=backbones, probe=tuple(probes))
        spec = pm.backbones.get(prof.best_backbone() or specs[0].name)
        rec, rec_options = _recommendation_for(pm, prof, spec)
        rec = replace(rec, reason=f"{rec.reason} {_probe_evidence(probes, spec.name)}".strip())
        return _Prepared(data=data, profile=prof, recommendation=rec, rec_options=rec_options,
                         specs=specs, weights=weights, left_out=left_out, ctx=ctx, probes=probes,
                         modality=modality, labels=labels, timings=clock.laps, groups=groups)

    # ------------------------------------------------------------------ fit
    @_quiet_tensorflow
    def fit(self, X, y=None, *, started: float | None = None) -> "AutoTransfer":
        """``started``: when the time budget's clock started (``time.monotonic()``); by default
        now. The command line passes its process's start, so a slow start-up (imports on a loaded
        machine) is inside ``--time-budget``, and ``fit_seconds_`` is the wall time since then."""
        from automl_tl.artifacts import atomic_write_json, load_predictor
        from automl_tl.pruners import PRUNERS, make_pruner
        from automl_tl.search import Search
        from automl_tl.knowledge import task_meta
        from automl_tl.metrics import metric_function

        now = time.monotonic()
        t_start = now if started is None else min(started, now)
        require_a_budget(self.trials, self.time_budget, trials_word="trials=N", time_word="time_budget=seconds")
        if self.pruner not in PRUNERS:
            raise ConfigError(f"unknown pruner {self.pruner!r}: choose one of {', '.join(PRUNERS)}")
        if self.trials is not None and self.trials < 1:
            raise ConfigError(f"trials must be at least 1, not {self.trials}")
        budget = Budget.of(self.time_budget, started=t_start)  # 600, "10m", "1h30m"; NO_BUDGET for None
        metric_function(self.metric)
        registry = self._pm().strategies
        strategies = {name: registry.get(name) for name in (self.strategies or registry.names())}

        def task_of(data) -> dict:
            return {"modality": data.modality, "source": data.source, "metric": self.metric,
                    "seed": self.seed, "val_fraction": self.val_fraction,
                    "data_fingerprint": data.fingerprint(), "labels_fingerprint": data.labels_fingerprint(),
                    # the folds follow the grouping: a search resumed under another scores differently
                    "groups": (f"column {self.group_column}" if self.group_column else
                               "found" if self.detect_groups else "none")}

        def check_early(data) -> None:  # a run directory that will be refused: say so before the probe
            run_dir = Path(self.run_dir or default_run_dir(data.source))
            _check_run_dir(run_dir, create=False)
            _check_resume(run_dir, task_of(data))

        # the probe may use up to half of a time budget; the search and the refit get the rest
        prep = self._prepare(X, y, budget=budget.share(0.5), on_data=check_early)
        data, prof, rec, ctx = prep.data, prep.profile, prep.recommendation, prep.ctx
        run_dir = Path(self.run_dir or default_run_dir(data.source))
        _check_run_dir(run_dir)  # checked by check_early already; creates it now
        task = task_of(data)
        plan = ctx.plan
        atomic_write_json(run_dir / "split.json", _split_record(data, plan))
        kill_point("start")
        space = search_space(prep, strategies)
        refit, no_refit_reason = self._refit_decision(prof, budget)
        summary_base = {
            "version": __version__,
            "task": task | {"n_train": int(len(plan.train)), "n_val": int(len(plan.val))},
            "profile": prof.to_dict(), "recommendation": rec.to_dict(), "probe": list(prep.probes),
            "candidates": [s.summary() | {"weights": prep.weights[s.name].to_dict()} for s in prep.specs],
            # what each searched strategy declares, so a report needs no plugin installed to show it
            "strategies": [{"name": name, "rank": int(s.rank), "fine_tunes": bool(s.fine_tunes),
                            "description": str(s.description), "plugin": registry.plugin_of(name)}
                           for name, s in strategies.items()],
            "left_out": left_out_of(prep), "strategy_table": self._pm().strategy_table.to_dict(),
            "baseline": _baseline(prep.probes, self.metric), "refit": refit, "groups": prep.groups,
            "time_budget": budget.seconds if budget.limited else None, "timings": dict(prep.timings),
            "pruner": self.pruner,
            # where the budget's clock started: seconds before fit() (the process's start-up)
            "clock": {"started": "process" if started is not None else "fit", "before_fit_s": round(now - t_start, 2)},
            "forward_seconds": {"probe": round(float(ctx.cache.stats.get("forward_seconds", 0.0)), 2)},
        }
        meta = task_meta(prof, prep.probes)
        warm = self._warm_start(meta, ctx, space)
        summary_base["warm_start"] = warm
        search = Search(ctx=ctx, space=space, run_dir=run_dir, recommendation=rec, storage=self.storage,
                        seed=self.seed, labels=prep.labels, summary_base=summary_base,
                        probes=[p for p in prep.probes if "score" in p], rec_options=prep.rec_options,
                        patience=self.patience, seconds_per_item=ctx.cache.seconds_per_item,
                        feature_dims={p["backbone"]: p["dim"] for p in prep.probes if "dim" in p},
                        warm_start=warm["configs"],
                        pruner=make_pruner(self.pruner, max_epochs=space.ft_epochs[1]))
        t0 = time.perf_counter()
        try:
            search.run(trials=self.trials, budget=budget, refit=refit, progress=self.progress,
                       no_refit_reason=no_refit_reason, ensemble=self.ensemble)
        except KeyboardInterrupt:
            if self.report:
                self._write_report(run_dir)  # reports what is finished
            raise
        self.run_dir_ = run_dir
        self.study_ = search.study
        self.profile_ = prof
        self.recommendation_ = rec
        #: how validation was grouped (the sources found or given) and what to expect on new data
        self.groups_ = dict(prep.groups)
        self.classes_ = np.array(prep.labels)
        self.skipped_ = list(data.skips)
        self.search_seconds_ = time.perf_counter() - t0
        self.fit_seconds_ = time.monotonic() - t_start
        self.cache_stats_ = dict(ctx.cache.stats)
        self.selection_ = search.selection()
        self.delivered_ = dict(search.delivered)
        self.stop_ = dict(search.stop)
        if not (run_dir / "model.keras").exists():
            if self.report:
                self._write_report(run_dir)  # explains every failure
            reasons = sorted({t.user_attrs.get("fail_reason", "") for t in search.study.trials} - {""})
            why = (f"Failure reasons: {'; '.join(reasons[:5])}" if reasons else
                   f"The search stopped: {search.stop.get('reason', 'unknown')}. Give it more time or trials.")
            raise NotFittedError(f"no trial completed, so no model was saved in {run_dir}. {why}")
        self._remember(meta, search, rec, data)
        self.predictor_ = load_predictor(run_dir, plugin_manager=self._pm())
        self.best_config_ = dict(self.predictor_.config["params"])
        self.best_score_ = float(self.predictor_.config["score"])
        if self.report:
            self._write_report(run_dir)
        self.fit_seconds_ = time.monotonic() - t_start  # wall time, the report included
        search.summary_base["clock"]["wall_s"] = round(self.fit_seconds_, 2)
        search.write_summary(finished=True)  # the summary's own record of the wall clock
        return self

    def _warm_start(self, meta, ctx, space) -> dict:
        """The configurations of the nearest past tasks this search will enqueue (none when the
        warm start is off or the knowledge base is empty)."""
        from automl_tl.knowledge import knowledge_path, read_records, warm_start_configs, warm_start_enabled

        if not warm_start_enabled(self.warm_start):
            return {"enabled": False, "configs": []}
        # a record of this very data (an earlier run on it) is not evidence about a new task
        pretrained = [name for name, spec in ctx.specs.items() if not spec.classical]
        configs = warm_start_configs(meta, read_records(), backbones=pretrained, strategies=space.strategies,
                                     exclude_fingerprint=ctx.data.fingerprint())
        for c in configs:
            log.info("warm start: %s / %s from the past task %r (distance %.2f, scored %.4f there)",
                     c["params"]["backbone"], c["params"]["strategy"], c["label"], c["distance"], c["score"])
        return {"enabled": True, "knowledge_base": str(knowledge_path()), "configs": configs}

    def _remember(self, meta, search, rec, data) -> None:
        """Append this search to the knowledge base; a failure to write it is only a warning."""
        from automl_tl.knowledge import append_record, make_record

        try:
            record = make_record(meta=meta, trials=search.study.get_trials(deepcopy=False), recommendation=rec,
                                 label=Path(str(data.source)).name, fingerprint=data.fingerprint(),
                                 seconds=self.fit_seconds_, transferability=search.transferability(),
                                 selected=None if self.selection_ is None else self.selection_.trial)
            if record is not None:
                append_record(record)
        except Exception as exc:  # noqa: BLE001 - the model is saved; the knowledge base is extra
            log.warning("the knowledge base could not be written (%s: %s); set AUTOML_TL_KNOWLEDGE to a "
                        "writable file to keep what this search found", type(exc).__name__, exc)

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
    def _check_fitted(self):
        if not hasattr(self, "predictor_"):
            raise NotFittedError("this AutoTransfer is not fitted yet: call fit() or AutoTransfer.load()")

    def _inputs(self, X) -> list:
        """The inputs ``X`` stands for, as ``automl-tl predict`` reads them: a table file or a
        folder for its rows or files, a DataFrame for its column of inputs (the fitted one, or its
        only column), one path or text for itself, anything else iterated."""
        import pandas as pd

        from automl_tl.data import held_inputs_as_files, listed, prediction_inputs

        columns = self.predictor_.config.get("columns") or {}
        if isinstance(X, (str, os.PathLike)):
            return [x.value for x in prediction_inputs(
                [os.fspath(X)], self.predictor_.modality, None, (columns.get("inputs"), columns.get("labels")))]
        if isinstance(X, pd.DataFrame):
            names = [str(c) for c in X.columns]
            column = columns.get("inputs") if columns.get("inputs") in names else names[0] if len(names) == 1 else None
            if column is None:
                raise DataError(f"a DataFrame of {len(names)} columns ({listed(names, 5)}): pass the column of "
                                f"inputs, e.g. predict(frame[{names[0]!r}])")
            items = X[column].tolist()
        else:
            items = list(X)
        # images held in memory (arrays, PIL images, a Hugging Face dataset's cells): read from files
        return (held_inputs_as_files(items, "<inputs>") or (items,))[0]

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
        return self.predictor_.predict_proba(self._usable(X), batch_size=self.batch_size)

    def predict(self, X) -> np.ndarray:
        proba = self.predict_proba(X)
        return np.array(self.predictor_.labels)[np.argmax(proba, axis=1)]

    def score(self, X, y) -> float:
        from automl_tl.metrics import metric_function

        from automl_tl.data import label_str

        return float(metric_function(self.metric)([label_str(v) for v in y], list(self.predict(X))))

    # ------------------------------------------------------------------ persistence
    def save(self, path) -> Path:
        """Copy the deliverable (model.keras, config.json, labels.json, assets/, an ensemble's
        members/) to ``path``."""
        self._check_fitted()
        src, dst = Path(self.predictor_.run_dir), Path(path)
        if dst.exists() and dst.resolve() == src.resolve():
            return dst
        if dst.exists() and any(dst.iterdir()) and not (dst / "config.json").exists():
            raise ConfigError(f"{dst} exists and is not a saved model: choose a new or empty folder")
        tmp = dst.with_name(f".{dst.name}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        # from the delivered model's own folder: an ensemble's members/ live only there
        from automl_tl.artifacts import model_folder

        base = model_folder(src)
        for name in ("model.keras", "config.json", "labels.json", "assets", "members"):
            s = base / name
            if s.is_dir():
                shutil.copytree(s, tmp / name)
            elif s.exists():
                shutil.copy2(s, tmp / name)
        if dst.exists():
            shutil.rmtree(dst)
        tmp.rename(dst)
        return dst

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


def default_run_dir(source: str) -> Path:
    name = Path(str(source)).stem if not str(source).startswith("<") else "dataframe"
    return Path("runs") / (name or "run")



def _check_run_dir(run_dir: Path, *, create: bool = True) -> None:
    """Create ``run_dir`` or accept it: a new or empty folder, or an automl-tl run to resume. A
    folder of someone else's files is refused (nothing in it is ever overwritten or deleted).
    ``create=False`` only checks (before the profile and the probe, so a refusal comes first)."""
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"--run-dir {run_dir} is an existing file, not a folder; give a new or empty folder")
    if run_dir.is_dir():
        try:
            entries = sorted(p.name for p in run_dir.iterdir())
        except OSError as exc:
            raise ConfigError(f"cannot read the run directory {run_dir} ({exc.strerror}); give another --run-dir") from exc
        from automl_tl.schema import RUN_MARKERS

        if entries and not any((run_dir / m).exists() for m in RUN_MARKERS):
            shown = ", ".join(entries[:5]) + (", ..." if len(entries) > 5 else "")
            raise ConfigError(f"--run-dir {run_dir} is not empty ({shown}) and is not an automl-tl run: "
                              f"give a new or empty folder (nothing of yours is overwritten)")
    if not create:
        return
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / f".write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
        from automl_tl.schema import RUN_MARKER

        if not (run_dir / RUN_MARKER).exists():
            (run_dir / RUN_MARKER).write_text("an automl-tl run directory (automl-tl fit writes and resumes it)\n")
    except OSError as exc:
        raise ConfigError(f"cannot write to the run directory {run_dir} ({exc.strerror or exc}); "
                          f"give a --run-dir you can write to") from exc


def _check_resume(run_dir: Path, task: dict) -> None:
    """A run directory resumes only the same task: same inputs, labels, metric, seed, split."""
    import json

    summary = run_dir / "summary.json"
    if not summary.exists():
        return
    try:
        old = json.loads(summary.read_text()).get("task", {})
    except (ValueError, OSError):
        return
    from automl_tl.schema import task_changes

    changed = task_changes(old, task)
    if changed:
        raise ConfigError(f"{run_dir} holds a search of a different task ({', '.join(changed)} changed "
                          f"since). Use another --run-dir, or delete {run_dir} to start over.")


@dataclass(frozen=True, kw_only=True)
class _Prepared:
    data: Any
    profile: Any
    recommendation: Any
    rec_options: dict
    specs: list
    weights: dict
    left_out: list
    ctx: Any
    probes: list
    modality: Any
    labels: list
    timings: dict  # seconds per step before the search: load, profile, probe
    groups: dict = field(default_factory=dict)  # how validation is grouped (automl_tl.grouping)


class _Clock:
    """Seconds between laps, by name (what a run spent where: summary.json ``timings``)."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._t = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = round(now - self._t, 2)
        self._t = now


def left_out_of(prep: _Prepared) -> list:
    return list(prep.left_out) + [{"backbone": p["backbone"], "options": p["options"], "reason": p["skipped"]}
                                  for p in prep.probes if "skipped" in p]


def fit_featurizers(specs, data, cache_root) -> dict:
    """Weights learned from the inputs themselves (no labels), e.g. a TF-IDF vocabulary: fitted
    once per dataset into the cache folder."""
    from automl_tl.weights import ResolvedWeights

    out = {}
    for spec in specs:
        if spec.fit_weights is None:
            continue
        folder = Path(cache_root) / "fitted" / f"{spec.name}-{data.fingerprint()}"
        if not (folder / ".done").exists():
            tmp = folder.with_name(f"{folder.name}.{os.getpid()}.tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            spec.fit_weights(list(data.items), str(tmp))
            (tmp / ".done").write_text("ok")
            shutil.rmtree(folder, ignore_errors=True)
            os.replace(tmp, folder)
        out[spec.name] = ResolvedWeights(backbone=spec.name, kind="fitted", location=str(folder))
    return out


def search_space(prep: "_Prepared", strategies) -> "SearchSpace":
    """The space a search of ``prep`` explores: every candidate, with fine-tuning for the two
    pretrained backbones the probe ranked best."""
    from automl_tl.search import SearchSpace

    ctx = prep.ctx
    augmentable = {s.name: prep.modality.augmentation(ctx.input_configs[s.name]) is not None for s in prep.specs}
    ranked = [p["backbone"] for p in prep.probes if "score" in p and not p["classical"]]
    tunable = [b for b in dict.fromkeys(ranked) if ctx.specs[b].fine_tunable][:2]
    return SearchSpace(specs=ctx.specs, augmentable=augmentable, strategies=strategies,
                       fine_tune_backbones=tuple(tunable) or None)


def _recommendation_for(pm, prof, spec):
    """The strategy table's recommendation for backbone ``spec`` on this profile, with its first
    readout options (also in its params): ``(rec, options)``."""
    from dataclasses import replace

    rec = pm.strategy_table.recommend(prof, backbone=spec.name, fine_tunable=spec.fine_tunable)
    top = prof.best_probe(spec.name)
    options = dict(top["options"]) if top else {}
    strategy = pm.strategies.as_dict().get(rec.strategy)
    if strategy is not None and strategy.fine_tunes:
        # the probe ranks frozen readouts; fine-tuning adapts the encoder under the readout
        # it was pretrained with (the first option). bench_vs_linear_probe, Rotten Tomatoes
        # 2 000 texts: LP-FT trials with mean pooling scored 0.805 / 0.8075 on the hold-out;
        # with the probe's best readout (the last three layers' means) all four stayed at
        # their head start, 0.785
        options = {k: v[0] for k, v in spec.options.items()}
    return replace(rec, params=dict(rec.params) | options), options


def _probe_evidence(probes, best: str) -> str:
    scored = [p for p in probes if "score" in p]
    if not scored:
        return ""
    top = next((p for p in scored if p["backbone"] == best), None)
    parts = [f"{p['backbone']}{_opts(p['options'])} {p['score']:.3f}±{p['se']:.3f}" for p in scored[:5]]
    text = f"Linear probe (logistic regression on frozen features): {', '.join(parts)}."
    if top is not None:
        text += f" {best} ranks best among the pretrained backbones."
    classical = [p for p in scored if p["classical"]]
    if classical and top is not None and classical[0]["score"] > top["score"] + top["se"]:
        text += (f" The classical baseline {classical[0]['backbone']} scores higher on this data; it "
                 f"is searched too and delivered if it stays ahead.")
    return text


def _opts(options) -> str:
    return f" ({', '.join(f'{k}={v}' for k, v in options.items())})" if options else ""


def _baseline(probes, metric: str) -> dict | None:
    """The run's classical baseline: the best classical featurizer's linear probe."""
    classical = [p for p in probes if "score" in p and p.get("classical")]
    if not classical:
        return None
    p = classical[0]
    return {"name": f"{p['backbone']}{_opts(p['options'])} + logistic regression", "score": p["score"],
            "score_se": p["se"], "metric": metric, "seconds": p["seconds"], "backbone": p["backbone"]}


def _split_record(data, plan) -> dict:
    def part(idx):
        return {"items": [str(data.items[i]) for i in idx], "labels": [data.labels[i] for i in idx]}

    return {"modality": data.modality, "labels": data.classes, "train": part(plan.train),
            "val": part(plan.val), "evaluation": plan.to_dict()}
