"""Feature extraction: the backbone stays frozen; a head learns on its cached features."""

from __future__ import annotations

import time

import numpy as np

from automl_tl.strategies import FEATURE_EXTRACTION, TransferStrategy


class FeatureExtraction(TransferStrategy):
    """Scored on the run's folds (cross-validation on small data): out-of-fold predictions for
    every evaluated item. The linear head is the probe itself (computed once per backbone and
    option); a hidden-layer head trains on each fold."""

    name = FEATURE_EXTRACTION
    description = "frozen backbone; a head (linear probe or a hidden layer) on cached features"
    fine_tunes = False
    rank = 0
    saves = "the frozen backbone and the head"
    probe_equivalent = True  # the linear head is the engine's probe: run() returns its score

    def run(self, cfg, ctx, *, trial=None, history: list):
        from automl_tl.heads import make_head, probs as head_probs
        from automl_tl.metrics import metric_function
        from automl_tl.training import TrialResult

        t0 = time.perf_counter()
        feats = ctx.features(cfg.backbone, cfg.options)
        plan, metric = ctx.plan, metric_function(ctx.metric)
        if cfg.linear_head:
            head, _ = make_head(cfg, ctx, feats, plan.train, seed=ctx.seed)
            pr = ctx.probe(cfg.backbone, cfg.options)
            return TrialResult(score=pr.score, se=pr.se, n_eval=len(pr.eval_index), evaluation=plan.kind,
                               history=history, seconds=time.perf_counter() - t0, head=head,
                               val_probs=pr.oof_probs, val_index=pr.eval_index, C=pr.C)
        # Cross-validated, a hidden-layer head trains exactly head_epochs epochs: early-stopping
        # on the fold it is scored on would pick each fold's luckiest epoch (measured: +6 points
        # of optimism at 200 texts). With one large hold-out split, early stopping is cheap and fair.
        cv = plan.kind == "cv"
        head, probs, index, epochs, stopped = None, [], [], [], ""
        for k, (tr, va) in enumerate(plan.folds):
            if k and ctx.budget.past():
                stopped = f"the time budget ran out after {k} of {plan.k} folds"
                break
            fold_head, info = make_head(cfg, ctx, feats, tr, None if cv else va, history=history if k == 0 else [],
                                        epochs=cfg.head_epochs, seed=ctx.seed + k, budget=ctx.budget)
            head = head or fold_head  # fold 0 trains on the hold-out split's training items
            probs.append(head_probs(fold_head, feats[va]))
            index.append(va)
            epochs.append(info["head_epochs"])
        index, probs = np.concatenate(index), np.concatenate(probs)
        pred = probs.argmax(1)
        return TrialResult(score=float(metric(ctx.y[index], pred)), se=ctx.se(ctx.y[index], pred, index),
                           n_eval=len(index), evaluation=plan.kind if not stopped else "holdout",
                           history=history, seconds=time.perf_counter() - t0, head=head, val_probs=probs,
                           val_index=index, epochs={"head": max(1, int(round(float(np.mean(epochs)))))},
                           stopped_early=stopped)

    def refit(self, cfg, ctx, index, *, epochs, budget):
        from automl_tl.heads import refit_head

        feats = ctx.features(cfg.backbone, cfg.options)
        head, _ = refit_head(cfg, ctx, feats, index, epochs=epochs.get("head"), seed=ctx.seed, budget=budget)
        return head, None
