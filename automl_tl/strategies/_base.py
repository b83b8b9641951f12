"""The strategy API: :class:`TransferStrategy`, and :class:`FineTuning` for strategies that move
backbone weights."""

from __future__ import annotations

import time
from typing import Any, Mapping

import keras
import numpy as np

from automl_tl.budget import NO_BUDGET, Budget
from automl_tl.errors import RefitStopped

__all__ = ["TransferStrategy", "FineTuning"]


class TransferStrategy:
    """One way to transfer a pretrained backbone. Subclass it, set the class attributes, and
    register an instance through the ``automl_tl_register_strategies`` hook.

    :attr name: registry name, lower case (``"lp_ft"``); the ``strategy`` of a trial.
    :attr description: one line for ``automl-tl strategies`` and the report.
    :attr fine_tunes: whether backbone weights move. A strategy that does not is offered for
        every backbone (also those that can only extract features).
    :attr rank: simplicity for the one-standard-error rule's tie-break: among trials within noise
        of each other the lowest rank is delivered (0 frozen, 1 part of the network, 2 all of it).
    :attr hidden_heads: whether the search may give this strategy a hidden-layer head; False
        keeps the linear head (``head_units=0``) only.
    :attr saves: what the saved model holds, in words.
    :attr probe_equivalent: whether this strategy's trial with the linear head (``head_units=0``)
        *is* the linear probe the engine already computed for its (backbone, options): frozen
        features, the same deterministic score. Exactly one registered strategy declares it (the
        built-in ``feature_extraction``; it must not fine-tune). The engine relies on it to
        enqueue the probes as trials, to search a backbone no other searched strategy applies to,
        to run no repeat of such a trial, to try no hidden-layer head on features whose probe
        trails far behind, and to count such trials as cheap (the first model owed under a spent
        time budget, ensemble members). A frozen strategy that does not declare it is searched
        like any other: its linear-head trials run, and are neither skipped nor counted cheap.

    A strategy's own hyperparameters, and their ranges, are its business: :meth:`suggest` asks
    them of the trial (the ranges as class attributes, e.g. layer-wise decay's ``lr_decay``).
    The :class:`~automl_tl.search.SearchSpace` holds only the ranges every strategy shares (the
    head's) and those of the fine-tuning family (``backbone_lr``, ``ft_epochs``).
    """

    name: str = ""
    description: str = ""
    fine_tunes: bool = True
    rank: int = 2
    hidden_heads: bool = True
    saves: str = "the fine-tuned backbone and its head"
    probe_equivalent: bool = False

    def applies_to(self, spec) -> bool:
        """Whether this strategy can train ``spec`` (a BackboneSpec)."""
        return not self.fine_tunes or bool(spec.fine_tunable)

    def suggest(self, trial, spec, space) -> dict[str, Any]:
        """This strategy's own hyperparameters for ``spec``, asked of ``trial`` (an Optuna trial,
        or the stand-in that encodes a recommendation as one point of the same space). Keys that
        are :class:`~automl_tl.training.TrialConfig` fields fill them; others go to its ``extra``.
        ``space`` is the :class:`~automl_tl.search.SearchSpace` (the shared ranges); ranges of
        this strategy's own parameters are its own (class attributes). The parameter names and
        distributions are part of every stored study: keep them stable, or resumed studies and
        the knowledge base no longer match."""
        return {}

    def complexity(self, cfg) -> tuple:
        """Sort key for ties: simpler first."""
        return (self.rank, int(cfg.unfreeze_blocks or 0))

    def run(self, cfg, ctx, *, trial=None, history: list) -> Any:
        """Train and score ``cfg``; return a :class:`~automl_tl.training.TrialResult`. Report
        per-epoch scores to ``trial`` (Optuna's pruner) and append them to ``history``."""
        raise NotImplementedError

    def refit(self, cfg, ctx, index, *, epochs: Mapping[str, Any], budget: Budget):
        """Retrain ``cfg`` on the items ``index`` for the ``epochs`` its trial needed; return
        ``(head, fine-tuned backbone or None)``. Raise :class:`~automl_tl.errors.RefitStopped`
        when ``budget`` (:class:`~automl_tl.budget.Budget`) runs out first."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<strategy {self.name}>"


class FineTuning(TransferStrategy):
    """Backbone and head trained together at ``backbone_lr`` for up to ``ft_epochs`` epochs,
    scored on the hold-out split after every epoch (the starting state too, so fine-tuning never
    returns something worse than the head it started from), pruned by Optuna's pruner.

    :attr head_start: train the head on frozen features first (to convergence: the linear probe's
        logistic regression, or an early-stopped hidden layer), then fine-tune from it. False:
        a freshly initialised head trained with the backbone from the first step.

    Subclasses choose which variables move (:meth:`trainable`) and how fast
    (:meth:`learning_rates`).
    """

    head_start: bool = True

    # ------------------------------------------------------------------ the space
    def suggest(self, trial, spec, space) -> dict[str, Any]:
        out: dict[str, Any] = {
            "backbone_lr": trial.suggest_float("backbone_lr", *space.backbone_lr, log=True),
            "ft_epochs": trial.suggest_int("ft_epochs", *space.ft_epochs)}
        if space.augmentable.get(spec.name):
            out["augment"] = trial.suggest_categorical("augment", [False, True])
        return out

    # ------------------------------------------------------------------ what moves, how fast
    def trainable(self, backbone, spec, cfg) -> set[int]:
        """Ids of the backbone variables that train (default: all that are trainable by design)."""
        from automl_tl.training import design_trainable

        return set(design_trainable(backbone))

    def learning_rates(self, backbone, spec, cfg) -> Mapping[int, float] | None:
        """Learning-rate factor per variable id, relative to ``backbone_lr`` (None: one rate)."""
        return None

    def freeze(self, backbone, spec, cfg) -> None:
        from automl_tl.training import set_trainable

        set_trainable(backbone, self.trainable(backbone, spec, cfg))

    def optimizer(self, backbone, spec, cfg):
        from automl_tl.strategies._optimizers import LayerwiseAdam

        lr = cfg.backbone_lr or 1e-4
        factors = self.learning_rates(backbone, spec, cfg)
        return LayerwiseAdam(factors, learning_rate=lr) if factors else keras.optimizers.Adam(lr)

    # ------------------------------------------------------------------ training
    def first_head(self, cfg, ctx, feats, train, val=None, *, history=None, epochs=None, budget: Budget = NO_BUDGET):
        """The head fine-tuning starts from: ``(head, info)``."""
        from automl_tl.heads import build_head, make_head

        if self.head_start:
            return make_head(cfg, ctx, feats, train, val, history=history, epochs=epochs, seed=ctx.seed,
                             budget=budget)
        x = np.asarray(feats[train], dtype=np.float32)
        return build_head(x.shape[1], ctx.n_classes, cfg.head_units, cfg.dropout or 0.0, seed=ctx.seed,
                          x_train=x), {}

    def backbone(self, cfg, ctx):
        """The backbone to fine-tune at the run's precision (the head stays float32), with its
        pretrained weights: built once per process and configuration, restored for each later
        trial while nothing else holds it (:mod:`automl_tl.trainable_pool`)."""
        from automl_tl.trainable_pool import trainable_backbone

        return trainable_backbone(ctx.specs[cfg.backbone], ctx.weights.get(cfg.backbone),
                                  ctx.input_configs[cfg.backbone], cfg.options, ctx.precision,
                                  lambda: ctx.build_backbone(cfg.backbone, cfg.options))

    def model(self, cfg, ctx, head):
        """``(backbone, compiled model, adapter)`` for fine-tuning from ``head``."""
        from automl_tl.accelerator import steps_per_execution
        from automl_tl.batching import train_batch_size
        from automl_tl.training import assemble

        spec = ctx.specs[cfg.backbone]
        input_config = ctx.input_configs[cfg.backbone]
        weights = ctx.weights.get(cfg.backbone)
        backbone = self.backbone(cfg, ctx)
        self.freeze(backbone, spec, cfg)
        aug = ctx.modality.augmentation(input_config) if cfg.augment else None
        model = assemble(backbone, head, aug)
        n_batches = -(-len(ctx.plan.train) // train_batch_size(ctx.train_batch_for(cfg.backbone), input_config))
        model.compile(optimizer=self.optimizer(backbone, spec, cfg), loss="sparse_categorical_crossentropy",
                      steps_per_execution=steps_per_execution(n_batches))
        # built here, on the variables Keras would build it on: Keras' TensorFlow trainer otherwise
        # creates the optimizer's variables inside the first trace of its train function, and a
        # tf.function that creates variables is traced twice. A trial's first epoch on this 2-core
        # CPU, MobileNetV2: fine_tune_all 5.5 s -> 2.8 s, fine_tune_top 2.8 s -> 1.6 s
        # (benchmarks/bench_first_epoch.py); other backends build it in fit before tracing anyway
        model.optimizer.build(model.trainable_variables)
        return backbone, model, spec.make_adapter(input_config, weights, None)

    def run(self, cfg, ctx, *, trial=None, history: list):
        from automl_tl.batching import make_dataset, predict_proba_items, train_batch_size
        from automl_tl.metrics import metric_function
        from automl_tl.monitor import ValidationMonitor
        from automl_tl.training import TrialResult

        t0 = time.perf_counter()
        feats = ctx.features(cfg.backbone, cfg.options)
        keras.utils.set_random_seed(ctx.seed)  # after embedding: cached and uncached trials train alike
        metric = metric_function(ctx.metric)
        train, val = ctx.plan.train, ctx.plan.val
        # head training on cached features takes seconds: only fine-tuning epochs are reported to
        # the pruner, so fine-tuning trials are compared with each other, epoch by epoch
        head, info = self.first_head(cfg, ctx, feats, train, None if cfg.linear_head else val,
                                     history=history, budget=ctx.budget)
        backbone, model, adapter = self.model(cfg, ctx, head)
        items = ctx.data.items
        val_items = [items[i] for i in val]
        batch = ctx.batch_for(cfg.backbone)

        def full_score(m):
            return metric(ctx.y[val], np.argmax(predict_proba_items(m, adapter, val_items, batch), axis=1))

        ds = make_dataset([items[i] for i in train], ctx.y[train], adapter,
                          train_batch_size(ctx.train_batch_for(cfg.backbone), ctx.input_configs[cfg.backbone]),
                          shuffle=True,
                          seed=ctx.seed)
        mon = ValidationMonitor(score_fn=full_score, phase="fine_tune", history=history,
                                patience=max(1, ctx.patience // 2), trial=trial, score_initial=True,
                                budget=ctx.budget)
        model.fit(ds, epochs=cfg.ft_epochs or 1, verbose=0, shuffle=False,
                  class_weight=dict(ctx.class_weight) if ctx.class_weight else None, callbacks=[mon])
        probs = predict_proba_items(model, adapter, val_items, batch)
        pred = probs.argmax(1)
        return TrialResult(score=float(mon.best), se=ctx.se(ctx.y[val], pred, val), n_eval=len(val),
                           evaluation="holdout", history=history, seconds=time.perf_counter() - t0,
                           head=head, val_probs=probs, val_index=val, backbone=backbone,
                           epochs={"head": info.get("head_epochs"), "fine_tune": mon.best_epoch},
                           C=info.get("C"), stopped_early=mon.stopped_early)

    def refit(self, cfg, ctx, index, *, epochs: Mapping[str, Any], budget: Budget):
        from automl_tl.batching import make_dataset, train_batch_size
        from automl_tl.heads import refit_head
        from automl_tl.monitor import Deadline

        feats = ctx.features(cfg.backbone, cfg.options)
        keras.utils.set_random_seed(ctx.seed)
        if self.head_start:
            head, _ = refit_head(cfg, ctx, feats, index, epochs=epochs.get("head"), seed=ctx.seed, budget=budget)
        else:
            head, _ = self.first_head(cfg, ctx, feats, index)
        n_ft = int(epochs.get("fine_tune") or 0)
        if n_ft == 0:  # fine-tuning never beat its head start
            return head, None
        backbone, model, adapter = self.model(cfg, ctx, head)
        items = ctx.data.items
        ds = make_dataset([items[i] for i in index], ctx.y[index], adapter,
                          train_batch_size(ctx.train_batch_for(cfg.backbone), ctx.input_configs[cfg.backbone]),
                          shuffle=True,
                          seed=ctx.seed)
        stop = Deadline(budget)
        model.fit(ds, epochs=n_ft, verbose=0, shuffle=False,
                  class_weight=dict(ctx.class_weight) if ctx.class_weight else None, callbacks=[stop])
        if stop.hit:
            raise RefitStopped("fine-tuning the refit ran out of time")
        return head, backbone
