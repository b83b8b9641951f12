"""The sources a dataset's items come from (speakers, patients, sessions, cameras, authors), found
when the user did not name them.

A model is used on new sources. When validation folds mix one source's items on both sides, every
score is optimistic, and the most optimistic model is the one that memorises the sources (MFCC
statistics learn a voice; pixels learn a session's lighting). The run's folds are grouped by the
sources found here (:func:`automl_tl.data.evaluation_plan`), so the score that chooses the model
is a score on new sources.

Detectors, in the order they are trusted (the first that finds a grouping wins):

* :func:`from_columns`: a table column named like a source (``speaker``, ``subject_id``,
  ``patient``, ``author``, ``session``, ``site``, ``device``, ``fold`` ...), or an id column whose
  values start with a recurring prefix (``spk03_utt17``);
* :func:`from_folder_level`: a folder level between the class folders and the files
  (``yes/speaker1/001.wav``);
* :func:`from_file_names`: a part of the file names that recurs across classes with few values
  (``7_jackson_32.wav``'s ``jackson``; Speech Commands' ``0a7c2a8d_nohash_0.wav``'s hash);
* :func:`from_features`, the last resort: tight clusters of near-duplicates in a frozen feature
  space (bursts of one scene, augmented copies of one photo).

A leaf module: numpy (and scipy for the clusters) only; no Keras.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

__all__ = ["FoundGroups", "from_columns", "from_folder_level", "from_file_names", "from_features",
           "detect", "confounded_classes", "unit_of", "SOURCE_WORDS"]

#: a column whose name holds one of these words names a source; the value is the unit's plural
SOURCE_WORDS = {
    "speaker": "speakers", "spk": "speakers", "voice": "voices", "talker": "speakers", "singer": "singers",
    "subject": "subjects", "subj": "subjects", "patient": "patients", "participant": "participants",
    "person": "people", "user": "users", "author": "authors", "writer": "writers", "actor": "actors",
    "session": "sessions", "site": "sites", "hospital": "hospitals", "clinic": "clinics", "center": "centres",
    "centre": "centres", "device": "devices", "camera": "cameras", "microphone": "microphones", "mic": "microphones",
    "scanner": "scanners", "recording": "recordings", "source": "sources", "video": "videos",
    "individual": "individuals", "animal": "animals", "donor": "donors", "volunteer": "volunteers",
    "channel": "channels", "station": "stations",
    # a dataset's own folds (ESC-50, UrbanSound8K): its authors kept related clips in one
    "fold": "folds", "kfold": "folds", "cv": "folds",
    "group": "groups", "household": "households", "plot": "plots", "slide": "slides", "specimen": "specimens",
}
#: an id column (``id``, ``utterance_id``, ``file``) may carry the source as a prefix (``spk03_utt17``)
_ID_WORDS = {"id", "uid", "uuid", "key", "name", "filename", "file", "utterance", "utt", "sample", "clip"}
#: how many values a grouping may show in one line
SHOWN = 3
#: a grouping guessed from names whose largest group holds more than this share of the items is
#: not taken (two speakers of equal share are; a letter that is "A" on most files is not)
MAX_SHARE = 0.6
#: what the sources found in file names or folders are most likely, by modality
UNIT_BY_MODALITY = {"audio": "speakers"}


@dataclass(frozen=True, kw_only=True)
class FoundGroups:
    """A grouping of the items and how it was found."""

    groups: tuple[str, ...]  # one per item
    detector: str  # "given" | "column" | "folder" | "file names" | "clusters"
    how: str  # "column 'speaker'", "the file names' first part", ...
    unit: str = "sources"  # "speakers", "sessions", ...

    @property
    def n(self) -> int:
        return len(set(self.groups))

    def names(self) -> list[str]:
        """The group names, most items first."""
        return [g for g, _ in Counter(self.groups).most_common()]

    def describe(self) -> str:
        names = self.names()
        shown = ", ".join(names[:SHOWN]) + (f", ... ({len(names) - SHOWN} more)" if len(names) > SHOWN else "")
        verb = "given by" if self.detector == "given" else "from"
        return f"{self.n} {self.unit} {verb} {self.how} ({shown})"

    def subset(self, index) -> "FoundGroups":
        from dataclasses import replace

        return replace(self, groups=tuple(self.groups[i] for i in index))

    def to_dict(self) -> dict:
        return {"detector": self.detector, "how": self.how, "unit": self.unit, "n_groups": self.n,
                "names": self.names()[:20], "description": self.describe()}


def _words(name: str) -> list[str]:
    """A column name's words: ``speakerId`` / ``speaker_id`` / ``Speaker ID`` -> speaker, id."""
    name = re.sub(r"([a-z])([A-Z])", r"\1 \2", str(name))
    return [w for w in re.split(r"[^a-z0-9]+", name.lower()) if w]


def unit_of(column: str) -> str | None:
    """The unit a name says its values are (``speaker_id``: speakers; a folder ``session3``: sessions)."""
    for w in _words(column):
        w = w.rstrip("0123456789") or w
        if w in SOURCE_WORDS:
            return SOURCE_WORDS[w]
        if w.endswith("s") and w[:-1] in SOURCE_WORDS:  # "speakers", "sessions"
            return SOURCE_WORDS[w[:-1]]
    return None


def _plausible(values: Sequence[str], labels: Sequence[str], *, recur: bool) -> bool:
    """A grouping worth validating by: at least two groups, two items per group on average (a
    column unique to each row is an item id, not a source) and not the labels themselves; with
    ``recur``, most groups hold items of more than one class (a guess from names must show the
    mark of a source: a speaker says many digits)."""
    n = len(values)
    counts = Counter(values)
    if len(counts) < 2 or len(counts) > n / 2:
        return False
    by_group: dict[str, set] = defaultdict(set)
    for g, y in zip(values, labels):
        by_group[g].add(y)
    if len(set(labels)) > 1 and all(len(ys) == 1 for ys in by_group.values()):
        # every group within one class: the labels or a finer cut of them (a product code), unless
        # named as a source (then it is the confounded case: said, not guessed)
        if recur:
            return False
    if recur:
        # a guess also needs groups of like size: ESC-50's take letter (1-100032-A-0.wav: A for
        # most clips, B, C for a few) recurs across classes and is no source to hold out
        if counts.most_common(1)[0][1] > MAX_SHARE * n:
            return False
        multi = sum(len(ys) > 1 for ys in by_group.values())
        return multi >= max(2, 0.5 * len(by_group))
    return True


def from_columns(columns: Mapping[str, Sequence], labels: Sequence[str]) -> FoundGroups | None:
    """A column named like a source, or an id column whose values start with a recurring prefix.
    ``columns``: the table's other columns (not the inputs, labels or split), one value per item."""
    for name, values in columns.items():
        unit = unit_of(name)
        if unit is None:
            continue
        vals = tuple("" if v is None else str(v) for v in values)
        if _plausible(vals, labels, recur=False):
            return FoundGroups(groups=vals, detector="column", how=f"column {name!r}", unit=unit)
    for name, values in columns.items():
        if not set(_words(name)) & _ID_WORDS:
            continue
        found = from_file_names([str(v) for v in values], labels, what=f"column {name!r}")
        if found is not None:
            return found
    return None


def from_folder_level(items: Sequence[str], labels: Sequence[str], root: str | Path, *,
                      unit: str = "sources") -> FoundGroups | None:
    """The folder level right under each class folder (``<class>/<speaker>/<file>``), when every
    file sits at such a level."""
    values = []
    for item, label in zip(items, labels):
        try:
            parts = Path(item).relative_to(root).parts
        except ValueError:
            return None
        if label not in parts[:-1]:
            return None
        below = parts[parts.index(label) + 1:-1]
        if not below:
            return None
        values.append(below[0])
    if not values or not _plausible(values, labels, recur=False):
        return None
    return FoundGroups(groups=tuple(values), detector="folder", how="the folder level below the class folders",
                       unit=unit_of(Counter(values).most_common(1)[0][0]) or unit)


_SPLIT = re.compile(r"[_\s]+")


def _tokens(name: str) -> list[str]:
    """A file stem's parts: split at underscores (or spaces); at hyphens when it has neither
    (``en-us-f2_150_50`` keeps its voice whole)."""
    parts = [p for p in _SPLIT.split(name) if p]
    return parts if len(parts) > 1 else [p for p in name.split("-") if p]


def from_file_names(names: Sequence[str], labels: Sequence[str], *, what: str = "the file names",
                    unit: str = "sources") -> FoundGroups | None:
    """A part of the names, at one position, that holds letters (counters, speeds and sizes are
    numbers), is not the label, takes few values, and recurs across classes."""
    stems = [Path(str(n)).stem if what == "the file names" else str(n) for n in names]
    toks = [_tokens(s) for s in stems]
    if not toks:
        return None
    width = Counter(len(t) for t in toks).most_common(1)[0][0]
    if width < 2 or sum(len(t) == width for t in toks) < 0.9 * len(toks):
        return None
    lab = [str(y).casefold() for y in labels]
    best = None
    for pos in range(width):
        vals = [t[pos] if len(t) == width else "" for t in toks]
        lettered = sum(bool(re.search(r"[A-Za-z]", v)) for v in set(vals))
        if lettered < 0.5 * len(set(vals)):
            continue
        if sum(v.casefold() == y for v, y in zip(vals, lab)) > 0.5 * len(vals):
            continue  # the label itself (Abyssinian_1.jpg)
        if not _plausible(vals, labels, recur=True):
            continue
        n = len(set(vals))
        if best is None or n < best[0]:
            best = (n, pos, vals)
    if best is None:
        return None
    ordinal = ("first", "second", "third", "fourth", "fifth")
    nth = ordinal[best[1]] if best[1] < len(ordinal) else f"{best[1] + 1}th"
    return FoundGroups(groups=tuple(best[2]), detector="file names" if what == "the file names" else "column",
                       how=f"the {nth} part of {what}", unit=unit)


#: near-duplicate clusters are looked for up to this many items (an n x n distance matrix)
CLUSTER_MAX_ITEMS = 5000


def from_features(x: np.ndarray, labels: Sequence[str], *, factor: float = 0.25, min_share: float = 0.1,
                  max_items: int = CLUSTER_MAX_ITEMS) -> FoundGroups | None:
    """Tight clusters of near-duplicates in a frozen feature space: two items are one source when
    their distance is under ``factor`` times the median distance from an item to the nearest item
    of another class (two photos of different classes are never that close; two crops of one
    photo, or frames of one burst, are). Found when items in clusters of two or more make at least
    ``min_share`` of the data; every other item is a group of its own. Skipped above ``max_items``
    (an n x n distance matrix)."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    x = np.asarray(x, dtype=np.float32)
    n = len(x)
    y = np.asarray([str(v) for v in labels])
    if n < 10 or n > max_items or len(set(y)) < 2:
        return None
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    d = np.sqrt(np.maximum(2.0 - 2.0 * (x @ x.T), 0.0))
    np.fill_diagonal(d, np.inf)
    other = np.where(y[:, None] != y[None, :], d, np.inf).min(axis=1)
    scale = float(np.median(other[np.isfinite(other)]))
    if not np.isfinite(scale) or scale <= 0:
        return None
    close = d < factor * scale
    n_comp, comp = connected_components(csr_matrix(close), directed=False)
    sizes = np.bincount(comp)
    in_clusters = int(np.sum(sizes[comp] >= 2))
    if in_clusters < min_share * n or n_comp > n - 2:
        return None
    return FoundGroups(groups=tuple(f"cluster-{c}" for c in comp), detector="clusters",
                       how=f"near-duplicates in the frozen features ({in_clusters} items in "
                           f"{int(np.sum(sizes >= 2))} tight clusters)", unit="near-duplicate clusters")


def detect(items: Sequence, labels: Sequence[str], *, root: str | None = None,
           columns: Mapping[str, Sequence] | None = None, modality: str | None = None) -> FoundGroups | None:
    """The first grouping the detectors find (columns, folder level, file names); the clusters
    are tried later, on the probe's features (:func:`from_features`)."""
    if columns:
        found = from_columns(columns, labels)
        if found is not None:
            return found
    files = [str(i) for i in items if isinstance(i, str) and ("/" in i or "\\" in i)]
    if len(files) != len(items) or not files:
        return None
    unit = UNIT_BY_MODALITY.get(modality or "", "sources")
    if root is not None:
        found = from_folder_level(files, labels, root, unit=unit)
        if found is not None:
            return found
    return from_file_names(files, labels, unit=unit)


def confounded_classes(groups: Sequence[str], labels: Sequence[str]) -> list[str]:
    """The classes all of whose items come from one group: such a class is seen from one source
    only, so no fold can show how it is recognised from a new one (the fold that holds that source
    out has none of the class to learn from)."""
    by_class: dict[str, set] = defaultdict(set)
    for g, y in zip(groups, labels):
        by_class[y].add(g)
    return sorted(c for c, gs in by_class.items() if len(gs) == 1)
