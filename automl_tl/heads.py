"""Heads: built, trained on cached features (a compiled loop), and made for a configuration
(the linear probe's logistic regression, or a hidden layer trained with Keras)."""

from __future__ import annotations

import math
import threading

import keras
import numpy as np

from automl_tl.budget import NO_BUDGET, Budget
from automl_tl.errors import RefitStopped, TrialFailed
from automl_tl.metrics import metric_function
from automl_tl.monitor import Deadline, ValidationMonitor

__all__ = ["build_head", "fit_head", "is_sparse", "make_head", "refit_head", "probs"]


#: features with fewer non-zero entries than this share are sparse (TF-IDF of short texts: 0.5-2 %;
#: pooled CNN and transformer features: well above half)
SPARSE_BELOW = 0.1


def is_sparse(x) -> bool:
    """Whether ``x`` (items x features) is mostly zeros."""
    x = np.asarray(x)
    return x.size > 0 and np.count_nonzero(x) < SPARSE_BELOW * x.size


def build_head(dim: int, n_classes: int, units: int, dropout: float, seed: int = 0, *, x_train=None):
    """``[standardise] -> Dropout -> [Dense(units, relu) -> Dropout] -> Dense(n_classes, softmax)``.

    With ``x_train`` dense features are standardised with its mean and variance (fixed, saved in
    the model): backbones whose feature dimensions sit on large offsets (the ONNX speech
    embedding) otherwise train a poor head. Sparse features (mostly zeros: TF-IDF, counts) are
    left as they are: a column that is non-zero in a few training items gets a tiny variance,
    and standardising multiplies it by hundreds where it appears in new items. Measured on
    TF-IDF (validation accuracy of a 256-unit head): Rotten Tomatoes 2 000 texts 0.69
    standardised vs 0.74 as is; 400 Chinese sentences of two novels 0.50 (chance) vs 0.94.
    """
    layers = [keras.Input((dim,), name="features")]
    if x_train is not None and not is_sparse(x_train):
        x = np.asarray(x_train, dtype=np.float64)
        layers.append(keras.layers.Normalization(mean=x.mean(0), variance=x.var(0) + 1e-6, name="feature_norm"))
    return keras.Sequential(layers + _layers(n_classes, units, dropout, seed), name="head")


def _layers(n_classes: int, units: int, dropout: float, seed: int, zeros: bool = False) -> list:
    """The head's trained layers (after any standardising), in order. ``zeros``: initialised
    without drawing from Keras' global random state (a trainer's own copy, overwritten before use)."""
    init = {"kernel_initializer": "zeros"} if zeros else {}
    layers = [keras.layers.Dropout(dropout, seed=seed)]
    if units:
        layers += [keras.layers.Dense(units, activation="relu", **init), keras.layers.Dropout(dropout, seed=seed + 1)]
    layers.append(keras.layers.Dense(n_classes, activation="softmax", name="probabilities", **init))
    return layers


def fit_head(head, x, y, *, epochs, lr, class_weight, val=None, history=None, patience=5,
             seed=0, batch_size: int = 64, budget: Budget = NO_BUDGET) -> tuple[float, int]:
    """Train the head on cached features. With ``val = (x_val, score)`` (``score`` of the
    predicted probabilities): early stopping on the validation score, best weights kept; returns
    ``(best score, best epoch)``. Without (a refit): exactly ``epochs`` epochs; returns
    ``(nan, epochs run)``. Stops when ``budget`` is past either way.

    On the TensorFlow backend an epoch is one compiled call (:class:`_Trainer`): Keras ``fit``
    spends most of a cached trial in per-epoch overhead (a few hundred vectors per epoch), and a
    cached trial should cost a small fraction of one that embeds the data. Other backends use ``fit``.
    """
    history = history if history is not None else []
    if keras.backend.backend() == "tensorflow":
        with _TRAINER_LOCK:  # one trainer, one fit at a time: two threads' fits would mix their heads
            return _trainer_for(head, dropout=_dropout(head), batch_size=batch_size).fit(
                head, x, y, epochs=epochs, lr=lr, class_weight=class_weight, val=val, history=history,
                patience=patience, seed=seed, budget=budget)
    head.compile(optimizer=keras.optimizers.Adam(lr), loss="sparse_categorical_crossentropy")
    weights = dict(class_weight) if class_weight else None
    if val is None:
        h = head.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=0, shuffle=True, class_weight=weights,
                     callbacks=[Deadline(budget)])
        return float("nan"), len(h.history.get("loss", []))
    x_val, score = val
    mon = ValidationMonitor(score_fn=lambda m: score(probs(m, x_val)), phase="head", history=history,
                            patience=patience, budget=budget)
    head.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=0, shuffle=True, class_weight=weights,
             callbacks=[mon])
    return mon.best, mon.best_epoch


def _dropout(head) -> float:
    return float(next(layer.rate for layer in head.layers if isinstance(layer, keras.layers.Dropout)))


#: the trainer of the last head shape (one: a wide TF-IDF head's copy and its optimizer are large)
_TRAINER: dict = {}
_TRAINER_LOCK = threading.Lock()


def _trainer_for(head, *, dropout: float, batch_size: int) -> _Trainer:
    """The trainer for heads shaped like ``head``: the folds of a trial, and trials of the same
    head shape, reuse one compiled epoch (its tracing cost more than the training of a small head)."""
    shapes = tuple((tuple(v.shape), str(v.dtype)) for v in head.variables)
    key = (shapes, dropout, int(batch_size), keras.config.dtype_policy().name)
    if key not in _TRAINER:
        _TRAINER.clear()
        _TRAINER[key] = _Trainer(head, dropout, int(batch_size))
    return _TRAINER[key]


class _Trainer:
    """A head's training on the TensorFlow backend, one compiled call per epoch (its batches
    and the validation pass), traced once for every head of one shape.

    The head's own variables cannot be traced once for all: a ``tf.function`` captures the
    variables it reads. The trainer holds a copy of the head's layers (after the standardising,
    done once on the inputs) and its optimizer; each fit copies the head's variables in (the
    dropout seeds included), resets the optimizer, trains, and copies the variables back: the
    same steps, in the same order, as a loop over the head itself. (Keras' stateless API would
    carry the variables through instead; a copy keeps the head a plain Keras model.)
    """

    def __init__(self, head, dropout: float, batch_size: int):
        import tensorflow as tf

        units = next((int(layer.units) for layer in head.layers[:-1] if isinstance(layer, keras.layers.Dense)), 0)
        dim, n_classes = int(head.inputs[0].shape[-1]), int(head.layers[-1].units)
        self.model = keras.Sequential([keras.Input((dim,)), *_layers(n_classes, units, dropout, 0, zeros=True)])
        if [tuple(v.shape) for v in self.model.variables] != [tuple(v.shape) for v in head.variables]:
            raise AssertionError("a head's trainer differs from the head")  # a head this module did not build
        self.batch_size, self.n_classes = batch_size, n_classes
        self.opt = keras.optimizers.Adam(1e-3)
        self.opt.build(self.model.trainable_variables)
        self.losses = keras.losses.SparseCategoricalCrossentropy(reduction=None)
        spec = tf.TensorSpec([None, dim], tf.float32)
        # the concrete function, called directly: a tf.function's dispatch looks its trace up on
        # each call (4 ms, as long as a small head's epoch)
        self.epoch = tf.function(self._epoch).get_concrete_function(
            spec, tf.TensorSpec([None], tf.int32), tf.TensorSpec([None], tf.int32),
            tf.TensorSpec([n_classes], tf.float32), spec)

    def _epoch(self, xs, ys, order, class_weights, x_val):
        import tensorflow as tf

        variables, bs = self.model.trainable_variables, self.batch_size
        n = tf.shape(order)[0]
        total = tf.constant(0.0)
        for b in tf.range((n + bs - 1) // bs):
            idx = order[b * bs:tf.minimum((b + 1) * bs, n)]
            yb = tf.gather(ys, idx)
            with tf.GradientTape() as tape:
                per_item = self.losses(yb, self.model(tf.gather(xs, idx), training=True))
                loss = tf.reduce_mean(per_item * tf.gather(class_weights, yb))
            self.opt.apply(tape.gradient(loss, variables), variables)
            total += loss * tf.cast(tf.shape(idx)[0], tf.float32)
        return total, self.model(x_val, training=False)

    def fit(self, head, x, y, *, epochs, lr, class_weight, val, history, patience, seed, budget):
        import tensorflow as tf

        def inputs(a):  # standardised once here, as the head's first layer would each batch
            a = tf.constant(np.asarray(a, dtype=np.float32))
            if isinstance(head.layers[0], keras.layers.Normalization):
                a = tf.cast(head.layers[0](a), tf.float32)  # the trainer's inputs are float32 whatever the policy
            return a

        for mine, its in zip(self.model.variables, head.variables):
            mine.assign(its)
        for v in self.opt.variables:
            v.assign(tf.zeros_like(v))
        self.opt.learning_rate = float(lr)
        xs, ys = inputs(x), tf.constant(np.asarray(y, dtype=np.int32))
        x_val = inputs(val[0] if val is not None else np.zeros((0, xs.shape[1]), np.float32))
        weights = tf.constant([float((class_weight or {}).get(i, 1.0)) for i in range(self.n_classes)], tf.float32)
        rng = np.random.default_rng(seed)
        best, best_epoch, best_weights, wait, run = -math.inf, 0, None, 0, 0
        for epoch in range(epochs):
            if budget.past() and (best_weights is not None or val is None):
                break
            total, proba = self.epoch(xs, ys, tf.constant(rng.permutation(len(x)).astype(np.int32)), weights, x_val)
            loss, run = float(total) / len(x), epoch + 1
            if not math.isfinite(loss):
                raise TrialFailed(f"the training loss became {loss} in head epoch {epoch + 1}; "
                                  f"the learning rate is probably too high")
            if val is None:
                continue
            score = float(val[1](np.asarray(proba)))
            history.append({"phase": "head", "epoch": epoch + 1, "loss": loss, "val_score": score})
            if score > best:
                best, best_epoch, best_weights, wait = score, epoch + 1, self.model.get_weights(), 0
            else:
                wait += 1
                if wait >= patience:
                    break
        for its, mine in zip(head.variables, self.model.variables):  # the dropout seeds' state too
            its.assign(mine)
        if val is None:
            return float("nan"), run
        if best_weights is not None:
            head.set_weights(best_weights)
        return best, best_epoch


def probs(model, x) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(model(np.asarray(x, np.float32), training=False)))


def make_head(cfg, ctx, feats, train, val=None, *, history=None,
              epochs: int | None = None, seed: int = 0, budget: Budget = NO_BUDGET):
    """The head of ``cfg`` trained on ``feats[train]``; returns ``(head, info)``.

    Linear head: logistic regression at the strength the probe chose over the run's folds.
    Hidden-layer head: Keras, early-stopped on ``val`` (``info["head_epochs"]`` is the best epoch,
    ``info["score"]`` its score), or exactly ``epochs`` epochs when ``val`` is None (a refit).
    """
    from automl_tl.probe import logistic_head

    if cfg.linear_head:
        C = ctx.probe(cfg.backbone, cfg.options).C
        # the rows, not a copy of them: TF-IDF features are fitted sparse (issue 35)
        return logistic_head(feats, ctx.y[train], C, ctx.n_classes, ctx.class_weight, rows=train), {"C": C}
    keras.utils.set_random_seed(seed)
    x_tr = np.asarray(feats[train], dtype=np.float32)
    head = build_head(x_tr.shape[1], ctx.n_classes, cfg.head_units, cfg.dropout or 0.0, seed=seed, x_train=x_tr)
    if val is None:
        _, run = fit_head(head, x_tr, ctx.y[train], epochs=int(epochs or cfg.head_epochs or 30),
                          lr=cfg.head_lr or 1e-3, class_weight=ctx.class_weight, seed=seed, budget=budget)
        return head, {"head_epochs": run}
    metric = metric_function(ctx.metric)
    x_va, y_va = np.asarray(feats[val], dtype=np.float32), ctx.y[val]
    best, best_epoch = fit_head(head, x_tr, ctx.y[train], epochs=int(cfg.head_epochs or 30),
                                lr=cfg.head_lr or 1e-3, class_weight=ctx.class_weight,
                                val=(x_va, lambda proba: metric(y_va, proba.argmax(1))),
                                history=history, patience=ctx.patience, seed=seed, budget=budget)
    return head, {"head_epochs": best_epoch, "score": best}


def refit_head(cfg, ctx, feats, index, *, epochs: int | None, seed: int = 0, budget: Budget = NO_BUDGET):
    """The head of ``cfg`` retrained on ``feats[index]`` for the ``epochs`` its trial needed (a
    refit); raises :class:`~automl_tl.errors.RefitStopped` when the time budget cut a hidden-layer
    head's epochs short. Returns ``(head, info)`` like :func:`make_head`."""
    head, info = make_head(cfg, ctx, feats, index, epochs=epochs, seed=seed, budget=budget)
    if not cfg.linear_head and info["head_epochs"] < int(epochs or cfg.head_epochs or 30):
        raise RefitStopped("the head's refit ran out of time")
    return head, info
