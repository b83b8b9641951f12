"""Reading images of any size and mode, safely."""

from __future__ import annotations

import threading
import warnings

import numpy as np

#: Images above this many pixels are skipped as "too large" (decompression-bomb guard).
MAX_PIXELS = 100_000_000


#: ``warnings.catch_warnings`` swaps the process's warning filters and is not thread-safe: the
#: decode workers and the load check's threads open images at once, so opening (a header read:
#: cheap) is one thread at a time; decoding (``load``, ``verify``, ``resize``) stays parallel
_OPEN_LOCK = threading.Lock()


def open_image(path: str):
    from PIL import Image, ImageOps

    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    with _OPEN_LOCK, warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        img = Image.open(path)
    return img, ImageOps


def load_rgb(path: str, size: int) -> np.ndarray:
    """Decode ``path`` to a ``(size, size, 3)`` uint8 RGB array.

    Grey, palette, CMYK and 16-bit images are converted; transparency is composited on white;
    EXIF orientation is applied; JPEGs are decoded at reduced size when much larger than needed.
    """
    from PIL import Image

    img, ImageOps = open_image(path)
    with img:
        if img.format == "JPEG":
            img.draft("RGB", (size * 2, size * 2))
        img = ImageOps.exif_transpose(img)
        if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
            img = img.convert("RGBA")
            background = Image.new("RGBA", img.size, (255, 255, 255, 255))
            img = Image.alpha_composite(background, img)
        if img.mode in ("I;16", "I;16B", "I;16L", "I"):
            arr = np.asarray(img, dtype=np.float32)
            hi = float(arr.max()) or 1.0
            img = Image.fromarray((arr / hi * 255).astype(np.uint8))
        if img.mode == "F":
            arr = np.asarray(img, dtype=np.float32)
            lo, hi = float(arr.min()), float(arr.max())
            img = Image.fromarray(((arr - lo) / ((hi - lo) or 1.0) * 255).astype(np.uint8))
        img = img.convert("RGB").resize((size, size), Image.BILINEAR)
        return np.asarray(img, dtype=np.uint8)


def check_image(path: str) -> str | None:
    """None when ``path`` is a readable image, else the reason it is not (for a counted skip)."""
    from PIL import Image, UnidentifiedImageError

    try:
        img, _ = open_image(path)
    except Image.DecompressionBombWarning as exc:
        return f"too large: {exc}"
    except Image.DecompressionBombError as exc:
        return f"too large: {exc}"
    except UnidentifiedImageError:
        return "not an image: the file's content is not a format Pillow reads"
    except FileNotFoundError:  # as a table's missing file is named
        return "file not found"
    except OSError as exc:
        return f"unreadable: {exc}"
    try:
        with img:
            w, h = img.size
            if w == 0 or h == 0:
                return "corrupt image: zero width or height"
            if w * h > MAX_PIXELS:
                return f"too large: {w}x{h} pixels exceeds the {MAX_PIXELS:,} pixel limit"
            img.verify()
    except Exception as exc:  # noqa: BLE001 - Pillow raises many types for truncated files
        return f"corrupt image: {type(exc).__name__}: {exc}"
    try:  # verify() misses truncated pixel data; a cheap reduced decode catches it
        img, _ = open_image(path)
        with img:
            if img.format == "JPEG":
                img.draft("RGB", (64, 64))
            img.load()
    except Exception as exc:  # noqa: BLE001
        return f"corrupt image: {type(exc).__name__}: {exc}"
    return None
