"""Labelled data: usable inputs with their labels, what was left out and why, and the checks any search needs."""

from __future__ import annotations

import hashlib
import logging
import os
from collections import Counter
from dataclasses import dataclass
from typing import Any

from automl_tl.data._messages import listed
from automl_tl.errors import DataError
from automl_tl.evaluation import _text_key
from automl_tl.modalities import Skip

_log = logging.getLogger("automl_tl")


@dataclass(frozen=True, kw_only=True)
class LabelledData:
    """Usable inputs with their labels, plus everything that was left out and why."""

    modality: str
    items: tuple[Any, ...]
    labels: tuple[str, ...]
    source: str
    skips: tuple[Skip, ...] = ()
    groups: tuple[str, ...] | None = None
    split: tuple[str, ...] | None = None  # "train" / "val" per item, when the user fixed the split
    #: a table's (inputs, labels) column names: ``predict`` reads new tables by them
    columns: tuple[str, str] | None = None
    #: the sources the items seem to come from (speakers, sessions), found when ``groups`` was not
    #: given (:mod:`automl_tl.sources`); the run validates by them unless told not to
    found: Any = None

    @property
    def classes(self) -> list[str]:
        return sorted(set(self.labels))

    def class_counts(self) -> dict[str, int]:
        counts = Counter(self.labels)
        return {c: counts[c] for c in self.classes}

    def fingerprint(self) -> str:
        """Identifies the exact inputs: texts by content, files by path, size and mtime
        (computed once: every trial asks, and 60 000 files take a noticeable moment to stat)."""
        known = self.__dict__.get("_fingerprint")
        if known is None:
            known = self._fingerprint_now()
            object.__setattr__(self, "_fingerprint", known)
        return known

    def subset(self, index) -> "LabelledData":
        """The items at positions ``index`` (a sample), with their labels, groups and split."""
        def pick(seq):
            return None if seq is None else tuple(seq[i] for i in index)

        return LabelledData(modality=self.modality, items=pick(self.items), labels=pick(self.labels),
                            source=self.source, groups=pick(self.groups), split=pick(self.split),
                            columns=self.columns, found=None if self.found is None else self.found.subset(index))

    def _fingerprint_now(self) -> str:
        h = hashlib.sha256()
        for item in self.items:
            h.update(str(item).encode("utf-8", "surrogateescape"))
            if isinstance(item, str) and os.path.isabs(item) and os.path.exists(item):
                st = os.stat(item)
                h.update(f":{st.st_size}:{int(st.st_mtime)}".encode())
            h.update(b"\0")
        return h.hexdigest()[:20]

    def labels_fingerprint(self) -> str:
        return hashlib.sha256("\0".join(self.labels).encode("utf-8", "surrogateescape")).hexdigest()[:20]

    def skip_summary(self) -> dict:
        by_reason = Counter(_reason_kind(s.reason) for s in self.skips)
        return {"count": len(self.skips), "by_reason": dict(by_reason),
                "examples": [s.to_dict() for s in self.skips[:20]]}


def _reason_kind(reason: str) -> str:
    return reason.split(":", 1)[0].strip()


def label_str(value) -> str:
    """A label as the engine stores it: ``1.0`` becomes ``"1"``, whitespace is stripped."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _checked(mod, items, labels, groups, where, skips, progress, split=None, columns=None, *,
             paths=None, side=None, root=None) -> LabelledData:
    """The usable items (the modality's check), and the sources they seem to come from when no
    groups were given: from ``side`` (the table's other columns), else the ``paths`` of the files
    the items were read from (a folder level below ``root``'s classes, a part of the names)."""
    from automl_tl.sources import detect

    result = mod.check(items, progress=progress)
    skips = list(skips) + list(result.skips)

    def kept(values):
        return tuple(values[i] for i in result.keep) if values is not None else None

    found = None
    if groups is None and split is None:
        found = detect(kept(paths) or tuple(result.items), kept(labels), root=root,
                       columns={c: kept(v) for c, v in (side or {}).items()}, modality=mod.name)
    data = LabelledData(modality=mod.name, items=tuple(result.items), labels=kept(labels),
                        source=where, skips=tuple(skips), groups=kept(groups), split=kept(split),
                        columns=columns, found=found)
    validate(data)
    return data


def validate(data: LabelledData) -> None:
    """Errors for data no search can use; say what to do. Labels that differ only in case or
    spacing (``Positive``, ``positive``) are warned about: two classes, or one written two ways?"""
    where = data.source
    if not data.items:
        reasons = data.skip_summary()["by_reason"]
        detail = f" ({len(data.skips)} inputs skipped: {reasons})" if data.skips else ""
        if data.skips and set(reasons) == {"file not found"}:
            raise DataError(f"{where}: none of the {len(data.skips)} files it names exists (the first was "
                            f"looked for as {data.skips[0].item}). Relative paths are read from the table's "
                            f"folder (or the current folder); file names alone are looked for under the "
                            f"table's folder and the one above it. Put the files there, or fix the paths (or, if the "
                            f"column holds texts to classify, name it with --text-column).")
        raise DataError(f"{where}: no usable inputs{detail}.")
    counts = data.class_counts()
    if len(counts) < 2:
        only = next(iter(counts))
        raise DataError(f"{where}: only one class ({only!r}, {counts[only]} inputs). Classification "
                        f"needs at least two classes: add a folder or label for another class.")
    tiny = [c for c, n in counts.items() if n < 2]
    if tiny:
        named = listed([repr(c) for c in tiny], 5)
        hint = ""
        if len(tiny) > len(counts) / 2:
            col = f" {data.columns[1]!r}" if data.columns else ""
            hint = (f" {len(tiny)} of the {len(counts)} classes have one example: is the column{col} "
                    f"the labels? --label-column names another.")
        raise DataError(f"{where}: class{'es' if len(tiny) > 1 else ''} {named} "
                        f"ha{'ve' if len(tiny) > 1 else 's'} a single example; each class needs at least "
                        f"2 (one to train, one to validate). Add examples or remove that class.{hint}")
    spellings: dict[str, list[str]] = {}
    for c in counts:
        spellings.setdefault(_text_key(c), []).append(c)
    twins = [" / ".join(repr(c) for c in group) for group in spellings.values() if len(group) > 1]
    if twins:
        _log.warning("%s: labels %s differ only in case or spacing and are kept as different classes; "
                     "write each class one way if they are one", where, listed(twins, 3))
