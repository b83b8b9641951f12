"""Training callbacks: the time budget (:class:`Deadline`: training stops after the batch in
which the budget runs out) and, on top of it, the validation monitor (best weights, early
stopping, pruning). Only :class:`Deadline` watches the clock."""

from __future__ import annotations

import math

import keras

from automl_tl.budget import NO_BUDGET, Budget
from automl_tl.errors import TrialFailed
from automl_tl.fates import checkpoint

__all__ = ["ValidationMonitor", "Deadline"]


class Deadline(keras.callbacks.Callback):
    """Stops training after the current batch once ``budget`` is past (``hit`` says so)."""

    def __init__(self, budget: Budget = NO_BUDGET):
        super().__init__()
        self.budget = budget
        self.hit = False

    def on_train_batch_end(self, batch, logs=None):
        checkpoint()  # a Ctrl-C stops training here, between batches
        if self.budget.past():
            self.hit = True
            self.model.stop_training = True


class ValidationMonitor(Deadline):
    """Validation score each epoch, best-weights keeping, early stopping, NaN check, pruning,
    and the time budget (:class:`Deadline`): past ``budget`` training stops after the current
    batch, keeping the best epoch so far.

    The starting state is scored too (epoch 0), so fine-tuning never returns something worse than
    the head it started from.
    """

    def __init__(self, *, score_fn, phase, history, patience, trial=None,
                 score_initial=False, budget: Budget = NO_BUDGET):
        super().__init__(budget)
        self.score_fn = score_fn
        self.phase = phase
        self.history = history
        self.patience = patience
        self.trial = trial
        self.score_initial = score_initial
        self.best = -math.inf
        self.best_epoch = 0
        self.best_weights = None
        self.wait = 0
        self.epochs_run = 0

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

    @property
    def stopped_early(self) -> str:
        """Why training stopped before its planned epochs ("" if it did not)."""
        return "the time budget ran out" if self.hit else ""

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

