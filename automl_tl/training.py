"""One trial's training: head on cached features, then optional fine-tuning of the backbone."""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Mapping, Sequence

import keras
import numpy as np

from automl_tl.errors import TrialFailed
from automl_tl.strategy import FEATURE_EXTRACTION, FINE_TUNE_ALL, FINE_TUNE_TOP

__all__ = ["TrialConfig", "TrialContext", "TrialResult", "METRICS", "metric_function", "build_head",
           "set_trainable", "assemble", "run_trial", "train_final", "make_head", "RefitStopped",
           "predict_proba_items"]


def _macro_f1(y_true, y_pred):
    from sklearn.metrics import f1_score

    return f1_score(y_true, y_pred, average="macro")


def _accuracy(y_true, y_pred):
    from sklearn.metrics import accuracy_score

    return accuracy_score(y_true, y_pred)


def _balanced(y_true, y_pred):
    from sklearn.metrics import balanced_accuracy_score

    return balanced_accuracy_score(y_true, y_pred)


METRICS: dict[str, Callable] = {"accuracy": _accuracy, "balanced_accuracy": _balanced, "macro_f1": _macro_f1}


def metric_function(name: str) -> Callable:
    from automl_tl.errors import ConfigError

    if name not in METRICS:
        raise ConfigError(f"unknown metric {name!r}; choose one of {', '.join(METRICS)}")
    return METRICS[name]


@dataclass(frozen=True, kw_only=True)
class TrialConfig:
    """One configuration. ``head_units=0`` is the linear probe head (logistic regression, its
    strength chosen by the run's folds); ``head_units > 0`` a hidden layer trained with Keras
    (``head_lr``, ``dropout``, ``head_epochs``)."""

    backbone: str
    strategy: str
    head_units: int = 0
    head_lr: float | None = None
    dropout: float | None = None
    head_epochs: int | None = None
    unfreeze_blocks: int | None = None
    backbone_lr: float | None = None
    ft_epochs: int | None = None
    augment: bool = False
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def linear_head(self) -> bool:
        return not self.head_units

    def to_dict(self) -> dict:
        return asdict(self) | {"options": dict(self.options)}


@dataclass(frozen=True, kw_only=True)
class TrialContext:
    """Everything fixed across trials of one search."""

    data: Any  # LabelledData
    plan: Any  # EvaluationPlan: folds over all items; plan.train / plan.val is the hold-out split
    y: np.ndarray  # integer labels for data.items
    n_classes: int
    input_configs: Mapping[str, Mapping]  # per backbone
    weights: Mapping[str, Any]  # per backbone: ResolvedWeights
    specs: Mapping[str, Any]  # per backbone: BackboneSpec
    modality: Any
    cache: Any
    metric: str = "accuracy"
    class_weight: Mapping[int, float] | None = None
    seed: int = 0
    batch_size: int = 32
    progress: bool = False
    patience: int = 5
    deadline: float | None = None  # time.monotonic() by which a running trial stops
    probes: dict = field(default_factory=dict)  # (backbone, options) -> ProbeResult, shared

    def features(self, backbone: str, options: Mapping[str, Any]) -> np.ndarray:
        """Frozen features of every item (cached on disk and in memory)."""
        return self.cache.get_or_compute(spec=self.specs[backbone], weights=self.weights.get(backbone),
                                         input_config=self.input_configs[backbone], options=dict(options),
                                         items=self.data.items, data_fingerprint=self.data.fingerprint(),
                                         batch_size=self.batch_size, progress=self.progress)

    def se(self, y_true, y_pred, index) -> float:
        """Standard error of the metric on these predictions (groups resampled whole)."""
        from automl_tl.evaluation import bootstrap_se

        groups = None if self.data.groups is None else np.asarray(self.data.groups)[index]
        return bootstrap_se(y_true, y_pred, metric_function(self.metric), groups=groups, seed=self.seed)

    def probe(self, backbone: str, options: Mapping[str, Any]):
        """The linear probe of (backbone, options) over the run's folds, computed once."""
        from automl_tl.probe import linear_probe

        key = (backbone, tuple(sorted(dict(options).items())))
        if key not in self.probes:
            feats = self.features(backbone, options)
            self.probes[key] = linear_probe(
                feats, self.y, self.plan.folds, metric=metric_function(self.metric),
                n_classes=self.n_classes, class_weight=self.class_weight,
                se_fn=lambda yt, yp, idx: self.se(yt, yp, idx))
        return self.probes[key]


@dataclass(kw_only=True)
class TrialResult:
    score: float
    se: float
    n_eval: int  # how many items the score was measured on
    evaluation: str  # "cv" or "holdout"
    history: list
    seconds: float
    head: Any  # the head trained on the hold-out split's training items (the search's model)
    val_probs: Any = None  # (n_eval, n_classes) probabilities on ``val_index`` (out of fold with CV)
    val_index: Any = None
    backbone: Any = None  # the fine-tuned backbone; None for feature extraction (frozen weights)
    epochs: dict = field(default_factory=dict)  # what a refit needs: {"head": n, "fine_tune": m}
    C: float | None = None  # the logistic-regression strength of a linear head
    stopped_early: str = ""  # why training stopped before its planned epochs (time budget)


# ------------------------------------------------------------------------------ model parts
def build_head(dim: int, n_classes: int, units: int, dropout: float, seed: int = 0, *, x_train=None):
    """``[standardise] -> Dropout -> [Dense(units, relu) -> Dropout] -> Dense(n_classes, softmax)``.

    With ``x_train`` the features are standardised with its mean and variance (fixed, saved in
    the model): backbones whose feature dimensions sit on large offsets (the ONNX speech
    embedding) otherwise train a poor head.
    """
    layers = [keras.Input((dim,), name="features")]
    if x_train is not None:
        x = np.asarray(x_train, dtype=np.float64)
        layers.append(keras.layers.Normalization(mean=x.mean(0), variance=x.var(0) + 1e-6, name="feature_norm"))
    layers.append(keras.layers.Dropout(dropout, seed=seed))
    if units:
        layers += [keras.layers.Dense(units, activation="relu"), keras.layers.Dropout(dropout, seed=seed + 1)]
    layers.append(keras.layers.Dense(n_classes, activation="softmax", name="probabilities"))
    return keras.Sequential(layers, name="head")


def set_trainable(backbone, spec, strategy: str, unfreeze_blocks: int | None = None) -> None:
    """Freeze for ``strategy``; BatchNormalization layers always stay frozen (inference mode).

    Keras 3 notes: ``layer.trainable = True`` resets the layer's own originally-trainable
    variables recursively, and a frozen parent hides trainable children, so the top-N rule freezes
    *variables* outside the chosen blocks instead of toggling parents.
    """

    originally = getattr(backbone, "_automl_tl_trainable_ids", None)
    if originally is None:  # remember which variables are trainable by design (not BN statistics)
        backbone.trainable = True
        originally = {id(v) for v in backbone.trainable_weights}
        backbone._automl_tl_trainable_ids = originally
    backbone.trainable = True
    if strategy == FEATURE_EXTRACTION:
        backbone.trainable = False
        return
    if strategy == FINE_TUNE_TOP:
        blocks = spec.blocks(backbone)
        n = max(1, min(int(unfreeze_blocks or 1), len(blocks)))
        keep = {id(v) for block in blocks[-n:] for layer in block for v in layer.weights}
    elif strategy == FINE_TUNE_ALL:
        keep = originally
    else:
        raise ValueError(f"unknown strategy {strategy!r}")
    bns = [l for l in backbone._flatten_layers(include_self=False)
           if isinstance(l, keras.layers.BatchNormalization)]
    bn_vars = {id(v) for l in bns for v in l.weights}
    for v in backbone.weights:
        if id(v) in originally:
            v.trainable = id(v) in keep and id(v) not in bn_vars
    for layer in bns:  # a frozen BN layer runs in inference mode (moving statistics)
        layer.trainable = False
        for v in layer.weights:
            v.trainable = False


def assemble(backbone, head, augmentation=None, name: str = "automl_tl_model"):
    """``inputs -> [augmentation] -> backbone -> head`` as one Keras model."""

    def make_input(t, key=None):
        return keras.Input(shape=tuple(t.shape[1:]), dtype=t.dtype, name=key or "inputs")

    spec_in = backbone.input
    if isinstance(spec_in, dict):
        inputs = {k: make_input(v, k) for k, v in spec_in.items()}
    else:
        inputs = make_input(spec_in)
    x = augmentation(inputs) if augmentation is not None else inputs
    return keras.Model(inputs, head(backbone(x)), name=name)


# ------------------------------------------------------------------------------ callbacks
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


# ------------------------------------------------------------------------------ head training
def fit_head(head, x, y, *, epochs, lr, class_weight, score_fn=None, history=None, patience=5,
             seed=0, batch_size: int = 64, deadline: float | None = None) -> tuple[float, int]:
    """Train the head on cached features. With ``score_fn``: early stopping on the validation
    score, best weights kept; returns ``(best score, best epoch)``. Without (a refit): exactly
    ``epochs`` epochs; returns ``(nan, epochs run)``. Stops at ``deadline`` either way.

    On the TensorFlow backend this is a small compiled loop: Keras ``fit`` spends most of a
    cached trial in per-epoch overhead (a few hundred vectors per epoch), and a cached trial
    should cost a small fraction of one that embeds the data. Other backends use ``fit``.
    """
    history = history if history is not None else []
    if keras.backend.backend() != "tensorflow":
        head.compile(optimizer=keras.optimizers.Adam(lr), loss="sparse_categorical_crossentropy")
        if score_fn is None:
            stop = Deadline(deadline)
            h = head.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=0, shuffle=True,
                         class_weight=dict(class_weight) if class_weight else None, callbacks=[stop])
            return float("nan"), len(h.history.get("loss", []))
        mon = ValidationMonitor(score_fn=score_fn, phase="head", history=history, patience=patience,
                                deadline=deadline)
        head.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=0, shuffle=True,
                 class_weight=dict(class_weight) if class_weight else None, callbacks=[mon])
        return mon.best, mon.best_epoch
    import tensorflow as tf

    opt = keras.optimizers.Adam(lr)
    variables = head.trainable_variables
    opt.build(variables)
    losses = keras.losses.SparseCategoricalCrossentropy(reduction=None)
    n_classes = int(head.layers[-1].units)
    weights = tf.constant([float((class_weight or {}).get(i, 1.0)) for i in range(n_classes)], tf.float32)

    @tf.function(reduce_retracing=True)
    def step(xb, yb):
        with tf.GradientTape() as tape:
            per_item = losses(yb, head(xb, training=True)) * tf.gather(weights, yb)
            loss = tf.reduce_mean(per_item)
        opt.apply(tape.gradient(loss, variables), variables)
        return loss

    xs, ys = tf.constant(x), tf.constant(np.asarray(y, dtype=np.int32))
    rng = np.random.default_rng(seed)
    best, best_epoch, best_weights, wait, run = -math.inf, 0, None, 0, 0
    for epoch in range(epochs):
        if past(deadline) and (best_weights is not None or score_fn is None):
            break
        order = rng.permutation(len(x))
        total = 0.0
        for s in range(0, len(x), batch_size):
            idx = tf.constant(order[s:s + batch_size])
            total += float(step(tf.gather(xs, idx), tf.gather(ys, idx))) * len(order[s:s + batch_size])
        loss = total / len(x)
        run = epoch + 1
        if not math.isfinite(loss):
            raise TrialFailed(f"the training loss became {loss} in head epoch {epoch + 1}; "
                              f"the learning rate is probably too high")
        if score_fn is None:
            continue
        score = float(score_fn(head))
        history.append({"phase": "head", "epoch": epoch + 1, "loss": loss, "val_score": score})
        if score > best:
            best, best_epoch, best_weights, wait = score, epoch + 1, head.get_weights(), 0
        else:
            wait += 1
            if wait >= patience:
                break
    if score_fn is None:
        return float("nan"), run
    if best_weights is not None:
        head.set_weights(best_weights)
    return best, best_epoch


# ------------------------------------------------------------------------------ data
def _dataset(items, y, adapter, batch_size, *, shuffle: bool, seed: int):
    """A tf.data pipeline that decodes batches from disk on the fly (bounded memory)."""
    import tensorflow as tf

    items = list(items)
    y = np.asarray(y)
    rng = np.random.default_rng(seed)
    n = len(items)

    def gen():
        order = rng.permutation(n) if shuffle else np.arange(n)
        for s in range(0, n, batch_size):
            idx = order[s:s + batch_size]
            yield adapter([items[i] for i in idx]), y[idx]

    sample_x = adapter(items[:1])

    def sig(a):
        return tf.TensorSpec(shape=(None,) + tuple(np.asarray(a).shape[1:]), dtype=tf.as_dtype(np.asarray(a).dtype))

    x_sig = {k: sig(v) for k, v in sample_x.items()} if isinstance(sample_x, dict) else sig(sample_x)
    ds = tf.data.Dataset.from_generator(gen, output_signature=(x_sig, tf.TensorSpec((None,), tf.as_dtype(y.dtype))))
    steps = math.ceil(n / batch_size)
    return ds.apply(tf.data.experimental.assert_cardinality(steps)).prefetch(2)


def predict_proba_items(model, adapter, items: Sequence[Any], batch_size: int = 32, *,
                        featurize=None, n_classes: int | None = None) -> np.ndarray:
    """Class probabilities for raw ``items`` through ``adapter`` and a Keras ``model``; with
    ``featurize`` (a non-Keras backbone) each batch goes through it before ``model`` (the head)."""
    from automl_tl.cache import iter_batches

    out = []
    for _, batch in iter_batches(items, adapter, batch_size):
        if featurize is not None:
            batch = np.asarray(featurize(batch), dtype="float32")
        out.append(np.asarray(model.predict_on_batch(batch)))
    if out:
        return np.concatenate(out)
    return np.zeros((0, n_classes if n_classes is not None else model.output.shape[-1]))


# ------------------------------------------------------------------------------ a trial
class RefitStopped(Exception):
    """A refit ran past the time budget; the search's model stays delivered."""


def _probs(model, x) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(model(np.asarray(x, np.float32), training=False)))


def make_head(cfg: TrialConfig, ctx: TrialContext, feats, train, val=None, *, history=None,
              epochs: int | None = None, seed: int = 0, deadline: float | None = None):
    """The head of ``cfg`` trained on ``feats[train]``; returns ``(head, info)``.

    Linear head: logistic regression at the strength the probe chose over the run's folds.
    Hidden-layer head: Keras, early-stopped on ``val`` (``info["head_epochs"]`` is the best epoch,
    ``info["score"]`` its score), or exactly ``epochs`` epochs when ``val`` is None (a refit).
    """
    from automl_tl.probe import logistic_head

    if cfg.linear_head:
        C = ctx.probe(cfg.backbone, cfg.options).C
        return logistic_head(np.asarray(feats[train]), ctx.y[train], C, ctx.n_classes, ctx.class_weight), {"C": C}
    keras.utils.set_random_seed(seed)
    x_tr = np.asarray(feats[train], dtype=np.float32)
    head = build_head(x_tr.shape[1], ctx.n_classes, cfg.head_units, cfg.dropout or 0.0, seed=seed, x_train=x_tr)
    if val is None:
        _, run = fit_head(head, x_tr, ctx.y[train], epochs=int(epochs or cfg.head_epochs or 30),
                          lr=cfg.head_lr or 1e-3, class_weight=ctx.class_weight, seed=seed, deadline=deadline)
        return head, {"head_epochs": run}
    metric = metric_function(ctx.metric)
    x_va, y_va = np.asarray(feats[val], dtype=np.float32), ctx.y[val]
    best, best_epoch = fit_head(head, x_tr, ctx.y[train], epochs=int(cfg.head_epochs or 30),
                                lr=cfg.head_lr or 1e-3, class_weight=ctx.class_weight,
                                score_fn=lambda m: metric(y_va, _probs(m, x_va).argmax(1)),
                                history=history, patience=ctx.patience, seed=seed, deadline=deadline)
    return head, {"head_epochs": best_epoch, "score": best}


def _feature_extraction(cfg, ctx, feats, history, t0) -> TrialResult:
    """Scored on the run's folds: out-of-fold predictions for every evaluated item."""
    plan, metric = ctx.plan, metric_function(ctx.metric)
    head, info = make_head(cfg, ctx, feats, plan.train, seed=ctx.seed) if cfg.linear_head else (None, {})
    if cfg.linear_head:
        pr = ctx.probe(cfg.backbone, cfg.options)
        return TrialResult(score=pr.score, se=pr.se, n_eval=len(pr.eval_index), evaluation=plan.kind,
                           history=history, seconds=time.perf_counter() - t0, head=head,
                           val_probs=pr.oof_probs, val_index=pr.eval_index, C=pr.C)
    # Cross-validated, a hidden-layer head trains exactly head_epochs epochs: early-stopping on
    # the fold it is scored on would pick each fold's luckiest epoch (measured: +6 points of
    # optimism at 200 texts). With one large hold-out split, early stopping is cheap and fair.
    cv = plan.kind == "cv"
    probs, index, epochs, stopped = [], [], [], ""
    for k, (tr, va) in enumerate(plan.folds):
        if k and past(ctx.deadline):
            stopped = f"the time budget ran out after {k} of {plan.k} folds"
            break
        fold_head, info = make_head(cfg, ctx, feats, tr, None if cv else va, history=history if k == 0 else [],
                                    epochs=cfg.head_epochs, seed=ctx.seed + k, deadline=ctx.deadline)
        head = head or fold_head  # fold 0 trains on the hold-out split's training items
        probs.append(_probs(fold_head, feats[va]))
        index.append(va)
        epochs.append(info["head_epochs"])
    index, probs = np.concatenate(index), np.concatenate(probs)
    pred = probs.argmax(1)
    return TrialResult(score=float(metric(ctx.y[index], pred)), se=ctx.se(ctx.y[index], pred, index),
                       n_eval=len(index), evaluation=plan.kind if not stopped else "holdout",
                       history=history, seconds=time.perf_counter() - t0, head=head, val_probs=probs,
                       val_index=index, epochs={"head": max(1, int(round(float(np.mean(epochs)))))},
                       stopped_early=stopped)


def _fine_tuning_model(cfg, ctx, head):
    spec = ctx.specs[cfg.backbone]
    input_config = ctx.input_configs[cfg.backbone]
    backbone = spec.build(ctx.weights.get(cfg.backbone), input_config, **cfg.options)
    set_trainable(backbone, spec, cfg.strategy, cfg.unfreeze_blocks)
    aug = ctx.modality.augmentation(input_config) if cfg.augment else None
    model = assemble(backbone, head, aug)
    model.compile(optimizer=keras.optimizers.Adam(cfg.backbone_lr or 1e-4), loss="sparse_categorical_crossentropy")
    return backbone, model, spec.make_adapter(input_config, ctx.weights.get(cfg.backbone), None)


def run_trial(cfg: TrialConfig, ctx: TrialContext, trial=None, history: list | None = None) -> TrialResult:
    """Train and score one configuration; ``history`` (if given) is filled epoch by epoch, so a
    caller still has it when the trial is pruned or fails.

    Feature extraction is scored on the run's folds (cross-validation on small data). Fine-tuning
    is scored on the hold-out split: head first on cached features (the linear probe's logistic
    regression, or a hidden-layer head), then backbone and head together at ``backbone_lr``.
    """
    t0 = time.perf_counter()
    history = history if history is not None else []
    feats = ctx.features(cfg.backbone, cfg.options)
    keras.utils.set_random_seed(ctx.seed)  # after embedding: cached and uncached trials train alike
    if cfg.strategy == FEATURE_EXTRACTION:
        return _feature_extraction(cfg, ctx, feats, history, t0)

    metric = metric_function(ctx.metric)
    train, val = ctx.plan.train, ctx.plan.val
    y_train, y_val = ctx.y[train], ctx.y[val]
    # Head training on cached features takes seconds: only fine-tuning epochs are reported to the
    # pruner, so fine-tuning trials are compared with each other, epoch by epoch.
    head, info = make_head(cfg, ctx, feats, train, None if cfg.linear_head else val, history=history,
                           seed=ctx.seed, deadline=ctx.deadline)
    backbone, model, adapter = _fine_tuning_model(cfg, ctx, head)
    items = ctx.data.items
    val_items = [items[i] for i in val]

    def full_score(m):
        return metric(y_val, np.argmax(predict_proba_items(m, adapter, val_items, ctx.batch_size), axis=1))

    ds = _dataset([items[i] for i in train], y_train, adapter, ctx.batch_size, shuffle=True, seed=ctx.seed)
    mon = ValidationMonitor(score_fn=full_score, phase="fine_tune", history=history,
                            patience=max(1, ctx.patience // 2), trial=trial, score_initial=True,
                            deadline=ctx.deadline)
    model.fit(ds, epochs=cfg.ft_epochs or 1, verbose=0, shuffle=False,
              class_weight=dict(ctx.class_weight) if ctx.class_weight else None, callbacks=[mon])
    probs = predict_proba_items(model, adapter, val_items, ctx.batch_size)
    pred = probs.argmax(1)
    return TrialResult(score=float(mon.best), se=ctx.se(y_val, pred, val), n_eval=len(val),
                       evaluation="holdout", history=history, seconds=time.perf_counter() - t0,
                       head=head, val_probs=probs, val_index=val, backbone=backbone,
                       epochs={"head": info.get("head_epochs"), "fine_tune": mon.best_epoch},
                       C=info.get("C"), stopped_early=mon.stopped_early)


def train_final(cfg: TrialConfig, ctx: TrialContext, index, *, epochs: Mapping[str, Any] | None = None,
                deadline: float | None = None):
    """Train ``cfg`` on the items ``index`` (all labelled items for a refit) with the epochs its
    trial needed, no validation. Returns ``(head, fine-tuned backbone or None)``; raises
    :class:`RefitStopped` if ``deadline`` passes first."""
    epochs = dict(epochs or {})
    feats = ctx.features(cfg.backbone, cfg.options)
    keras.utils.set_random_seed(ctx.seed)
    head, info = make_head(cfg, ctx, feats, index, epochs=epochs.get("head"), seed=ctx.seed, deadline=deadline)
    if not cfg.linear_head and info["head_epochs"] < int(epochs.get("head") or cfg.head_epochs or 30):
        raise RefitStopped("the head's refit ran out of time")
    n_ft = int(epochs.get("fine_tune") or 0)
    if cfg.strategy == FEATURE_EXTRACTION or n_ft == 0:  # fine-tuning never beat its head start
        return head, None
    backbone, model, adapter = _fine_tuning_model(cfg, ctx, head)
    items = ctx.data.items
    ds = _dataset([items[i] for i in index], ctx.y[index], adapter, ctx.batch_size, shuffle=True, seed=ctx.seed)
    stop = Deadline(deadline)
    model.fit(ds, epochs=n_ft, verbose=0, shuffle=False,
              class_weight=dict(ctx.class_weight) if ctx.class_weight else None, callbacks=[stop])
    if stop.hit:
        raise RefitStopped("fine-tuning the refit ran out of time")
    return head, backbone
