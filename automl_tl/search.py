"""The search loop (keras-tuner's three roles, on Optuna).

- :class:`SearchSpace` is the space (``suggest(trial) -> TrialConfig``), seeded by the
  strategy table's recommendation, which is enqueued as the first trial.
- Optuna's TPE sampler is the proposer; the MedianPruner stops poor trials early.
- :class:`Search` is the evaluator: it runs each trial, records failures with their reason
  (the search goes on), writes the leaderboard, summary and the best model after every trial, and
  resumes from its storage (SQLite in the run directory by default).
"""

from __future__ import annotations

import json
import logging
import time
import traceback
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from automl_tl.artifacts import STUDY_NAME, atomic_write_json, save_model, write_leaderboard
from automl_tl.errors import AutoMLTLError, ConfigError, TrialFailed
from automl_tl.strategy import FEATURE_EXTRACTION, FINE_TUNE_TOP, STRATEGIES
from automl_tl.training import TrialConfig, TrialContext, assemble, run_trial

__all__ = ["SearchSpace", "Search", "storage_url"]

log = logging.getLogger("automl_tl")


@dataclass(frozen=True, kw_only=True)
class SearchSpace:
    """The searched hyperparameters. Ranges are keyword configuration, so variants are cheap."""

    specs: Mapping[str, Any]
    augmentable: Mapping[str, bool] = field(default_factory=dict)
    head_units: tuple[int, ...] = (0, 128, 256, 512)
    head_lr: tuple[float, float] = (1e-4, 1e-2)
    backbone_lr: tuple[float, float] = (1e-6, 1e-3)
    dropout: tuple[float, float] = (0.0, 0.5)
    head_epochs: tuple[int, int] = (10, 60)
    ft_epochs: tuple[int, int] = (1, 4)
    strategies: tuple[str, ...] = STRATEGIES

    def max_unfreeze(self, spec) -> int:
        return max(1, min(spec.n_blocks - 1, max(2, spec.n_blocks // 2)))

    def suggest(self, trial) -> TrialConfig:
        backbone = trial.suggest_categorical("backbone", sorted(self.specs))
        spec = self.specs[backbone]
        if spec.fine_tunable and len(self.strategies) > 1:
            strategy = trial.suggest_categorical("strategy", list(self.strategies))
        else:
            strategy = FEATURE_EXTRACTION if spec.fine_tunable is False else self.strategies[0]
        options = {k: trial.suggest_categorical(f"{backbone}:{k}", list(v)) for k, v in spec.options.items()}
        cfg = dict(
            backbone=backbone, strategy=strategy, options=options,
            head_units=trial.suggest_categorical("head_units", list(self.head_units)),
            dropout=round(trial.suggest_float("dropout", *self.dropout, step=0.1), 2),
            head_lr=trial.suggest_float("head_lr", *self.head_lr, log=True),
            head_epochs=trial.suggest_int("head_epochs", *self.head_epochs, step=10),
        )
        if strategy != FEATURE_EXTRACTION:
            if strategy == FINE_TUNE_TOP:
                cfg["unfreeze_blocks"] = trial.suggest_int("unfreeze_blocks", 1, self.max_unfreeze(spec))
            cfg["backbone_lr"] = trial.suggest_float("backbone_lr", *self.backbone_lr, log=True)
            cfg["ft_epochs"] = trial.suggest_int("ft_epochs", *self.ft_epochs)
            if self.augmentable.get(backbone):
                cfg["augment"] = trial.suggest_categorical("augment", [False, True])
        return TrialConfig(**cfg)

    def enqueue_params(self, recommendation) -> dict:
        """The recommendation as Optuna params inside this space (clipped to its ranges)."""
        spec = self.specs[recommendation.backbone]
        p = dict(recommendation.params)
        strategy = recommendation.strategy if recommendation.strategy in self.strategies else self.strategies[0]
        out: dict[str, Any] = {"backbone": spec.name}
        if spec.fine_tunable and len(self.strategies) > 1:
            out["strategy"] = strategy
        for k, v in spec.options.items():  # a rule may name an option value (e.g. features="mid")
            out[f"{spec.name}:{k}"] = p[k] if p.get(k) in v else v[0]
        clip = lambda x, lo_hi: min(max(x, lo_hi[0]), lo_hi[1])  # noqa: E731
        out["head_units"] = p.get("head_units", 0) if p.get("head_units", 0) in self.head_units else self.head_units[0]
        out["dropout"] = round(clip(p.get("dropout", 0.2), self.dropout), 1)
        out["head_lr"] = clip(p.get("head_lr", 1e-3), self.head_lr)
        out["head_epochs"] = int(clip(round(p.get("head_epochs", 30), -1), self.head_epochs))
        effective = strategy if spec.fine_tunable else FEATURE_EXTRACTION
        if effective != FEATURE_EXTRACTION:
            if effective == FINE_TUNE_TOP:
                out["unfreeze_blocks"] = int(clip(p.get("unfreeze_blocks", 2), (1, self.max_unfreeze(spec))))
            out["backbone_lr"] = clip(p.get("backbone_lr", 1e-4), self.backbone_lr)
            out["ft_epochs"] = int(clip(p.get("ft_epochs", 3), self.ft_epochs))
            if self.augmentable.get(spec.name):
                out["augment"] = bool(p.get("augment", True))
        return out


def storage_url(run_dir: Path, storage: str | None) -> str:
    return storage or f"sqlite:///{(Path(run_dir) / 'study.db').resolve()}"


_FATAL = (KeyboardInterrupt, SystemExit, MemoryError)


class Search:
    def __init__(self, *, ctx: TrialContext, space: SearchSpace, run_dir, recommendation,
                 storage: str | None = None, seed: int = 0, labels: Sequence[str] = (),
                 summary_base: Mapping[str, Any] | None = None) -> None:
        self.ctx = ctx
        self.space = space
        self.run_dir = Path(run_dir)
        self.recommendation = recommendation
        self.storage = storage
        self.seed = seed
        self.labels = list(labels)
        self.summary_base = dict(summary_base or {})
        (self.run_dir / "trials").mkdir(parents=True, exist_ok=True)
        self.study = self._open_study()

    # ------------------------------------------------------------------ study
    def _open_study(self):
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        url = storage_url(self.run_dir, self.storage)
        try:
            storage = optuna.storages.RDBStorage(
                url, heartbeat_interval=60, grace_period=180,
                heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1))
        except Exception as exc:  # noqa: BLE001 - bad URL, driver missing, server down
            raise ConfigError(f"cannot open the Optuna storage {url!r}: {exc}. Use a SQLAlchemy URL "
                              f"such as sqlite:///study.db or postgresql://user:pw@host/db.") from exc
        sampler = optuna.samplers.TPESampler(seed=self.seed, multivariate=True, group=True,
                                             n_startup_trials=5, constant_liar=True)
        pruner = optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1)
        study = optuna.create_study(study_name=STUDY_NAME, storage=storage, sampler=sampler,
                                    pruner=pruner, direction="maximize", load_if_exists=True)
        if self.storage is None:
            self._recover_interrupted(study)
        if not study.get_trials(deepcopy=False):
            study.enqueue_trial(self.space.enqueue_params(self.recommendation),
                                user_attrs={"recommended": True})
        return study

    def _recover_interrupted(self, study) -> None:
        """With the run's own SQLite file nobody else runs trials: a RUNNING trial is one a crash
        or Ctrl-C interrupted. Mark it failed with that reason and queue its parameters again."""
        import optuna

        for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
            study._storage.set_trial_user_attr(t._trial_id, "fail_reason",
                                               "interrupted: the process ended before this trial finished")
            study._storage.set_trial_state_values(t._trial_id, optuna.trial.TrialState.FAIL)
            if not t.user_attrs.get("retried"):
                study.enqueue_trial(dict(t.params), user_attrs={
                    "retried": True, "recommended": bool(t.user_attrs.get("recommended", False))})

    def finished_trials(self) -> int:
        import optuna

        done = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED,
                optuna.trial.TrialState.FAIL)
        return len(self.study.get_trials(deepcopy=False, states=done))

    # ------------------------------------------------------------------ running
    def run(self, *, trials: int | None = None, time_budget: float | None = None,
            progress: bool = False):
        if trials is None and time_budget is None:
            raise ConfigError("give a trial budget (--trials) or a time budget (--time-budget)")
        remaining = None if trials is None else max(0, trials - self.finished_trials())
        if remaining == 0:
            log.info("the study already has %d finished trials; nothing to run", self.finished_trials())
        else:
            self.study.optimize(self._objective, n_trials=remaining, timeout=time_budget,
                                catch=(TrialFailed,), callbacks=[self._after_trial],
                                show_progress_bar=progress, gc_after_trial=True)
        self.write_summary(finished=True)
        return self.study

    def _objective(self, trial) -> float:
        import optuna

        t0 = time.perf_counter()
        history: list = []
        cfg = self.space.suggest(trial)
        trial.set_user_attr("strategy", cfg.strategy)
        ctx = replace(self.ctx, seed=self.seed + trial.number)  # each trial its own, reproducible seed
        try:
            result = run_trial(cfg, ctx, trial=trial, history=history)
        except optuna.TrialPruned:
            seconds = time.perf_counter() - t0
            trial.set_user_attr("seconds", seconds)
            self._write_trial(trial.number, cfg, "PRUNED", None, seconds, history)
            raise
        except (AutoMLTLError, *_FATAL) as exc:
            if isinstance(exc, TrialFailed):
                return self._fail(trial, cfg, str(exc), t0, history, exc)
            if isinstance(exc, KeyboardInterrupt):  # Optuna marks it FAIL: say why, queue it again
                trial.set_user_attr("fail_reason", "interrupted: stopped (Ctrl-C) before this trial finished")
                if not trial.user_attrs.get("retried"):
                    self.study.enqueue_trial(dict(trial.params), user_attrs={
                        "retried": True, "recommended": bool(trial.user_attrs.get("recommended", False))})
            raise
        except Exception as exc:  # noqa: BLE001 - any other error fails this trial only
            reason = f"{type(exc).__name__}: {exc}".strip()
            if "OOM" in reason or "ResourceExhausted" in reason:
                reason = f"out of memory: {reason}"
            return self._fail(trial, cfg, reason, t0, history, exc)
        seconds = time.perf_counter() - t0
        trial.set_user_attr("seconds", seconds)
        self._write_trial(trial.number, cfg, "COMPLETE", result.score, seconds, history)
        self._maybe_save(trial.number, cfg, result)
        return result.score

    def _fail(self, trial, cfg, reason, t0, history, exc):
        seconds = time.perf_counter() - t0
        trial.set_user_attr("fail_reason", reason[:2000])
        trial.set_user_attr("seconds", seconds)
        tb = "".join(traceback.format_exception(exc))[-8000:]
        self._write_trial(trial.number, cfg, "FAIL", None, seconds, history, reason, tb)
        log.warning("trial %d failed: %s", trial.number, reason)
        raise TrialFailed(reason) from exc

    def _write_trial(self, number, cfg, state, score, seconds, history, reason="", tb=""):
        atomic_write_json(self.run_dir / "trials" / f"{number}.json", {
            "number": number, "params": cfg.to_dict(), "state": state, "score": score,
            "seconds": seconds, "history": history, "fail_reason": reason, "traceback": tb})

    def _best_complete(self, exclude: int | None = None) -> float | None:
        import optuna

        vals = [t.value for t in self.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
                if t.number != exclude and t.value is not None]
        return max(vals) if vals else None

    def _maybe_save(self, number, cfg, result) -> None:
        best = self._best_complete(exclude=number)
        if best is not None and result.score <= best and (self.run_dir / "model.keras").exists():
            return
        spec = self.ctx.specs[cfg.backbone]
        weights = self.ctx.weights.get(cfg.backbone)
        input_config = dict(self.ctx.input_configs[cfg.backbone])
        if spec.featurize is not None:
            model = result.head
        elif result.backbone is not None:
            model = assemble(result.backbone, result.head)
        else:
            model = assemble(spec.build(weights, input_config, **cfg.options), result.head)
        adapter = spec.make_adapter(input_config, weights, None)
        val = self.ctx.split.val
        probs = result.val_probs
        preds = [{"item": str(self.ctx.data.items[i]), "label": self.labels[self.ctx.y[i]],
                  "predicted": self.labels[int(np.argmax(p))], "probability": round(float(np.max(p)), 6)}
                 for i, p in zip(val, probs)]
        config = {"backbone": cfg.backbone, "input_config": input_config, "options": dict(cfg.options),
                  "params": cfg.to_dict(), "metric": self.ctx.metric, "labels": self.labels,
                  "trial": number, "score": result.score, "featurize": spec.featurize is not None,
                  "modality": spec.modality, "weights": weights.to_dict() if weights else None}
        save_model(self.run_dir, model=model, config=config, labels=self.labels, adapter=adapter,
                   val_predictions=preds)

    def _after_trial(self, study, trial) -> None:
        self.write_summary(finished=False)  # also rewrites leaderboard.csv
        state = trial.state.name.lower()
        value = f"{trial.value:.4f}" if trial.value is not None else trial.user_attrs.get("fail_reason", "")[:80]
        log.info("trial %d %s: %s %s", trial.number, state, trial.params.get("backbone"), value)

    def write_summary(self, *, finished: bool) -> dict:
        import optuna

        counts = {s.name.lower(): 0 for s in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED,
                                              optuna.trial.TrialState.FAIL, optuna.trial.TrialState.RUNNING)}
        for t in self.study.get_trials(deepcopy=False):
            key = t.state.name.lower()
            counts[key] = counts.get(key, 0) + 1
        best = None
        try:
            bt = self.study.best_trial
            best = {"trial": bt.number, "score": bt.value, "params": dict(bt.params),
                    "strategy": bt.user_attrs.get("strategy")}
        except ValueError:
            pass
        summary = dict(self.summary_base) | {"best": best, "counts": counts, "labels": self.labels,
                                              "finished": finished}
        atomic_write_json(self.run_dir / "summary.json", summary)
        write_leaderboard(self.study, self.run_dir / "leaderboard.csv")
        return summary

