"""Which pooled features of a text backbone a linear probe does best with, and what length-aware
batching saves, on the fixed Rotten Tomatoes split.

    .venv/bin/python benchmarks/text/bench_poolings.py --rt-dir ../shared/data/rotten_tomatoes

For each ``pooling`` option of the backbone (``mean``, ``mean_last3``, ``cls``) the texts of
``train.csv`` and ``test.csv`` are embedded through the plugin's own Keras model, then logistic
regression (standardised features, ``C`` by 5-fold cross-validation on the training texts,
scikit-learn) is trained on the first 200 and on all 2 000 training texts and scored on the 2 000
test texts. Beside it, in the same run: the seconds to embed the test texts with every batch padded
to the adapter's ``sequence_length`` in item order (how the engine batched before) against padded
to each batch's longest text in length order (how it batches now).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import _common  # noqa: F401,E402 - sys.path and quiet TensorFlow
import numpy as np  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rt-dir", default=str(Path(__file__).resolve().parents[2].parent / "shared" / "data" / "rotten_tomatoes"))
    ap.add_argument("--backbone", default="minilm-l6")
    args = ap.parse_args()

    import pandas as pd
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from automl_tl.batching import map_batches
    from automl_tl.plugin_manager import get_plugin_manager

    rt = Path(args.rt_dir)
    train, test = pd.read_csv(rt / "train.csv"), pd.read_csv(rt / "test.csv")
    spec = get_plugin_manager().backbones.get(args.backbone)
    weights = spec.resolve_weights()
    modality = get_plugin_manager().modalities.get("text")
    input_config = modality.analyse(train.text.tolist(), {}, spec, weights)["input_config"]
    adapter = spec.make_adapter(input_config, weights, None)
    print(f"backbone {args.backbone}, sequence_length {adapter.sequence_length}")

    rows = []
    for pooling in spec.options["pooling"]:
        model = spec.build(weights, input_config, pooling=pooling)
        xtr = map_batches(model.predict_on_batch, train.text.tolist(), adapter, 64)
        xte = map_batches(model.predict_on_batch, test.text.tolist(), adapter, 64)
        row = {"pooling": pooling, "dim": int(xtr.shape[1])}
        for n in (200, 2000):
            clf = make_pipeline(StandardScaler(), LogisticRegressionCV(Cs=np.logspace(-4, 2, 13), cv=5, max_iter=3000))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                clf.fit(xtr[:n], train.label[:n].astype(str))
            row[f"test@{n}"] = float(np.mean(clf.predict(xte) == test.label.astype(str).to_numpy()))
        rows.append(row)
        print(row, flush=True)

    # padding: every batch to sequence_length in item order vs to its longest text in length order
    model = spec.build(weights, input_config, pooling="mean")
    texts = test.text.tolist()
    model.predict_on_batch(adapter(texts[:64]))                      # trace once before timing

    def fixed(batch):
        L = adapter.sequence_length
        return {k: np.pad(v, ((0, 0), (0, L - v.shape[1]))) for k, v in batch.items()}

    t = time.perf_counter()
    old = np.concatenate([model.predict_on_batch(fixed(adapter(texts[s:s + 64]))) for s in range(0, len(texts), 64)])
    t_fixed = time.perf_counter() - t
    t = time.perf_counter()
    new = map_batches(model.predict_on_batch, texts, adapter, 64)
    t_dynamic = time.perf_counter() - t
    print()
    print("| pooling | dims | LR test acc, 200 texts | LR test acc, 2 000 texts |")
    print("|---|---|---|---|")
    for r in rows:
        print(f"| {r['pooling']} | {r['dim']} | {r['test@200']:.4f} | {r['test@2000']:.4f} |")
    print()
    print(f"embedding {len(texts)} test texts: padded to {adapter.sequence_length} in item order "
          f"{t_fixed:.1f} s ({len(texts) / t_fixed:.0f}/s); padded per batch in length order "
          f"{t_dynamic:.1f} s ({len(texts) / t_dynamic:.0f}/s): {t_fixed / t_dynamic:.2f}x; "
          f"largest difference in the features {np.abs(old - new).max():.1e}")


if __name__ == "__main__":
    main()
