"""What a trial and a refit will cost, in seconds: the search uses it to start only what fits the
time left and to keep time for the refit."""

from __future__ import annotations

import math
from typing import Any, Collection, Mapping, Sequence

import numpy as np

from automl_tl.training import TrialConfig

__all__ = ["CostModel"]


class CostModel:
    """Predicted seconds of a trial and of a refit, from the trials already run and, before
    any, from the measured forward-pass time per item of each backbone.

    A fine-tuning epoch costs about three forward passes over the training items (forward,
    backward, weight update) plus one over the validation items. A hidden-layer head's epoch
    costs a fixed part (the validation score), a part per batch (one compiled step) and
    ``6 * items * feature_dims * units`` floating-point operations (a TF-IDF head of 512 units is
    not cheap). Both estimates are corrected by the ratio observed on the trials that ran.
    """

    TRAIN_FACTOR = 3.0
    BUILD_S = 10.0
    # A head epoch on two CPU cores (TensorFlow, measured with heads.fit_head: 320 x 384 features
    # into 256 units 15 ms, 2 000 x 384 53 ms, 320 x 15 000 into 512 units 129 ms): 10 ms, plus
    # 1 ms per batch of 64, plus the dense layers' arithmetic at 1e11 operations a second. One
    # rate for all (5e9 before) overestimated wide TF-IDF heads 5-7x once it was fitted to a
    # narrow head's time, where the fixed parts dominate.
    EPOCH_S, BATCH_S, HEAD_BATCH, FLOPS = 0.01, 0.001, 64, 1e11

    def __init__(self, *, seconds_per_item: Mapping[str, float], n_train: int, n_val: int, n_all: int,
                 k_folds: int, feature_dims: Mapping[str, int] | None = None,
                 frozen: Collection[str] = ()) -> None:
        """``frozen``: the names of the strategies that do not fine-tune (their trials cost a
        head's training): those that declare ``fine_tunes=False`` (the search passes them)."""
        self.per_item = dict(seconds_per_item)
        self.dims = dict(feature_dims or {})
        self.n_train, self.n_val, self.n_all, self.k = n_train, n_val, n_all, k_folds
        self.frozen = set(frozen)
        self.ratio = 1.0  # fine-tuning: observed / predicted
        self.head_ratio = 1.0  # hidden-layer heads: observed / predicted

    def _epoch(self, backbone: str, n: int) -> float:
        t = self.per_item.get(backbone) or 0.02
        return self.TRAIN_FACTOR * t * n + t * self.n_val

    def _head(self, cfg: TrialConfig, n: int, folds: int) -> float:
        if cfg.linear_head:
            return 1.0
        flops = 6.0 * n * self.dims.get(cfg.backbone, 1024) * cfg.head_units
        epoch = self.EPOCH_S + self.BATCH_S * math.ceil(n / self.HEAD_BATCH) + flops / self.FLOPS
        return 1.0 + self.head_ratio * epoch * (cfg.head_epochs or 30) * folds

    def costs_of(self, backbone: str) -> dict | None:
        """What ``backbone`` costs here, from its measured forward pass (None before one): seconds
        an item, embedding every item, and one fine-tuning epoch (before any trial corrects it)."""
        per_item = self.per_item.get(backbone)
        if not per_item:
            return None
        return {"per_item": round(per_item, 5), "embed_all": round(per_item * self.n_all, 1),
                "fine_tune_epoch": round(self._epoch(backbone, self.n_train), 1)}

    def predict(self, cfg: TrialConfig, trials: Sequence = ()) -> float:
        if cfg.strategy in self.frozen:
            return self._head(cfg, self.n_train, self.k)
        head = self._head(cfg, self.n_train, 1)
        same = [t for t in trials if t.params.get("backbone") == cfg.backbone
                and t.user_attrs.get("strategy") == cfg.strategy and t.user_attrs.get("ft_epochs_run")]
        if same:
            per_epoch = float(np.median([t.user_attrs["seconds"] / (t.user_attrs["ft_epochs_run"] + 1) for t in same]))
            return head + per_epoch * ((cfg.ft_epochs or 1) + 1)
        return head + self.BUILD_S + self.ratio * self._epoch(cfg.backbone, self.n_train) * ((cfg.ft_epochs or 1) + 0.5)

    def observe(self, cfg: TrialConfig, seconds: float, epochs_run: int) -> None:
        clip = lambda r: max(0.1, min(20.0, r))  # noqa: E731
        if cfg.strategy in self.frozen:
            if not cfg.linear_head:
                self.head_ratio = clip(self.head_ratio * seconds / max(self._head(cfg, self.n_train, self.k), 1e-6))
            return
        if epochs_run > 0:
            predicted = self.BUILD_S + self._epoch(cfg.backbone, self.n_train) * (epochs_run + 0.5)
            self.ratio = clip(seconds / max(predicted, 1e-6))

    def refit(self, cfg: TrialConfig, epochs: Mapping[str, Any] | None, trial=None) -> float:
        """Seconds to retrain ``cfg`` on all items for ``epochs``; from the time its own trial
        took per fine-tuning epoch when ``trial`` (a FrozenTrial) is given - that measure already
        holds augmentation, sequence length and the machine's load."""
        head = self._head(cfg, self.n_all, 1)
        n_ft = int((epochs or {}).get("fine_tune") or 0)
        if cfg.strategy in self.frozen or n_ft == 0:
            return head + 1.0
        scale = self.n_all / max(1, self.n_train)
        attrs = getattr(trial, "user_attrs", {}) or {}
        if attrs.get("ft_epochs_run") and attrs.get("seconds"):
            # a trial's time over its epochs (building and scoring included: measured on
            # Rotten Tomatoes 2 000, a refit took 1.39x its trial's time, 1.25x the items)
            per_epoch = float(attrs["seconds"]) / int(attrs["ft_epochs_run"])
            return head + self.BUILD_S + per_epoch * scale * n_ft
        t = self.per_item.get(cfg.backbone) or 0.02
        return head + self.BUILD_S + self.ratio * self.TRAIN_FACTOR * t * self.n_all * n_ft
