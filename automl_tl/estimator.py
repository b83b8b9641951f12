"""AutoTransfer: the scikit-learn style estimator over the whole pipeline.

``__init__`` stores parameters only; ``fit`` returns ``self``; learned state ends in ``_``.
"""

from __future__ import annotations

import inspect
import logging
import shutil
import time
import warnings
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from automl_tl.errors import (BackboneLeftOutWarning, ConfigError, DataError, NotFittedError,
                              WeightsUnavailableError)

__all__ = ["AutoTransfer", "select_backbones"]

log = logging.getLogger("automl_tl")


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
            msg = f"backbone {spec.name!r} left out: {exc}"
            warnings.warn(msg, BackboneLeftOutWarning, stacklevel=2)
            log.warning(msg)
            left_out.append({"backbone": spec.name, "reason": str(exc)})
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
                 time_budget: float | None = None, metric: str = "accuracy", seed: int = 0,
                 run_dir: str | None = None, storage: str | None = None, val_fraction: float = 0.2,
                 weights: Mapping[str, str] | None = None, modality: str | None = None,
                 text_column: str | None = None, label_column: str | None = None,
                 path_column: str | None = None, group_column: str | None = None,
                 split_column: str | None = None, strategies: Sequence[str] | None = None, cache_dir: str | None = None,
                 batch_size: int = 32, progress: bool = False, report: bool = True,
                 plugin_manager=None) -> None:
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
        self.split_column = split_column
        self.strategies = strategies
        self.cache_dir = cache_dir
        self.batch_size = batch_size
        self.progress = progress
        self.report = report
        self.plugin_manager = plugin_manager

    # ------------------------------------------------------------------ sklearn protocol
    _PARAMS = ("backbones", "trials", "time_budget", "metric", "seed", "run_dir", "storage",
               "val_fraction", "weights", "modality", "text_column", "label_column", "path_column",
               "group_column", "split_column", "strategies", "cache_dir", "batch_size", "progress", "report",
               "plugin_manager")

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
        """Load and profile data; returns ``(DatasetProfile, Recommendation, data, candidates)``."""
        from automl_tl.profile import profile_data

        pm = self._pm()
        data = self._load(X, y)
        specs, weights, left_out = select_backbones(pm, data.modality, self.backbones, self.weights)
        modality = pm.modalities.get(data.modality)
        prof = profile_data(data, modality=modality, table=pm.strategy_table, candidates=specs,
                            weights=weights, progress=self.progress)
        best = prof.best_backbone() or specs[0].name
        spec = pm.backbones.get(best)
        rec = pm.strategy_table.recommend(prof, backbone=best, fine_tunable=spec.fine_tunable,
                                          n_blocks=spec.n_blocks)
        return prof, rec, data, (specs, weights, left_out)

    # ------------------------------------------------------------------ fit
    def fit(self, X, y=None) -> "AutoTransfer":
        from automl_tl.artifacts import atomic_write_json, load_predictor
        from automl_tl.cache import EmbeddingCache
        from automl_tl.data import split_data
        from automl_tl.search import Search, SearchSpace
        from automl_tl.strategy import STRATEGIES
        from automl_tl.training import TrialContext, metric_function

        if self.trials is None and self.time_budget is None:
            raise ConfigError("give a trial budget (trials=N) or a time budget (time_budget=seconds)")
        metric_function(self.metric)
        if not 0 < self.val_fraction < 1:
            raise ConfigError(f"val_fraction must be between 0 and 1, not {self.val_fraction}")
        strategies = tuple(self.strategies or STRATEGIES)
        bad = [s for s in strategies if s not in STRATEGIES]
        if bad:
            raise ConfigError(f"unknown strategies {bad}; choose from {', '.join(STRATEGIES)}")
        pm = self._pm()
        prof, rec, data, (specs, weights, left_out) = self.profile(X, y)
        run_dir = Path(self.run_dir or default_run_dir(data.source))
        run_dir.mkdir(parents=True, exist_ok=True)
        fingerprint = data.fingerprint()
        task = {"modality": data.modality, "source": data.source, "metric": self.metric,
                "seed": self.seed, "val_fraction": self.val_fraction, "data_fingerprint": fingerprint,
                "labels_fingerprint": data.labels_fingerprint()}
        _check_resume(run_dir, task)
        modality = pm.modalities.get(data.modality)
        labels = data.classes
        index = {c: i for i, c in enumerate(labels)}
        y_int = np.array([index[c] for c in data.labels], dtype=np.int64)
        split = split_data(data, val_fraction=self.val_fraction, seed=self.seed)
        atomic_write_json(run_dir / "split.json", split.to_dict(data))
        class_weight = None
        if prof.imbalanced:
            counts = np.bincount(y_int[split.train], minlength=len(labels)).astype(float)
            class_weight = {i: float(len(split.train) / (len(labels) * max(c, 1))) for i, c in enumerate(counts)}
        baseline = self._baseline(run_dir, modality, data, split)
        input_configs = {s.name: dict(prof.backbones[s.name]["input_config"]) for s in specs}
        spec_map = {s.name: s for s in specs}
        ctx = TrialContext(data=data, split=split, y=y_int, n_classes=len(labels),
                           input_configs=input_configs, weights=weights, specs=spec_map,
                           modality=modality, cache=EmbeddingCache(self.cache_dir), metric=self.metric,
                           class_weight=class_weight, seed=self.seed, batch_size=self.batch_size,
                           progress=self.progress)
        augmentable = {s.name: modality.augmentation(input_configs[s.name]) is not None for s in specs}
        space = SearchSpace(specs=spec_map, augmentable=augmentable, strategies=strategies)
        summary_base = {
            "version": _version(),
            "task": task | {"n_train": int(len(split.train)), "n_val": int(len(split.val))},
            "profile": prof.to_dict(), "recommendation": rec.to_dict(),
            "candidates": [s.summary() | {"weights": weights[s.name].to_dict()} for s in specs],
            "left_out": left_out, "strategy_table": pm.strategy_table.to_dict(), "baseline": baseline,
        }
        search = Search(ctx=ctx, space=space, run_dir=run_dir, recommendation=rec, storage=self.storage,
                        seed=self.seed, labels=labels, summary_base=summary_base)
        t0 = time.perf_counter()
        try:
            search.run(trials=self.trials, time_budget=self.time_budget, progress=self.progress)
        except KeyboardInterrupt:
            if self.report:
                self._write_report(run_dir)  # reports what is finished
            raise
        self.run_dir_ = run_dir
        self.study_ = search.study
        self.profile_ = prof
        self.recommendation_ = rec
        self.classes_ = np.array(labels)
        self.skipped_ = list(data.skips)
        self.search_seconds_ = time.perf_counter() - t0
        self.cache_stats_ = dict(ctx.cache.stats)
        if not (run_dir / "model.keras").exists():
            if self.report:
                self._write_report(run_dir)  # explains every failure
            reasons = sorted({t.user_attrs.get("fail_reason", "") for t in search.study.trials} - {""})
            raise NotFittedError(f"no trial completed, so no model was saved in {run_dir}. "
                                 f"Failure reasons: {reasons[:5]}")
        self.predictor_ = load_predictor(run_dir, plugin_manager=pm)
        self.best_config_ = dict(self.predictor_.config["params"])
        self.best_score_ = float(self.predictor_.config["score"])
        if self.report:
            self._write_report(run_dir)
        return self

    def _baseline(self, run_dir, modality, data, split):
        from automl_tl.artifacts import atomic_write_json
        from automl_tl.training import metric_function

        existing = run_dir / "baseline.json"
        if existing.exists():
            import json

            return json.loads(existing.read_text())
        items, labels = data.items, data.labels
        try:
            result = modality.baseline([items[i] for i in split.train], [labels[i] for i in split.train],
                                       [items[i] for i in split.val], [labels[i] for i in split.val],
                                       metric=metric_function(self.metric))
        except NotImplementedError:
            return None
        except Exception as exc:  # noqa: BLE001 - a baseline must never stop the search
            result = {"name": "classical baseline", "score": None, "error": f"{type(exc).__name__}: {exc}"}
        result = dict(result) | {"metric": self.metric}
        atomic_write_json(existing, result)
        return result

    def _write_report(self, run_dir) -> None:
        try:
            from automl_tl.report import write_report
        except ImportError:
            return
        try:
            write_report(run_dir)
        except Exception as exc:  # noqa: BLE001 - the model is saved; a report problem is reported
            log.warning("the report could not be written: %s: %s", type(exc).__name__, exc)

    # ------------------------------------------------------------------ predict
    def _check_fitted(self):
        if not hasattr(self, "predictor_"):
            raise NotFittedError("this AutoTransfer is not fitted yet: call fit() or AutoTransfer.load()")

    def _usable(self, X) -> list:
        items = list(X)
        _, cleaned, skips = self.predictor_.check_inputs(items)
        if skips:
            detail = "; ".join(f"{s.item}: {s.reason}" for s in skips[:5])
            raise DataError(f"{len(skips)} of {len(items)} inputs cannot be used: {detail}")
        return cleaned

    def predict_proba(self, X) -> np.ndarray:
        self._check_fitted()
        return self.predictor_.predict_proba(self._usable(X), batch_size=self.batch_size)

    def predict(self, X) -> np.ndarray:
        proba = self.predict_proba(X)
        return np.array(self.predictor_.labels)[np.argmax(proba, axis=1)]

    def score(self, X, y) -> float:
        from automl_tl.training import metric_function

        from automl_tl.data import label_str

        return float(metric_function(self.metric)([label_str(v) for v in y], list(self.predict(X))))

    # ------------------------------------------------------------------ persistence
    def save(self, path) -> Path:
        """Copy the deliverable (model.keras, config.json, labels.json, assets/) to ``path``."""
        self._check_fitted()
        src, dst = Path(self.predictor_.run_dir), Path(path)
        if dst.exists() and dst.resolve() == src.resolve():
            return dst
        if dst.exists() and any(dst.iterdir()) and not (dst / "config.json").exists():
            raise ConfigError(f"{dst} exists and is not a saved model: choose a new or empty folder")
        tmp = dst.with_name(f".{dst.name}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        for name in ("model.keras", "config.json", "labels.json", "assets"):
            s = src / name
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


def _version() -> str:
    from automl_tl import __version__

    return __version__


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
    names = {"data_fingerprint": "the input files", "labels_fingerprint": "the labels",
             "metric": "--metric", "seed": "--seed", "val_fraction": "--val-fraction"}
    changed = [what for key, what in names.items() if key in old and old[key] != task[key]]
    if changed:
        raise ConfigError(f"{run_dir} holds a search of a different task ({', '.join(changed)} changed "
                          f"since). Use another --run-dir, or delete {run_dir} to start over.")
