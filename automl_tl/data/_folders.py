"""A folder to labelled data: class sub-folders, split folders, or class names in the file names."""

from __future__ import annotations

import logging
import re
from collections import Counter
from pathlib import Path

from automl_tl.data._columns import LABEL_COLUMN_GUESSES, _plain_name
from automl_tl.data._labelled import LabelledData, _checked, label_str
from automl_tl.data._messages import listed
from automl_tl.data._subfolders import _class_dirs, _split_layout
from automl_tl.data._tables import TABLE_SUFFIXES, _read_table_as
from automl_tl.data._text import _read_text_files
from automl_tl.errors import DataError
from automl_tl.modalities import Skip

_log = logging.getLogger("automl_tl")


#: a file name that says its class before a number: cat.0.jpg, Abyssinian_12.jpg, dog (3).png
_NAMED_LABEL = re.compile(r"^(?P<label>.*?[^\W\d_].*?)[\s._\-]*\(?\d+\)?$")


def _labels_from_names(root: Path, files, modalities, modality, progress) -> LabelledData | None:
    """A flat folder whose file names say their class before a number (Kaggle's dogs-vs-cats
    ``cat.0.jpg``, Oxford pets ``Abyssinian_1.jpg``): labelled by those names, when 80 % of the
    files of one modality do and that makes at least two classes of at least two files each;
    else None (``IMG_0001.jpg`` names no class)."""
    by_mod = Counter(m.name for f in files if (m := modalities.get(modality) if modality
                                               else modalities.for_extension(f.suffix)) is not None)
    if not by_mod:
        return None
    mod = modalities.get(modality or by_mod.most_common(1)[0][0])
    mine = sorted(f for f in files if f.suffix.lower() in mod.extensions)
    found = [(f, m.group("label")) for f in mine if (m := _NAMED_LABEL.match(f.stem))]
    counts = Counter(label for _, label in found)
    if (len(found) < 0.8 * len(mine) or len(counts) < 2 or min(counts.values()) < 2
            or len(counts) > len(found) / 2):
        return None
    _log.info("%s: no class sub-folders; labels read from the file names (%s -> %r): %d classes. Put each "
              "class's files in a sub-folder to label them otherwise", root, found[0][0].name, found[0][1],
              len(counts))
    labelled = {f for f, _ in found}
    skips = [Skip(item=str(f), reason="no class in its name") for f in mine if f not in labelled]
    items = [str(f.resolve()) for f, _ in found]
    labels = [label for _, label in found]
    paths = items
    if mod.inline:
        keep, items = _read_text_files(items, skips)
        labels, paths = [labels[i] for i in keep], [paths[i] for i in keep]
    return _checked(mod, items, labels, None, str(root), skips, progress, paths=paths)


#: files beside a dataset's folders that are about it, not in it
_NOT_INPUTS = {"README", "LICENSE", "LICENCE", "COPYING", "CITATION", "NOTICE", "AUTHORS"}


def _from_folder(root: Path, *, modalities, modality, progress) -> LabelledData:
    top = root  # the data folder: a class folder that is a link to a folder outside it is left out
    root, subdirs = _inner_root(root, top, modalities, modality)
    if not subdirs:
        return _flat_folder(root, modalities, modality, progress)
    layout = _split_layout(root, subdirs)
    sources = _class_folders(root, subdirs, layout, top)
    candidates, by_modality = _candidate_files(sources, modalities, modality)
    if not candidates:
        raise DataError(f"{root}: the class sub-folders ({listed([d.name for d in subdirs], 5)}) hold no "
                        f"files.")
    if not by_modality:
        raise DataError(f"{root}: none of the {len(candidates)} files is an image, audio clip or other "
                        f"input that an installed plugin reads (known suffixes: "
                        f"{', '.join(sorted({e for n in modalities.names() for e in modalities.get(n).extensions}))}).")
    skips: list[Skip] = []
    items, labels, parts = [], [], []
    mod_name = modality or by_modality.most_common(1)[0][0]
    for f, label, m, part in candidates:
        if m != mod_name:
            skips.append(Skip(item=str(f), reason=f"unsupported file type: {f.suffix or 'no suffix'}"))
            continue
        items.append(str(f.resolve()))
        labels.append(label)
        parts.append(part)
    paths = items
    if modalities.get(mod_name).inline:  # e.g. a folder of .txt files: the input is the content
        keep, items = _read_text_files(items, skips)
        labels, parts, paths = [labels[i] for i in keep], [parts[i] for i in keep], [paths[i] for i in keep]
    used = set(labels)
    for d, _ in sources:
        if d.name not in used:
            skips.append(Skip(item=str(d), reason="empty class folder: no usable files"))
    split = parts if layout is not None and "val" in layout else None
    # the folder level below a class folder is read relative to the folder that holds the classes
    return _checked(modalities.get(mod_name), items, labels, None, str(root), skips, progress, split,
                    paths=paths, root=str(root.resolve()))


def _inner_root(root: Path, top: Path, modalities, modality) -> tuple[Path, list[Path]]:
    """``(folder, its class sub-folders)``: ``root``, or the folder inside it that holds the
    classes when ``root`` holds nothing but that folder."""
    subdirs = _class_dirs(root, say=True, within=top)
    known = {e.lower() for n in ([modality] if modality else modalities.names()) for e in modalities.get(n).extensions}

    def inputs_beside(folder: Path) -> bool:  # a README.txt or LICENSE beside the data is not an input
        return any(f.is_file() and f.suffix.lower() in known and f.stem.upper() not in _NOT_INPUTS
                   for f in folder.iterdir())

    # one folder inside, as an archive often unpacks (flowers/flowers/daisy/...): the classes are
    # its sub-folders (was "only one class")
    while len(subdirs) == 1 and len(inner := _class_dirs(subdirs[0], within=top)) >= 2 and not inputs_beside(root):
        _log.info("%s: one folder inside, %s/: its %d sub-folders are read as the classes (or splits)", root,
                  subdirs[0].name, len(inner))
        root, subdirs = subdirs[0], _class_dirs(subdirs[0], say=True, within=top)
    return root, subdirs


def _flat_folder(root: Path, modalities, modality, progress) -> LabelledData:
    """A folder without class sub-folders: labelled by its files' names (:func:`_labels_from_names`),
    else an error saying how to lay it out."""
    files = [f for f in root.iterdir() if f.is_file() and not f.name.startswith(".")]
    if not files:
        raise DataError(f"{root}: the folder is empty. Put one sub-folder per class inside, "
                        f"each holding that class's files.")
    named = _labels_from_names(root, files, modalities, modality, progress)
    if named is not None:
        return named
    raise DataError(f"{root}: found {len(files)} files but no class sub-folders. Put each "
                    f"class's files in a sub-folder named after the class (e.g. {root}/cat/1.jpg).")


def _class_folders(root: Path, subdirs: list[Path], layout: dict[str, Path] | None,
                   top: Path) -> list[tuple[Path, str | None]]:
    """``[(class folder, part), ...]``: the sub-folders as classes (part None), or, in split
    folders (``layout``), the classes of ``train/`` and ``val/``. A table beside class folders
    whose labels are not theirs is an error (:func:`_labelling_tables`)."""
    if layout is None:
        tables = _labelling_tables(root, {d.name for d in subdirs})
        if tables:
            raise DataError(f"{root}: it holds {listed([t.name for t in tables], 3)} with a column of labels "
                            f"that are not its sub-folders' names ({listed([d.name for d in subdirs], 3)}), "
                            f"which a folder would be read as: the classes. Give the table instead "
                            f"(automl-tl fit {tables[0]}), or move it out of the folder.")
        return [(d, None) for d in subdirs]
    # data already split: train/ (and val/ as the fixed validation split) are searched; test/
    # is left for the user's own final evaluation, never seen by the search
    sources = [(d, part) for part in ("train", "val") if part in layout
               for d in _class_dirs(layout[part], say=True, within=top)]
    if "test" in layout:
        _log.warning("%s: %s/ is left out of the search (it stays yours for a final test: "
                     "automl-tl predict RUN %s)", root, layout["test"].name, layout["test"])
    _log.info("%s: split folders %s: training on %s", root, ", ".join(sorted(d.name for d in layout.values())),
              " + ".join(layout[p].name for p in ("train", "val") if p in layout))
    return sources


def _candidate_files(sources, modalities, modality) -> tuple[list[tuple], Counter]:
    """``([(file, class, modality or None, part), ...], files by modality)``: every file in the
    class folders, with the modality that reads it (None: none does)."""
    by_modality = Counter()
    candidates = []
    for d, part in sources:
        # rglob follows the class folder itself (a link into the data folder works), not the links
        # to folders below it: a link there to /etc is not walked
        for f in sorted(d.rglob("*")):
            if not f.is_file() or f.name.startswith("."):
                continue
            m = modalities.get(modality) if modality else modalities.for_extension(f.suffix)
            if m is None or (modality and f.suffix.lower() not in m.extensions and m.extensions):
                candidates.append((f, d.name, None, part))
            else:
                by_modality[m.name] += 1
                candidates.append((f, d.name, m.name, part))
    return candidates, by_modality


def _labelling_tables(root: Path, class_names: set[str]) -> list[Path]:
    """The tables at the top of a class-folder dataset whose labels column (by its name) names
    none of the sub-folders: Kaggle's ``train.csv`` (``image_id,label``) beside ``train_images/``
    and ``test_images/`` made a classifier of train vs test images. A table whose labels are
    the folders' names (a ``metadata.csv`` beside the class folders) agrees with them."""
    found = []
    for f in sorted(root.iterdir()):
        if f.suffix.lower() not in TABLE_SUFFIXES or not f.is_file() or f.stat().st_size > 100 * 2**20:
            continue
        try:
            frame = _read_table_as(f)
        except DataError:
            continue
        cols = {_plain_name(str(c)): c for c in frame.columns}
        col = next((cols[g] for g in LABEL_COLUMN_GUESSES if g in cols), None)
        if col is not None and not {label_str(v) for v in frame[col].head(10_000).dropna()} & class_names:
            found.append(f)
    # the one to suggest first: a training table (train.csv before sample_submission.csv)
    return sorted(found, key=lambda f: ("train" not in f.name.lower(), -f.stat().st_size, f.name))
