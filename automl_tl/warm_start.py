"""What past searches tell a new one, and what each search leaves for the next, through the
knowledge base (:mod:`automl_tl.knowledge`): the warm start (the configurations the nearest past
tasks selected, enqueued after the recommendation), the nearest tasks ``recommend`` shows, and the
record a finished fit appends.
"""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger("automl_tl")


def warm_start_plan(setting: bool | None, meta, ctx, space) -> dict:
    """The configurations of the nearest past tasks this search will enqueue (none when the
    warm start is off, ``setting`` False or AUTOML_TL_WARM_START=0, or the knowledge base is
    empty)."""
    from automl_tl.knowledge import knowledge_path, read_records, warm_start_configs, warm_start_enabled

    if not warm_start_enabled(setting):
        return {"enabled": False, "configs": []}
    # a record of this very data (an earlier run on it) is not evidence about a new task
    pretrained = [name for name, spec in ctx.specs.items() if not spec.classical]
    configs = warm_start_configs(meta, read_records(), backbones=pretrained, strategies=space.strategies,
                                 exclude_fingerprint=ctx.data.fingerprint())
    for c in configs:
        log.info("warm start: %s / %s from the past task %r (distance %.2f, scored %.4f there)",
                 c["params"]["backbone"], c["params"]["strategy"], c["label"], c["distance"], c["score"])
    return {"enabled": True, "knowledge_base": str(knowledge_path()), "configs": configs}


def nearest_tasks(prof, probes, fingerprint: str) -> list[dict]:
    """The three past tasks of the knowledge base nearest to this one (a record of this very data
    left out), with what their searches found."""
    from automl_tl.knowledge import nearest, read_records, task_meta

    meta = task_meta(prof, probes)
    return [{"distance": round(d, 3), "label": r.get("label", ""), "source": r.get("source"), "meta": r["meta"],
             "best": {k: r["best"][k] for k in ("strategy", "backbone", "score")},
             "selected": None if not r.get("selected") else {
                 "strategy": r["selected"]["strategy"], "backbone": r["selected"]["params"]["backbone"],
                 "score": r["selected"]["score"]},
             "recommended": r.get("recommended")}
            for d, r in nearest(meta, read_records(), 3, exclude_fingerprint=fingerprint)]


def remember(meta, search, rec, data, *, seconds: float, selection) -> None:
    """Append this search to the knowledge base; a failure to write it is only a warning."""
    from automl_tl.knowledge import append_record, make_record

    try:
        record = make_record(meta=meta, trials=search.study.get_trials(deepcopy=False), recommendation=rec,
                             label=Path(str(data.source)).name, fingerprint=data.fingerprint(),
                             seconds=seconds, transferability=search.transferability(),
                             selected=None if selection is None else selection.trial)
        if record is not None:
            append_record(record)
    except Exception as exc:  # noqa: BLE001 - the model is saved; the knowledge base is extra
        log.warning("the knowledge base could not be written (%s: %s); set AUTOML_TL_KNOWLEDGE to a "
                    "writable file to keep what this search found", type(exc).__name__, exc)
