"""The probe's order under a time budget: classical first, then what past tasks say each
pretrained backbone is worth, then the unknown ones smallest first (issue 32)."""

from __future__ import annotations

from automl_tl.knowledge import backbone_evidence
from automl_tl.probe import probe_order


def _record(modality, scores, fingerprint="f"):
    return {"meta": {"modality": modality}, "fingerprint": fingerprint,
            "by_backbone": {name: {"score": s} for name, s in scores.items()}}


def test_evidence_is_the_mean_gap_to_each_past_tasks_best():
    records = [_record("text", {"big": 0.85, "small": 0.75, "tfidf": 0.70}, "a"),
               _record("text", {"big": 0.80, "small": 0.82}, "b"),
               _record("image", {"cnn": 0.9}, "c")]
    ev = backbone_evidence("text", records)
    assert set(ev) == {"big", "small", "tfidf"}
    assert abs(ev["big"] - (0.0 - 0.02) / 2) < 1e-12 and abs(ev["small"] - (-0.10 + 0.0) / 2) < 1e-12
    assert abs(ev["tfidf"] + 0.15) < 1e-12
    # a record of this very data says nothing about it
    assert abs(backbone_evidence("text", records, exclude_fingerprint="b")["small"] + 0.10) < 1e-12


def test_order_classical_then_evidence_then_unknown_smallest_first(pm):
    specs = [pm.backbones.get(n) for n in ("mobilenetv2", "vgg16", "pixels", "efficientnet-lite0")]
    # no evidence: the classical baseline, then the smallest first (as before evidence existed)
    assert [s.name for s in probe_order(specs)] == ["pixels", "mobilenetv2", "efficientnet-lite0", "vgg16"]
    # vgg16 won the past tasks, lite0 trailed: vgg16 first; mobilenetv2 unknown, after both
    ev = {"vgg16": 0.0, "efficientnet-lite0": -0.02, "pixels": -0.3}
    assert [s.name for s in probe_order(specs, ev)] == ["pixels", "vgg16", "efficientnet-lite0", "mobilenetv2"]
