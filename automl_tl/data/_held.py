"""Inputs held in memory or inside a table (image and audio bytes, arrays, PIL images) written out as files."""

from __future__ import annotations

import hashlib
import itertools
import logging
from pathlib import Path
from typing import Iterable

import numpy as np

from automl_tl.data._cells import _missing
from automl_tl.errors import DataError

_log = logging.getLogger("automl_tl")


#: the first bytes of a file -> its suffix, for a file held inside a table without a name
_MAGIC = ((b"\x89PNG", ".png"), (b"\xff\xd8", ".jpg"), (b"GIF8", ".gif"), (b"BM", ".bmp"), (b"fLaC", ".flac"),
          (b"OggS", ".ogg"), (b"ID3", ".mp3"), (b"\xff\xfb", ".mp3"), (b"II*\x00", ".tif"), (b"MM\x00*", ".tif"))


def _embedded_suffix(data: bytes, name: str | None) -> str:
    suffix = Path(name or "").suffix.lower()
    if suffix:
        return suffix
    if data[:4] == b"RIFF":
        return {b"WAVE": ".wav", b"WEBP": ".webp"}.get(data[8:12], "")
    return next((s for magic, s in _MAGIC if data.startswith(magic)), "")


def _image_png(value) -> bytes | None:
    """An image held in memory (a PIL image; an array H x W, H x W x 1/3/4 or channels first, of
    0-255 or of 0-1 floats, as ``keras.datasets`` and torchvision give them) as PNG bytes; None
    for anything else."""
    import io

    from PIL import Image

    if not isinstance(value, Image.Image):
        if not isinstance(value, np.ndarray) or value.ndim not in (2, 3) or value.dtype == object:
            return None
        a = value
        if a.ndim == 3 and a.shape[0] in (1, 3, 4) and a.shape[-1] not in (1, 3, 4):
            a = np.moveaxis(a, 0, -1)  # channels first (torchvision)
        if a.ndim == 3 and a.shape[-1] == 1:
            a = a[..., 0]
        if (a.ndim == 3 and a.shape[-1] not in (3, 4)) or min(a.shape[:2]) < 2:
            return None
        if a.dtype != np.uint8:
            a = np.nan_to_num(a.astype(np.float64))
            a = np.clip(np.rint(a * 255 if a.size and a.min() >= 0 and a.max() <= 1 else a), 0, 255).astype(np.uint8)
        value = Image.fromarray(a)
    buf = io.BytesIO()
    value.save(buf, format="PNG")
    return buf.getvalue()


def _held_file(value) -> tuple[bytes | None, str | None]:
    """``(bytes, name)`` of an input held in memory rather than in a file: a Hugging Face ``Image``
    or ``Audio`` cell (``{"bytes": ..., "path": ...}``, as the Hub's Parquet files and
    ``Dataset.to_pandas()`` give them; bytes None when it names a file), or an image
    (:func:`_image_png`); ``(None, None)`` for anything else."""
    if isinstance(value, dict) and "bytes" in value:
        return (bytes(value["bytes"]) if value["bytes"] else None), value.get("path")
    return _image_png(value), None


def held_inputs_as_files(values: Iterable, where: str, *, strict: bool = True, shown_as: str | None = None):
    """``(paths, shown)`` for ``values`` when they are inputs held in memory (:func:`_held_file`):
    each written once, named by its content, under the cache folder (automl-tl's image and audio
    plugins read files; ``AUTOML_TL_CACHE_DIR`` moves it), ``shown`` the name each had; None
    when the first value is not such an input. ``strict``: any other value among them is an
    error (inputs given as a list; a table's column is only converted when it holds them).
    ``shown_as``: what a value without a name is shown as, before its number (``where #``)."""
    sample = next((v for v in itertools.islice(values, 100) if not _missing(v)), None)
    if sample is None or not isinstance(sample, dict) and _held_file(sample)[0] is None:
        if strict and isinstance(sample, np.ndarray):
            raise DataError(f"{where}: the inputs are arrays of shape {sample.shape}: automl-tl takes images "
                            f"as arrays H x W or H x W x 3 (or 1, 4; channels first too), texts as strings, "
                            f"files as paths; a vector of numbers is a table of numeric features, which it "
                            f"does not classify.")
        return None
    # imported here, past the check every table column goes through: automl_tl.cache imports Keras
    from automl_tl.atomic import atomic_write_bytes
    from automl_tl.cache import default_cache_dir

    folder = default_cache_dir() / "inputs"
    paths, shown, written = [], [], 0
    for row, value in enumerate(values, start=1):
        data, name = _held_file(value)
        shown.append(name or f"{shown_as or where + ' #'}{row}")
        if data is None:
            if strict and not isinstance(value, dict):
                raise DataError(f"{where}: input {row} is a {type(value).__name__}, not an image like the "
                                f"others.")
            paths.append(name)
            continue
        target = folder / (hashlib.sha1(data).hexdigest()[:24] + _embedded_suffix(data, name))
        if not target.is_file():
            atomic_write_bytes(target, data)
            written += 1
        paths.append(str(target))
    # said once, when it writes (the first run over a dataset); a later run reads what is there
    (_log.info if written else _log.debug)("%s: %d inputs held in memory, read from files under %s (%d written "
                                           "now)", where, len(paths), folder, written)
    return paths, shown


def with_embedded_files(frame, where: str):
    """``frame`` with each column of inputs held in memory (:func:`held_inputs_as_files`) as a
    column of file paths; ``frame.attrs["shown"][column]``: the name each had (what predict
    shows, not the cache's)."""
    for column in list(frame.columns):
        # the column itself, not a list of it: a wide table (785 pixel columns) was copied cell by cell
        got = held_inputs_as_files(frame[column], f"{where} column {column!r}", strict=False,
                                   shown_as=f"{Path(where).name} row ")
        if got is not None:
            frame[column] = got[0]
            frame.attrs.setdefault("shown", {})[column] = got[1]
    return frame
