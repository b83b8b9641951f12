"""Reading Hugging Face checkpoints (config.json + model.safetensors / pytorch_model.bin) without
PyTorch for safetensors, and locating them: a local folder, or ``hf://owner/name`` downloaded with
``huggingface_hub`` (cached under the usual HF cache)."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import numpy as np

from automl_tl import weights
from automl_tl.errors import WeightsUnavailableError

__all__ = ["hf_cached", "hf_folder", "load_config", "load_state_dict", "strip_prefix"]

_PATTERNS = ["config.json", "preprocessor_config.json", "model.safetensors", "pytorch_model.bin"]


def _usable(p: Path) -> bool:
    return (p / "config.json").exists() and any((p / f).exists() for f in _PATTERNS[2:])


def hf_cached(repo_id: str) -> str | None:
    """Local snapshot folder of ``repo_id`` when already in the HF cache, else None."""
    return weights.hf_cached(repo_id, _PATTERNS, _usable)()


def hf_folder(location: str) -> Path:
    """A local folder holding ``config.json`` and the weights for ``location`` (a folder, a
    ``config.json``/weights file inside one, or ``hf://owner/name``)."""
    p = Path(weights.hf_local(location, _PATTERNS))
    if p.is_file():
        p = p.parent
    if not (p / "config.json").exists():
        raise WeightsUnavailableError(f"{location}: no config.json there; point --weights at a "
                                      f"Hugging Face model folder (config.json + model.safetensors)")
    return p


def load_config(folder: Path) -> dict:
    return json.loads((Path(folder) / "config.json").read_text())


@functools.lru_cache(maxsize=4)
def _load_cached(path: str, mtime: float) -> dict:
    p = Path(path)
    if p.suffix == ".safetensors":
        from safetensors.numpy import load_file

        return load_file(str(p))
    try:
        import torch
    except ImportError:
        raise WeightsUnavailableError(
            f"{p} is a PyTorch checkpoint and PyTorch is not installed; convert it to "
            f"model.safetensors (or install torch) and try again") from None
    sd = torch.load(str(p), map_location="cpu", weights_only=True)
    return {k: v.float().numpy() if v.is_floating_point() else v.numpy() for k, v in sd.items()}


def load_state_dict(folder: Path) -> dict[str, np.ndarray]:
    folder = Path(folder)
    for name in ("model.safetensors", "pytorch_model.bin"):
        p = folder / name
        if p.exists():
            return dict(_load_cached(str(p), p.stat().st_mtime))
    shards = sorted(folder.glob("model-*.safetensors"))
    if shards:
        sd = {}
        for s in shards:
            sd.update(_load_cached(str(s), s.stat().st_mtime))
        return sd
    raise WeightsUnavailableError(f"{folder}: no model.safetensors or pytorch_model.bin")


def strip_prefix(sd: dict[str, Any], anchor: str) -> dict[str, Any]:
    """Drop the head-model prefix (``wav2vec2.``, ``model.`` ...) found before ``anchor``."""
    for key in sd:
        if key.endswith(anchor):
            prefix = key[: -len(anchor)]
            return {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}
    raise WeightsUnavailableError(f"checkpoint has no parameter ending in {anchor!r}; is it the "
                                  f"right architecture?")
