"""What hand-picked MiniLM configurations reach on Rotten Tomatoes, with no search and no
selection: the ceiling behind the issue-8 goals (0.72 on 200 texts in 2 minutes, 0.81 on 2 000
in 10).

    .venv/bin/python benchmarks/text/bench_rt_by_hand.py --rt-dir ../shared/data/rotten_tomatoes \
        [--train train_200.csv] [--configs 1e-5x3,2e-5x3,5e-6x4] [--seed 0]

Trains on every text of ``--train`` through the engine's own pieces (the run's probe,
``train_final``) and scores the 2 000 test texts: the linear probe on frozen MiniLM (mean pooling),
the TF-IDF baseline (logistic regression on word and character n-grams), and LP-FT (the probe's
head, then the whole of MiniLM fine-tuned) at each ``LRxEPOCHS`` of ``--configs``. Each fine-tuned
model is also averaged with the probe and with the TF-IDF baseline (equal-weight ensembles of two,
class probabilities averaged). Seconds are wall time for training plus predicting the 2 000.
``--wise 0.5,0.7,0.9`` also scores each fine-tuned model's weights interpolated with its start
(WiSE-FT: ``(1 - a) * (pretrained MiniLM + the probe's head) + a * fine-tuned``), alone and with
TF-IDF.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import _common  # noqa: E402,F401  (puts the repository on sys.path, quiet TensorFlow)
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rt-dir", default=str(Path(__file__).resolve().parents[3] / "shared/data/rotten_tomatoes"))
    ap.add_argument("--train", default="train_200.csv", help="training file in --rt-dir")
    ap.add_argument("--configs", default="1e-5x3,2e-5x3,5e-6x4",
                    help="LP-FT configurations, LRxEPOCHS, comma-separated")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache-dir", default=None)
    ap.add_argument("--fine-tune-on", choices=("all", "search"), default="all",
                    help="fine-tune on every text (as a refit does) or on the search's training split only "
                         "(as the search's own trial model is)")
    ap.add_argument("--save-probs", default=None,
                    help="write every model's test class probabilities to this .npz (to study other ensembles)")
    ap.add_argument("--wise", default="", help="WiSE-FT mixing weights a, comma-separated (1 = the fine-tuned model)")
    args = ap.parse_args()

    from automl_tl.estimator import AutoTransfer
    from automl_tl.batching import predict_proba_items
    from automl_tl.heads import refit_head
    from automl_tl.training import TrialConfig, assemble, train_final

    rt = Path(args.rt_dir)
    test = pd.read_csv(rt / "test.csv")
    est = AutoTransfer(backbones=["minilm-l6", "tfidf"], trials=1, seed=args.seed, text_column="text",
                       label_column="label", cache_dir=args.cache_dir)
    ctx = est._prepare(str(rt / args.train)).ctx
    labels = list(ctx.data.classes)
    y_test = np.array([labels.index(str(v)) for v in test["label"]])
    items = list(test["text"].astype(str))
    everything = np.arange(len(ctx.y))

    def accuracy(p):
        return float(np.mean(p.argmax(1) == y_test))

    def probe(name, opts):
        spec, ic, weights = ctx.specs[name], ctx.input_configs[name], ctx.weights[name]
        head, _ = train_final(TrialConfig(backbone=name, strategy="feature_extraction", options=opts), ctx, everything)
        if spec.featurize is not None:  # a classical featurizer: features outside Keras
            return head.predict(spec.featurize(weights, ic, **opts)(items), verbose=0)
        return predict_proba_items(assemble(spec.build(weights, ic, **opts), head),
                                   spec.make_adapter(ic, weights, None), items)

    name, opts = "minilm-l6", {"pooling": "mean"}
    print(f"{args.train}: {len(ctx.y)} training texts, seed {args.seed}")
    print(f"{'configuration':<32} {'test':>7} {'+ probe':>8} {'+ tfidf':>8} {'s':>5}")
    probs = {}
    for key, (backbone, o) in {"linear probe": (name, opts), "TF-IDF + LR": ("tfidf", {})}.items():
        t0 = time.perf_counter()
        probs[key] = probe(backbone, o)
        print(f"{key:<32} {accuracy(probs[key]):>7.4f} {'':>8} {'':>8} {time.perf_counter() - t0:>5.0f}", flush=True)
    spec, ic, weights = ctx.specs[name], ctx.input_configs[name], ctx.weights[name]
    adapter = spec.make_adapter(ic, weights, None)
    for item in args.configs.split(","):
        lr, epochs = float(item.split("x")[0]), int(item.split("x")[1])
        t0 = time.perf_counter()
        cfg = TrialConfig(backbone=name, strategy="fine_tune_all", backbone_lr=lr, ft_epochs=epochs, options=opts)
        on = everything if args.fine_tune_on == "all" else ctx.plan.train
        head, backbone = train_final(cfg, ctx, on, epochs={"fine_tune": epochs})
        tuned = assemble(backbone, head)
        p = predict_proba_items(tuned, adapter, items)
        print(f"{f'LP-FT lr {lr:g}, {epochs} epochs':<32} {accuracy(p):>7.4f} "
              f"{accuracy((p + probs['linear probe']) / 2):>8.4f} {accuracy((p + probs['TF-IDF + LR']) / 2):>8.4f} "
              f"{time.perf_counter() - t0:>5.0f}", flush=True)
        probs[f"LP-FT {item}"] = p
        if args.wise:  # the start the fine-tuning left: pretrained MiniLM and the probe's head, as refit builds it
            head0, _ = refit_head(cfg, ctx, ctx.features(name, opts), on, epochs=None, seed=ctx.seed)
            start = assemble(spec.build(weights, ic, **opts), head0)
            w0, w1 = [np.asarray(v) for v in start.weights], [np.asarray(v) for v in tuned.weights]
            for a in (float(x) for x in args.wise.split(",")):
                start.set_weights([(1 - a) * u + a * v for u, v in zip(w0, w1)])
                pw = predict_proba_items(start, adapter, items)
                print(f"{f'  WiSE-FT a={a:g}':<32} {accuracy(pw):>7.4f} {'':>8} "
                      f"{accuracy((pw + probs['TF-IDF + LR']) / 2):>8.4f}", flush=True)
                probs[f"WiSE {item} {a:g}"] = pw
    if args.save_probs:
        np.savez(args.save_probs, y_test=y_test, **probs)


if __name__ == "__main__":
    main()
