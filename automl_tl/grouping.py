"""Validate the way the model will be used: by source, when the items come from a few.

:mod:`automl_tl.sources` finds the sources; this module decides what the run does with them and
keeps the evidence for the report's "on new data" section (``summary.json["on_new_data"]``):

* :func:`resolve` sets the run's groups: the user's ``--group-column``, else the grouping found
  (unless ``--no-groups``), checked: one group is no grouping; a class seen from one source only
  is said; when every class is, grouped folds would hold out whole classes, so the folds stay
  random and the estimate is said to be of new items by known sources.
* :func:`clusters` is the last resort, after the probe: near-duplicates in the best frozen features.
* :func:`compare` scores the best probes again on random folds: a large gap between random and
  grouped folds is itself the finding (the features memorise the sources).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

import numpy as np

from automl_tl.errors import DataError
from automl_tl.sources import FoundGroups, confounded_classes, from_features, unit_of

__all__ = ["resolve", "clusters", "compare", "on_new_data", "spread_term", "GAP_SE", "MIN_HELD_OUT"]

_log = logging.getLogger("automl_tl")

#: random folds above grouped ones by more than this many standard errors: the features memorise
#: the sources (said in one line and in the report)
GAP_SE = 2.0
#: a score measured on fewer held-out sources than this carries the spread between sources in its
#: standard error (:func:`spread_term`)
MIN_HELD_OUT = 3


def spread_term(spread: float, n_groups: int) -> float:
    """The part of a score's standard error that comes from which sources were held out.

    A fine-tuning trial is scored on the hold-out split, which holds one of four sessions: its
    standard error over the items of that session (bootstrap) says nothing of how the next session
    differs. Measured: a fine-tuned EfficientNet-Lite0 scored 0.947 +- 0.030 on one held-out
    session and 0.447 on two new ones, where the probes cross-validated over every session said
    0.78 (benchmarks/sources). Below :data:`MIN_HELD_OUT` sources the between-source spread of the
    best probe's per-source scores (``spread``, a standard deviation) over the square root of the
    sources held out is added: one lucky session must beat the cross-validated probes by more than
    sessions differ."""
    if not spread or n_groups >= MIN_HELD_OUT or n_groups < 1:
        return 0.0
    return float(spread) / float(np.sqrt(n_groups))


def resolve(data, *, detect: bool = True, column: str | None = None) -> tuple[Any, dict]:
    """``(data with the run's groups, the record of the grouping)``."""
    given = data.groups is not None
    if given:
        found = FoundGroups(groups=tuple(data.groups), detector="given", how=f"column {column!r}" if column
                            else "the groups given", unit=unit_of(column or "") or "groups")
    elif detect and data.found is not None and data.split is None:
        found = data.found
    else:
        why = ("the validation split was fixed by the data" if data.split is not None else
               "--no-groups" if not detect else "no column, folder level or part of the file names names a source")
        return data, {"used": False, "reason": why, "unit": "item", "units": "items"}
    record = found.to_dict() | {"used": True, "unit": _singular(found.unit), "units": found.unit}
    if found.n < 2:
        raise DataError(f"{data.source}: {found.how} holds one group ({found.names()[0]!r}): grouped folds need "
                        f"two or more. Name a column with several groups (--group-column), or leave it out.")
    alone = confounded_classes(found.groups, data.labels)
    n_classes = len(set(data.labels))
    if alone and len(alone) == n_classes:
        _log.warning("%s: each class comes from one of the %s (%s): no fold can hold out a %s and still have "
                     "its class to learn from, so validation is by random folds and the estimate is of new items "
                     "by known %s, not of new ones", data.source, found.describe(), _class_sources(found, data),
                     _singular(found.unit), found.unit)
        record |= {"used": False, "confounded": alone,
                   "reason": f"every class comes from one {_singular(found.unit)}: grouped folds would hold out "
                             f"whole classes; the estimate is of new items by known {found.unit}"}
        return replace(data, groups=None), record
    if alone:
        _log.warning("%s: class(es) %s come from one %s only: a class seen from one source cannot be validated "
                     "on a new one (its fold has none of it to learn from)", data.source,
                     ", ".join(repr(c) for c in alone[:5]), _singular(found.unit))
        record["confounded"] = alone
    if found.detector != "given":
        _log.info("groups: %s; validating on new %s (--group-column to set one, --no-groups to ignore)",
                  found.describe(), found.unit)
    record["reason"] = (f"validated on new {found.unit}: each fold holds out whole {found.unit}")
    return replace(data, groups=tuple(found.groups)), record


def _singular(unit: str) -> str:
    return {"people": "person", "centres": "centre", "near-duplicate clusters": "near-duplicate cluster"}.get(
        unit, unit[:-1] if unit.endswith("s") else unit)


def _class_sources(found: FoundGroups, data) -> str:
    pairs = sorted({(y, g) for g, y in zip(found.groups, data.labels)})
    shown = ", ".join(f"{y}: {g}" for y, g in pairs[:4])
    return shown + (", ..." if len(pairs) > 4 else "")


def clusters(ctx, probes: list[dict]) -> FoundGroups | None:
    """Near-duplicate clusters in the frozen features of the best pretrained probe (the last
    resort, when no name says where the items come from)."""
    from automl_tl.sources import CLUSTER_MAX_ITEMS

    best = next((p for p in probes if "score" in p and not p.get("classical")), None)
    if best is None or len(ctx.y) > CLUSTER_MAX_ITEMS:
        # above that many items from_features finds nothing: the features of every item are not
        # computed for it (issue 35: 100 000 MiniLM embeddings that a profile never used)
        return None
    try:
        x = ctx.features(best["backbone"], best.get("options") or {})
    except Exception:  # noqa: BLE001 - a detector that cannot run finds nothing
        return None
    return from_features(x, ctx.data.labels)


def compare(ctx, probes: list[dict], record: dict, *, seed: int = 0, val_fraction: float = 0.2) -> dict:
    """Score the best pretrained probe and the best classical one on random folds as well as on the
    run's grouped folds (cached features: a logistic regression each); says the gap in one line."""
    from automl_tl.data import evaluation_plan
    from automl_tl.evaluation import bootstrap_se
    from automl_tl.metrics import metric_function
    from automl_tl.probe import PROBE_ITEMS, linear_probe, probe_sample

    if not record.get("used"):
        return record
    if len(ctx.y) > PROBE_ITEMS:  # as the probe: on its sample
        ctx = ctx.subset(probe_sample(ctx.y, PROBE_ITEMS, ctx.seed))
    loose = replace(ctx.data, groups=None, found=None)
    plan = evaluation_plan(loose, ctx.y, val_fraction=val_fraction, seed=seed, quiet=True)
    scored = [p for p in probes if "score" in p]
    picks = [p for p in (next((p for p in scored if not p.get("classical")), None),
                         next((p for p in scored if p.get("classical")), None)) if p is not None]
    rows = []
    record = dict(record) | {"spread": _spread(ctx, picks[0]) if picks and not picks[0].get("classical") else 0.0}
    for p in picks:
        x = ctx.features(p["backbone"], p.get("options") or {})
        metric = metric_function(ctx.metric)
        r = linear_probe(x, ctx.y, plan.folds, metric=metric, n_classes=ctx.n_classes, class_weight=ctx.class_weight,
                         se_fn=lambda yt, yp, _idx: bootstrap_se(yt, yp, metric, seed=seed))
        rows.append({"backbone": p["backbone"], "options": p.get("options") or {}, "classical": bool(p.get("classical")),
                     "grouped": round(float(p["score"]), 4), "grouped_se": round(float(p.get("se", float("nan"))), 4),
                     "random": round(float(r.score), 4), "random_se": round(float(r.se), 4)})
    record["random_vs_grouped"] = rows
    units = record["units"]
    for row in rows:
        gap = row["random"] - row["grouped"]
        se = float(np.hypot(row["grouped_se"], row["random_se"])) if np.isfinite(row["grouped_se"]) else 0.0
        row["gap"] = round(gap, 4)
        row["leaks"] = bool(gap > GAP_SE * se and gap > 0.02)
    leaky = [r for r in rows if r["leaks"]]
    if leaky:
        worst = max(leaky, key=lambda r: r["gap"])
        _log.info("%s: random folds %.3f, new %s %.3f: its features tell the %s apart; the model will be used "
                  "on new %s, so it is chosen by new %s", worst["backbone"], worst["random"], units, worst["grouped"],
                  units, units, units)
    return record


def _spread(ctx, probe: dict) -> float:
    """The standard deviation across sources of the probe's out-of-fold score per source."""
    from automl_tl.metrics import metric_function

    result = ctx.probe(probe["backbone"], probe.get("options") or {})  # cached: the run's grouped folds
    groups = np.asarray(ctx.data.groups)[result.eval_index]
    y, pred = ctx.y[result.eval_index], result.oof_probs.argmax(1)
    metric = metric_function(ctx.metric)
    per = [float(metric(y[groups == g], pred[groups == g])) for g in np.unique(groups)]
    return round(float(np.std(per, ddof=1)), 4) if len(per) >= 2 else 0.0


def on_new_data(groups: dict | None, selection: dict | None, delivered: dict | None,
                evaluation: dict | None, metric: str = "accuracy") -> dict:
    """What to expect of the delivered model on new data (``summary.json["on_new_data"]``): the
    estimate with its interval, the unit that is new, how the grouping was found, the gap between
    random and grouped folds, and the calibration."""
    g = dict(groups or {"used": False, "unit": "item", "units": "items", "reason": "no grouping recorded"})
    used = bool(g.get("used"))
    units = g.get("units", "items") if used else "items"
    out: dict[str, Any] = {"unit": g.get("unit", "item") if used else "item", "units": units,
                           "grouped": used, "metric": metric,
                           "grouping": {k: g[k] for k in ("detector", "how", "n_groups", "names", "description",
                                                          "reason", "confounded") if k in g},
                           "random_vs_grouped": g.get("random_vs_grouped", [])}
    calibration = (delivered or {}).get("calibration")
    if calibration:
        out["calibration"] = {k: calibration.get(k) for k in ("temperature", "ece_before", "ece_after", "applied",
                                                               "n_items", "reason")}
    if not selection:
        out["sentence"] = "no model was delivered"
        return out
    ens = (delivered or {}).get("ensemble")
    score = float(ens["score"]) if ens else float(selection["score"])
    se = float(selection.get("se") or float("nan"))
    out |= {"estimate": round(score, 4), "se": round(se, 4) if np.isfinite(se) else None}
    if np.isfinite(se):
        out["interval"] = [round(max(0.0, score - 1.96 * se), 4), round(min(1.0, score + 1.96 * se), 4)]
    how = (evaluation or {}).get("kind")
    k = (evaluation or {}).get("k")
    plan = (f"{k}-fold cross-validation" if how == "cv" else "a hold-out split") if how else "validation"
    interval = f" (95 % interval {out['interval'][0]:.3f}-{out['interval'][1]:.3f})" if "interval" in out else ""
    if used:
        out["sentence"] = (f"expect {metric} {score:.3f}{interval} on new {units}: {plan} held out whole {units} "
                           f"({g.get('description', '')})")
    elif g.get("confounded"):
        out["sentence"] = (f"expect {metric} {score:.3f}{interval} on new items by known {g.get('units')}; not an "
                           f"estimate for new {g.get('units')}: {g.get('reason', '')}")
    else:
        out["sentence"] = (f"expect {metric} {score:.3f}{interval} on new items like these ({plan}); "
                           f"no grouping of the items: {g.get('reason', '')}")
    leaky = [r for r in out["random_vs_grouped"] if r.get("leaks")]
    if leaky:
        w = max(leaky, key=lambda r: r["gap"])
        out["gap_sentence"] = (f"random folds would have overrated {w['backbone']} by {w['gap']:.3f}: "
                               f"{w['random']:.3f} on random folds, {w['grouped']:.3f} on new {units}")
    return out
