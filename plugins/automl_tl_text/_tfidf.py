"""The classical text baseline as a featurizer: TF-IDF of word 1-2 grams and character 2-5 grams.

``tfidf`` is registered like a backbone (``classical=True``): its vocabulary and inverse document
frequencies are learned from the dataset's own texts (no labels) by ``fit_weights``, stored as
JSON (no pickle), copied into the saved model's assets, and read back at predict time. The
engine then puts a logistic regression on these features, as on any frozen features, so the
baseline is searched, compared and - when it wins - delivered like any other candidate.

The vocabulary is capped (8 192 word and 8 192 character n-grams, the most frequent). The
features are mostly zeros (about 136 non-zeros a short text): ``sparse=True`` has the embedding
cache keep them as a sparse matrix (1.1 KB a text, where a dense row took 64 KB).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from automl_tl.backbones import BackboneSpec, InputAdapter
from automl_tl.weights import NoWeights

__all__ = ["TFIDF_FILE", "MAX_FEATURES", "fit_tfidf", "featurize", "make_adapter", "tfidf_spec",
           "vectorizers"]

TFIDF_FILE = "tfidf.json"
MAX_FEATURES = 8192  # per analyser


def vectorizers(n_texts: int, state: dict | None = None):
    """The two vectorizers (word, char); with ``state`` (a saved vocabulary and idf) ready to
    transform, else ready to fit."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    settings = {
        "word": dict(ngram_range=(1, 2), min_df=1 if n_texts < 1000 else 2),
        "char": dict(analyzer="char_wb", ngram_range=(2, 5), min_df=2),
    }
    out = {}
    for name, kw in settings.items():
        vocab = None if state is None else {k: int(v) for k, v in state[name]["vocabulary"].items()}
        vec = TfidfVectorizer(sublinear_tf=True, max_features=None if vocab else MAX_FEATURES,
                              vocabulary=vocab, dtype=np.float32, **kw)
        if state is not None:
            vec.idf_ = np.asarray(state[name]["idf"], dtype=np.float64)
        out[name] = vec
    return out


def fit_tfidf(items: Sequence[str], folder: str) -> None:
    """Learn the vocabulary and idf from ``items`` (the dataset's texts) into ``folder``."""
    texts = items if all(isinstance(t, str) for t in items) else [str(t) for t in items]
    state: dict[str, Any] = {}
    for name, vec in vectorizers(len(texts)).items():
        try:
            vocabulary, idf = learn(vec, texts)
        except ValueError:  # no n-gram survives min_df (tiny or odd corpora): keep every one
            vec.set_params(min_df=1)
            vocabulary, idf = learn(vec, texts)
        state[name] = {"vocabulary": vocabulary, "idf": [float(x) for x in idf]}
    state["n_texts"] = len(texts)
    (Path(folder) / TFIDF_FILE).write_text(json.dumps(state, ensure_ascii=False))


def learn(vec, texts: Sequence[str]) -> tuple[dict[str, int], np.ndarray]:
    """``vec.fit(texts)``'s ``(vocabulary_, idf_)`` (scikit-learn's TfidfVectorizer with
    ``max_features`` and an integer ``min_df``), from the n-grams' counts alone (issue 35).
    scikit-learn's fit builds the whole count matrix of the texts first, as Python lists of ints
    (about 36 bytes per n-gram of every text: 700 MB for 100 000 short texts), to prune it to
    the ``max_features`` columns kept; here each distinct n-gram is counted once. The same
    vocabulary (the most frequent n-grams among those in at least ``min_df`` texts, ties broken
    as scikit-learn does: the same sort on the same array), its order and the same float32 idf;
    raises ``ValueError`` where scikit-learn does."""
    from collections import Counter

    analyze = vec.build_analyzer()
    total: Counter = Counter()  # n-gram -> occurrences; in order of first occurrence, as scikit-learn's
    docs: Counter = Counter()  # n-gram -> texts holding it
    for doc in texts:
        counts = Counter(analyze(doc))
        total.update(counts)
        docs.update(counts.keys())
    if not total:
        raise ValueError("empty vocabulary; perhaps the documents only contain stop words")
    n_doc = len(texts)
    high = vec.max_df if isinstance(vec.max_df, int) else vec.max_df * n_doc
    low = vec.min_df if isinstance(vec.min_df, int) else vec.min_df * n_doc
    if high < low:
        raise ValueError("max_df corresponds to < documents than min_df")
    terms = sorted(total)  # scikit-learn sorts the columns by term before limiting them
    dfs = np.fromiter((docs[t] for t in terms), dtype=np.int64, count=len(terms))
    mask = (dfs <= high) & (dfs >= low)
    limit = vec.max_features
    if limit is not None and mask.sum() > limit:
        tfs = np.fromiter((total[t] for t in terms), dtype=np.int64, count=len(terms)).astype(vec.dtype)
        mask_inds = (-tfs[mask]).argsort()[:limit]
        kept = np.zeros(len(dfs), dtype=bool)
        kept[np.where(mask)[0][mask_inds]] = True
        mask = kept
    if not mask.any():
        raise ValueError("After pruning, no terms remain. Try a lower min_df or a higher max_df.")
    new_index = np.cumsum(mask) - 1
    column = {t: int(new_index[i]) for i, t in enumerate(terms) if mask[i]}
    vocabulary = {t: column[t] for t in total if t in column}
    dtype = vec.dtype if vec.dtype in (np.float64, np.float32) else np.float64
    df = dfs[mask].astype(dtype)
    df += float(vec.smooth_idf)
    idf = np.full_like(df, fill_value=n_doc + int(vec.smooth_idf), dtype=dtype)
    idf /= df
    np.log(idf, out=idf)
    idf += 1.0
    return vocabulary, idf


def _state_file(location: str | None) -> Path | None:
    if not location:
        return None
    p = Path(location)
    p = p / TFIDF_FILE if p.is_dir() else p
    return p if p.is_file() else None


def featurize(weights, input_config=None, **options):
    """``fn(texts) -> (B, D)`` dense float32 TF-IDF features."""
    from automl_tl.errors import WeightsUnavailableError

    path = _state_file(getattr(weights, "location", None))
    if path is None:
        raise WeightsUnavailableError(f"tfidf: no {TFIDF_FILE} at {getattr(weights, 'location', None)!r}; "
                                      f"it is learned from the training texts when a search runs")
    state = json.loads(path.read_text(encoding="utf-8"))
    vecs = vectorizers(int(state.get("n_texts", 0)), state)

    def fn(batch) -> np.ndarray:
        texts = [str(t) for t in batch]
        return np.hstack([vecs[name].transform(texts).toarray() for name in ("word", "char")]).astype(np.float32)

    return fn


class TextListAdapter(InputAdapter):
    """Texts pass through unchanged (the modality has cleaned them); ``save_assets`` copies the
    learned vocabulary so the saved model reads it back."""

    def __init__(self, state_file: Path | None = None) -> None:
        self.state_file = state_file

    def __call__(self, items):
        return np.array([str(t) for t in items], dtype=object)

    def config(self) -> dict:
        return {}

    def save_assets(self, folder: str) -> None:
        if self.state_file is not None:
            shutil.copyfile(self.state_file, Path(folder) / TFIDF_FILE)


def make_adapter(input_config=None, weights=None, assets_dir=None):
    return TextListAdapter(_state_file(getattr(weights, "location", None)) or _state_file(assets_dir))


def tfidf_spec() -> BackboneSpec:
    return BackboneSpec(
        name="tfidf", modality="text", build=None, featurize=featurize, make_adapter=make_adapter,
        blocks=lambda model: [], n_blocks=0, weight_sources=(NoWeights(),), n_params=0,
        fine_tunable=False, classical=True, fit_weights=fit_tfidf, sparse=True,
        pretrained_on="nothing (learned from your texts)",
        description="classical baseline: TF-IDF of word 1-2 grams and character 2-5 grams "
                    f"({MAX_FEATURES} + {MAX_FEATURES} most frequent)")
