"""Text files decoded: UTF-8, else the legacy Western encoding they were written in."""

from __future__ import annotations

import logging
from pathlib import Path

from automl_tl.modalities import Skip

_log = logging.getLogger("automl_tl")


#: bytes below 0x20 that no text holds (tab, line feed, form feed and carriage return it may)
_TEXT_CONTROLS = bytes(b for b in range(32) if b not in (9, 10, 12, 13))


def _legacy_text(data: bytes) -> tuple[str, str]:
    """``(text, encoding)`` of bytes that are not UTF-8: Windows-1252, the legacy encoding of most
    older Western corpora (a superset of Latin-1's letters), else Latin-1, which reads any byte.
    Why not a detector: charset_normalizer read short French reviews as cp1006 (Urdu) and cp1250,
    German as cp1250; a fixed rule is right where the data is Western and says which it used."""
    try:
        return data.decode("cp1252"), "Windows-1252"
    except UnicodeDecodeError:
        return data.decode("latin-1"), "Latin-1"


def read_text_file(path) -> tuple[str, str | None]:
    """The text of a file, and the encoding it was read with when that is not UTF-8
    (:func:`_legacy_text`): every Latin-1 file of an older corpus (20 Newsgroups) was skipped as
    "not valid UTF-8"."""
    data = Path(path).read_bytes()
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError:
        if data[:4096].translate(None, _TEXT_CONTROLS) != data[:4096]:  # control bytes: not a text (an image)
            return data.decode("utf-8", errors="surrogateescape"), None  # for the modality to skip as such
        return _legacy_text(data)


def _read_text_files(paths, skips) -> tuple[list[int], list[str]]:
    """Contents of text files (:func:`read_text_file`); an unreadable file is a counted skip.
    Returns the kept indices and the texts; files not in UTF-8 are said in one line, with the
    first one's text as read, so that a wrong guess shows."""
    keep, texts, legacy = [], [], []
    for i, p in enumerate(paths):
        try:
            text, encoding = read_text_file(p)
        except OSError as exc:
            skips.append(Skip(item=str(p), reason=f"unreadable: {exc}"))
            continue
        texts.append(text)
        keep.append(i)
        if encoding:
            legacy.append((p, encoding, text))
    if legacy:
        first, _, text = legacy[0]
        _log.warning("%d text file(s) are not UTF-8: read as %s (%s: %r). If that reads wrong, save them as UTF-8",
                     len(legacy), " or ".join(sorted({e for _, e, _ in legacy})),
                     f"{Path(first).parent.name}/{Path(first).name}", " ".join(text.split())[:60])
    return keep, texts
