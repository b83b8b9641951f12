"""Training callbacks: the validation monitor (best weights, early stopping, pruning, the time
budget) and the deadline of a refit."""

from __future__ import annotations

import math
import time

import keras

from automl_tl.errors import TrialFailed

__all__ = ["past", "ValidationMonitor", "Deadline"]


def past(deadline: float | None) -> bool:
    return deadline is not None and time.monotonic() >= deadline


class ValidationMonitor(keras.callbacks.Callback):
    """Validation score each epoch, best-weights keeping, early stopping, NaN check, pruning,
    and the time budget: past ``deadline`` training stops after the current batch, keeping the
    best epoch so far.

    The starting state is scored too (epoch 0), so fine-tuning never returns something worse than
    the head it started from.
    """

    def __init__(self, *, score_fn, phase, history, patience, trial=None,
                 score_initial=False, deadline: float | None = None):
        super().__init__()
        self.score_fn = score_fn
        self.phase = phase
        self.history = history
        self.patience = patience
        self.trial = trial
        self.score_initial = score_initial
        self.deadline = deadline
        self.best = -math.inf
        self.best_epoch = 0
        self.best_weights = None
        self.wait = 0
        self.epochs_run = 0
        self.stopped_early = ""

    def on_train_begin(self, logs=None):
        if self.score_initial:
            self._consider(self.score_fn(self.model), 0, initial=True)

    def _consider(self, score, epoch, initial=False):
        if score > self.best:
            self.best, self.best_epoch = score, epoch
            self.best_weights = self.model.get_weights()
            self.wait = 0
        elif not initial:
            self.wait += 1

    def on_train_batch_end(self, batch, logs=None):
        if past(self.deadline):
            self.stopped_early = "the time budget ran out"
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        loss = float(logs.get("loss", float("nan")))
        if not math.isfinite(loss):
            raise TrialFailed(f"the training loss became {loss} in {self.phase} epoch {epoch + 1}; "
                              f"the learning rate is probably too high")
        score = float(self.score_fn(self.model))
        self.epochs_run = epoch + 1
        logs["val_score"] = score
        self.history.append({"phase": self.phase, "epoch": epoch + 1, "loss": loss, "val_score": score})
        self._consider(score, epoch + 1)
        if self.trial is not None and not self.stopped_early:
            import optuna

            step = epoch
            self.trial.report(score, step)
            if self.trial.should_prune():
                raise optuna.TrialPruned(f"pruned at step {step} (val score {score:.4f})")
        if self.wait >= self.patience:
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.best_weights is not None:
            self.model.set_weights(self.best_weights)


class Deadline(keras.callbacks.Callback):
    """Stops training after the current batch once ``deadline`` has passed (refits)."""

    def __init__(self, deadline: float | None):
        super().__init__()
        self.deadline = deadline
        self.hit = False

    def on_train_batch_end(self, batch, logs=None):
        if past(self.deadline):
            self.hit = True
            self.model.stop_training = True
