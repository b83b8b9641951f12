"""DatasetProfile: what the data is, measured in seconds, serialisable to JSON."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

import numpy as np

from automl_tl.errors import AutoMLTLError, WeightsUnavailableError

__all__ = ["DatasetProfile", "profile_data"]


@dataclass(frozen=True, kw_only=True)
class DatasetProfile:
    modality: str
    source: str
    n_samples: int
    n_classes: int
    class_counts: Mapping[str, int]
    imbalance_ratio: float
    median_per_class: float
    size_category: str
    input_stats: Mapping[str, Any]
    backbones: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    #: the linear probe of every (backbone, options) pair, best first (see automl_tl.probe)
    probe: tuple[Mapping[str, Any], ...] = ()
    similarity_method: str = ""
    similarity_threshold: float = 0.5
    skipped: Mapping[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def imbalanced(self) -> bool:
        return self.imbalance_ratio > 1.5

    def best_backbone(self) -> str | None:
        """The pretrained candidate whose frozen features score best in the linear probe.

        Without probe results, the first pretrained candidate: similarities measured by different
        methods (BN statistics, pixel statistics, vocabulary fit) are not on one scale and are
        never compared with each other.
        """
        pretrained = [b for b, info in self.backbones.items() if not info.get("classical")]
        ranked = [p["backbone"] for p in self.probe if p["backbone"] in pretrained]
        if ranked:
            return ranked[0]
        return pretrained[0] if pretrained else None

    def best_probe(self, backbone: str) -> Mapping[str, Any] | None:
        """The best probe result of ``backbone`` (its best options)."""
        return next((p for p in self.probe if p["backbone"] == backbone), None)

    def to_dict(self) -> dict:
        return json.loads(json.dumps(asdict(self), default=_jsonable))

    def to_json(self, **kw) -> str:
        return json.dumps(self.to_dict(), **kw)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "DatasetProfile":
        d = dict(d)
        d["probe"] = tuple(d.get("probe", ()))
        return cls(**d)

    @classmethod
    def from_json(cls, text: str) -> "DatasetProfile":
        return cls.from_dict(json.loads(text))


def _jsonable(x):
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating,)):
        return float(x)
    if isinstance(x, np.ndarray):
        return x.tolist()
    return str(x)


def profile_data(data, *, modality, table, candidates=(), weights: Mapping[str, Any] | None = None,
                 progress: bool = False) -> DatasetProfile:
    """Measure ``data``; ``candidates`` are backbone specs analysed with ``weights[name]``."""
    from tqdm.auto import tqdm

    t0 = time.perf_counter()
    counts = data.class_counts()
    values = np.array(list(counts.values()), dtype=float)
    median = float(np.median(values))
    stats = modality.describe(list(data.items))
    backbones = {}
    weights = weights or {}
    for spec in tqdm(candidates, desc="profiling backbones", disable=not progress, leave=False):
        w = weights.get(spec.name)
        try:
            info = dict(modality.analyse(list(data.items), stats, spec, w))
        except AutoMLTLError:
            raise
        except Exception as exc:  # noqa: BLE001 - most often a weights file that does not load
            raise WeightsUnavailableError(
                f"backbone {spec.name!r} could not be built and run with its weights "
                f"({w.location if w else 'random'}): {type(exc).__name__}: {exc}. Check the file given "
                f"with --weights, or leave the backbone out with --backbones.") from exc
        if spec.classical:  # nothing pretrained: no similarity to a pretraining domain
            info["similarity"] = None
        info["similar"] = bool(info["similarity"] is not None and info["similarity"] >= modality.similarity_threshold)
        info["fine_tunable"] = spec.fine_tunable
        info["classical"] = spec.classical
        backbones[spec.name] = info
    return DatasetProfile(
        modality=data.modality, source=data.source, n_samples=len(data.items),
        n_classes=len(counts), class_counts=counts,
        imbalance_ratio=float(values.max() / values.min()), median_per_class=median,
        size_category=table.size_category(median, data.modality), input_stats=stats, backbones=backbones,
        similarity_method=modality.similarity_method,
        similarity_threshold=modality.similarity_threshold, skipped=data.skip_summary(),
        seconds=time.perf_counter() - t0)
