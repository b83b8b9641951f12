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
           "set_trainable", "assemble", "run_trial", "predict_proba_items"]


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
    backbone: str
    strategy: str
    head_lr: float
    head_units: int
    dropout: float
    head_epochs: int
    unfreeze_blocks: int | None = None
    backbone_lr: float | None = None
    ft_epochs: int | None = None
    augment: bool = False
    options: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self) | {"options": dict(self.options)}


@dataclass(frozen=True, kw_only=True)
class TrialContext:
    """Everything fixed across trials of one search."""

    data: Any  # LabelledData
    split: Any  # Split
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


@dataclass(kw_only=True)
class TrialResult:
    score: float
    history: list
    seconds: float
    head: Any
    val_probs: Any = None  # (n_val, n_classes) probabilities of the returned model
    backbone: Any = None  # the fine-tuned backbone; None for feature extraction (frozen weights)


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
class ValidationMonitor(keras.callbacks.Callback):
    """Validation score each epoch, best-weights keeping, early stopping, NaN check, pruning.

    The starting state is scored too, so fine-tuning never returns something worse than the
    head it started from.
    """

    def __init__(self, *, score_fn, phase, history, patience, trial=None,
                 score_initial=False):
        super().__init__()
        self.score_fn = score_fn
        self.phase = phase
        self.history = history
        self.patience = patience
        self.trial = trial
        self.score_initial = score_initial
        self.best = -math.inf
        self.best_weights = None
        self.wait = 0
        self.epochs_run = 0

    def on_train_begin(self, logs=None):
        if self.score_initial:
            self._consider(self.score_fn(self.model), initial=True)

    def _consider(self, score, initial=False):
        if score > self.best:
            self.best = score
            self.best_weights = self.model.get_weights()
            self.wait = 0
        elif not initial:
            self.wait += 1

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
        self._consider(score)
        if self.trial is not None:
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


# ------------------------------------------------------------------------------ head training
def fit_head(head, x, y, *, epochs, lr, class_weight, score_fn, history, patience, seed=0,
             batch_size: int = 64) -> float:
    """Train the head on cached features with early stopping on the validation score; keeps the
    best weights and returns the best score.

    On the TensorFlow backend this is a small compiled loop: Keras ``fit`` spends most of a
    cached trial in per-epoch overhead (a few hundred vectors per epoch), and a cached trial
    should cost a small fraction of one that embeds the data. Other backends use ``fit``.
    """
    if keras.backend.backend() != "tensorflow":
        head.compile(optimizer=keras.optimizers.Adam(lr), loss="sparse_categorical_crossentropy")
        mon = ValidationMonitor(score_fn=score_fn, phase="head", history=history, patience=patience)
        head.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=0, shuffle=True,
                 class_weight=dict(class_weight) if class_weight else None, callbacks=[mon])
        return mon.best
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
    best, best_weights, wait = -math.inf, None, 0
    for epoch in range(epochs):
        order = rng.permutation(len(x))
        total = 0.0
        for s in range(0, len(x), batch_size):
            idx = tf.constant(order[s:s + batch_size])
            total += float(step(tf.gather(xs, idx), tf.gather(ys, idx))) * len(order[s:s + batch_size])
        loss = total / len(x)
        if not math.isfinite(loss):
            raise TrialFailed(f"the training loss became {loss} in head epoch {epoch + 1}; "
                              f"the learning rate is probably too high")
        score = float(score_fn(head))
        history.append({"phase": "head", "epoch": epoch + 1, "loss": loss, "val_score": score})
        if score > best:
            best, best_weights, wait = score, head.get_weights(), 0
        else:
            wait += 1
            if wait >= patience:
                break
    if best_weights is not None:
        head.set_weights(best_weights)
    return best


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
def run_trial(cfg: TrialConfig, ctx: TrialContext, trial=None, history: list | None = None) -> TrialResult:
    """Train one configuration; ``history`` (if given) is filled epoch by epoch, so a caller
    still has it when the trial is pruned or fails."""

    t0 = time.perf_counter()
    spec = ctx.specs[cfg.backbone]
    weights = ctx.weights.get(cfg.backbone)
    input_config = ctx.input_configs[cfg.backbone]
    metric = metric_function(ctx.metric)
    train, val = ctx.split.train, ctx.split.val
    y_train, y_val = ctx.y[train], ctx.y[val]
    history = history if history is not None else []

    feats = ctx.cache.get_or_compute(spec=spec, weights=weights, input_config=input_config,
                                     options=cfg.options, items=ctx.data.items,
                                     data_fingerprint=ctx.data.fingerprint(),
                                     batch_size=ctx.batch_size, progress=ctx.progress)
    x_train = np.asarray(feats[train], dtype=np.float32)
    x_val = np.asarray(feats[val], dtype=np.float32)

    keras.utils.set_random_seed(ctx.seed)  # after embedding: cached and uncached trials train alike
    head = build_head(x_train.shape[1], ctx.n_classes, cfg.head_units, cfg.dropout, seed=ctx.seed,
                      x_train=x_train)
    def head_score(model):  # a direct call: no predict-loop tracing per trial
        return metric(y_val, np.argmax(keras.ops.convert_to_numpy(model(x_val, training=False)), axis=1))

    fe = cfg.strategy == FEATURE_EXTRACTION
    # Head training on cached features takes seconds: only fine-tuning epochs are reported to the
    # pruner, so fine-tuning trials are compared with each other, epoch by epoch.
    best = fit_head(head, x_train, y_train, epochs=cfg.head_epochs, lr=cfg.head_lr,
                    class_weight=ctx.class_weight, score_fn=head_score, history=history,
                    patience=ctx.patience, seed=ctx.seed)
    if fe:
        probs = keras.ops.convert_to_numpy(head(x_val, training=False))
        return TrialResult(score=float(best), history=history, seconds=time.perf_counter() - t0,
                           head=head, val_probs=probs)

    # Fine-tuning: head warm-started above at head_lr, then backbone + head at backbone_lr.
    backbone = spec.build(weights, input_config, **cfg.options)
    set_trainable(backbone, spec, cfg.strategy, cfg.unfreeze_blocks)
    aug = ctx.modality.augmentation(input_config) if cfg.augment else None
    model = assemble(backbone, head, aug)
    model.compile(optimizer=keras.optimizers.Adam(cfg.backbone_lr), loss="sparse_categorical_crossentropy")
    adapter = spec.make_adapter(input_config, weights, None)
    items = ctx.data.items
    train_items = [items[i] for i in train]
    val_items = [items[i] for i in val]

    def full_score(m):
        probs = predict_proba_items(m, adapter, val_items, ctx.batch_size)
        return metric(y_val, np.argmax(probs, axis=1))

    ds = _dataset(train_items, y_train, adapter, ctx.batch_size, shuffle=True, seed=ctx.seed)
    mon2 = ValidationMonitor(score_fn=full_score, phase="fine_tune", history=history,
                    patience=max(1, ctx.patience // 2), trial=trial, score_initial=True)
    model.fit(ds, epochs=cfg.ft_epochs or 1, verbose=0, shuffle=False,
              class_weight=dict(ctx.class_weight) if ctx.class_weight else None, callbacks=[mon2])
    probs = predict_proba_items(model, adapter, val_items, ctx.batch_size)
    return TrialResult(score=float(mon2.best), history=history, seconds=time.perf_counter() - t0,
                       head=head, val_probs=probs, backbone=backbone)
