"""The classical text baseline as a featurizer: TF-IDF of word 1-2 grams and character 2-5 grams.

``tfidf`` is registered like a backbone (``classical=True``): its vocabulary and inverse document
frequencies are learned from the dataset's own texts (no labels) by ``fit_weights``, stored as
JSON (no pickle), copied into the saved model's assets, and read back at predict time. The
engine then puts a logistic regression on these features, as on any frozen features, so the
baseline is searched, compared and - when it wins - delivered like any other candidate.

The vocabulary is capped (8 192 word and 8 192 character n-grams, the most frequent) because the
engine caches features as dense float32 arrays: 64 KB per text at most.
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
    texts = [str(t) for t in items]
    state: dict[str, Any] = {}
    for name, vec in vectorizers(len(texts)).items():
        try:
            vec.fit(texts)
        except ValueError:  # no n-gram survives min_df (tiny or odd corpora): keep every one
            vec.set_params(min_df=1)
            vec.fit(texts)
        state[name] = {"vocabulary": {k: int(v) for k, v in vec.vocabulary_.items()},
                       "idf": [float(x) for x in vec.idf_]}
    state["n_texts"] = len(texts)
    (Path(folder) / TFIDF_FILE).write_text(json.dumps(state, ensure_ascii=False))


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
        fine_tunable=False, classical=True, fit_weights=fit_tfidf,
        pretrained_on="nothing (learned from your texts)",
        description="classical baseline: TF-IDF of word 1-2 grams and character 2-5 grams "
                    f"({MAX_FEATURES} + {MAX_FEATURES} most frequent)")
