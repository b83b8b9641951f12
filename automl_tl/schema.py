"""The run's record, named once: what the engine writes into the Optuna study and what every
view (leaderboard.csv, summary.json, the report, the saved model's config) reads from it.

The study in its storage is the single source of truth for every trial: its parameters, and in
its user attributes (the keys of :data:`ATTR`) its strategy, score's standard error, seconds,
learning curve, failure reason and traceback, and its predictions on the items it was scored on.
Files in the run directory are views derived from the study and written atomically; nothing
reads them back as truth. Bump :data:`SCHEMA_VERSION` when a name here changes meaning.
"""

from __future__ import annotations

import json
from typing import Any, Iterable, Mapping

__all__ = ["SCHEMA_VERSION", "STUDY_NAME", "STATE_ORDER", "PARAM_COLUMNS", "NOISE_COLUMNS",
           "LEADERBOARD_COLUMNS", "ATTR", "STUDY_ATTR", "SUMMARY_ATTR", "COUNT_KEYS", "RUN_MARKER", "RUN_MARKERS", "trial_row", "trial_rows", "trial_counts",
           "interrupted_reason", "retry_links", "TASK_KEYS", "task_changes"]

SCHEMA_VERSION = 2
STUDY_NAME = "automl_tl"

#: leaderboard order of Optuna's trial states (their ``TrialState`` names)
STATE_ORDER = ("COMPLETE", "PRUNED", "RUNNING", "WAITING", "FAIL")

#: a trial's configuration, as columns (``options``: the backbone's build options as JSON;
#: ``extra``: a strategy's own hyperparameters as JSON)
PARAM_COLUMNS = ("backbone", "strategy", "unfreeze_blocks", "head_lr", "backbone_lr", "head_units",
                 "dropout", "head_epochs", "ft_epochs", "augment", "options", "extra")
#: how a score was measured: its standard error, "cv" or "holdout", how many items
NOISE_COLUMNS = ("score_se", "evaluation", "n_eval")
LEADERBOARD_COLUMNS = ("trial", "state", *PARAM_COLUMNS, "score", *NOISE_COLUMNS, "seconds", "recommended",
                       "retry_of", "fail_reason")


class ATTR:
    """User-attribute keys of a trial in the study."""

    STRATEGY = "strategy"
    SECONDS = "seconds"
    SCORE_SE, EVALUATION, N_EVAL = NOISE_COLUMNS
    EPOCHS = "epochs"  # what a refit needs: {"head": n, "fine_tune": m}
    C = "C"  # the logistic-regression strength of a linear head
    FT_EPOCHS_RUN = "ft_epochs_run"
    STOPPED_EARLY = "stopped_early"
    HISTORY = "history"  # the learning curve: [{"phase", "epoch", "loss", "val_score"}, ...]
    #: {"index": [...], "predicted": [...], "probability": [...] (of the predicted class),
    #: "true_probability": [...] (of the item's true class: the selection's log-loss),
    #: "probabilities": [[...], ...] (every class, 5 decimals: the ensemble's choice)}
    PREDICTIONS = "predictions"
    FAIL_REASON = "fail_reason"
    TRACEBACK = "traceback"
    NOT_STARTED = "not_started"  # why a proposal was not run (no time left, a repeat, trailing features)
    REPEAT_OF = "repeat_of"
    TRAILS = "trails"  # a new head not tried on features whose linear trial trails this trial's by far
    RETRY_OF = "retry_of"  # this trial re-runs an interrupted one
    RECOMMENDED = "recommended"
    PROBE = "probe"
    TABLE_HEAD = "table_head"  # the strategy table's hidden-layer head, queued after its linear probe
    WARM_START = "warm_start"  # the past task whose winner this queued trial is (its label)
    STRATEGY_TOUR = "strategy_tour"  # queued so that every strategy is tried once (compare_strategies)
    WARM_START_DISTANCE = "warm_start_distance"  # how near that past task is
    BATCH_SIZE = "batch_size"  # the smaller batch an out-of-memory trial was retried with
    WORKER = "worker"  # the process that runs the trial: {"host", "pid", "ns"} (see automl_tl.workers)


class STUDY_ATTR:
    """User-attribute keys of the study itself."""

    TASK = "task"  # what every worker must search alike (the keys of TASK_KEYS)
    SUMMARY = "summary"  # the last summary a worker wrote (without the counts): the views' source
    DELIVERED = "delivered"  # the delivered model: which trial, refitted or not, where, why


#: the study attribute that holds the last summary a worker wrote (without the counts)
SUMMARY_ATTR = STUDY_ATTR.SUMMARY

#: what a resumed run, and every worker of one shared search, must keep: summary["task"] keys
#: and what a user changes to change them
TASK_KEYS = {"data_fingerprint": "the input files", "labels_fingerprint": "the labels", "metric": "--metric",
             "seed": "--seed", "val_fraction": "--val-fraction", "groups": "the grouping (--group-column, --no-groups)"}


def task_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """What differs between two tasks (``summary["task"]``), by the names a user knows."""
    return [what for key, what in TASK_KEYS.items() if key in old and key in new and old[key] != new[key]]


#: files whose presence says a folder is an automl-tl run directory (the study; its summary view)
#: written first into every run directory: a run killed before its study or summary existed is
#: still recognised as ours when the same command runs again
RUN_MARKER = ".automl-tl-run"
RUN_MARKERS = (RUN_MARKER, "study.db", "summary.json")

#: keys of ``summary.json["counts"]``
COUNT_KEYS = ("complete", "pruned", "fail", "running", "not_started", "repeats", "trailing")


def interrupted_reason(retried_as: int | None) -> str:
    why = "interrupted: the process ended before this trial finished"
    return why + (f"; retried as trial {retried_as}" if retried_as is not None else "")


def retry_links(trials: Iterable) -> dict[int, int]:
    return {int(t.user_attrs[ATTR.RETRY_OF]): t.number for t in trials if t.user_attrs.get(ATTR.RETRY_OF) is not None}


def trial_row(t, retried_as: Mapping[int, int] | None = None) -> dict[str, Any]:
    """One leaderboard row from a ``FrozenTrial``."""
    p, a = t.params, t.user_attrs
    retried_as = retried_as or {}
    options = {k.split(":", 1)[1]: v for k, v in p.items() if ":" in k}
    known = set(PARAM_COLUMNS) | {"backbone"}
    extra = {k: v for k, v in p.items() if ":" not in k and k not in known}
    reason = a.get(ATTR.FAIL_REASON, "")
    if t.state.name == "FAIL" and not reason:
        reason = interrupted_reason(retried_as.get(t.number))
    elif t.number in retried_as and "retried as" not in reason:
        reason = f"{reason}; retried as trial {retried_as[t.number]}"
    return {
        "trial": t.number, "state": t.state.name,
        "backbone": p.get("backbone", ""),
        "strategy": a.get(ATTR.STRATEGY, p.get("strategy", "")),
        "unfreeze_blocks": p.get("unfreeze_blocks", ""),
        "head_lr": p.get("head_lr", ""), "backbone_lr": p.get("backbone_lr", ""),
        "head_units": p.get("head_units", ""),
        "dropout": round(p["dropout"], 2) if "dropout" in p else "",
        "head_epochs": p.get("head_epochs", ""), "ft_epochs": p.get("ft_epochs", ""),
        "augment": p.get("augment", ""),
        "options": json.dumps(options, sort_keys=True) if options else "",
        "extra": json.dumps(extra, sort_keys=True) if extra else "",
        "score": t.value if t.value is not None else "",
        "score_se": a.get(ATTR.SCORE_SE, ""), "evaluation": a.get(ATTR.EVALUATION, ""),
        "n_eval": a.get(ATTR.N_EVAL, ""),
        "seconds": round(float(a[ATTR.SECONDS]), 2) if a.get(ATTR.SECONDS) is not None else "",
        "recommended": bool(a.get(ATTR.RECOMMENDED, False)),
        "retry_of": a.get(ATTR.RETRY_OF, ""),
        "fail_reason": reason,
    }


def trial_rows(trials) -> list[dict]:
    """Leaderboard rows of ``trials``: by state (:data:`STATE_ORDER`), then best score first."""
    trials = list(trials)
    retried_as = retry_links(trials)
    rows = [trial_row(t, retried_as) for t in trials]
    order = {s: i for i, s in enumerate(STATE_ORDER)}
    rows.sort(key=lambda r: (order.get(r["state"], len(order)),
                             -(r["score"] if isinstance(r["score"], (int, float)) else -1e9), r["trial"]))
    return rows


def trial_counts(trials) -> dict[str, int]:
    """Trials by state (``complete``, ``pruned``, ``fail``, ``running``), the proposals not
    started (no time left, a repeat, a head on trailing features) apart, as ``not_started``, of
    which ``repeats`` and ``trailing``."""
    counts = dict.fromkeys(COUNT_KEYS, 0)
    for t in trials:
        if t.user_attrs.get(ATTR.NOT_STARTED):
            counts["not_started"] += 1
            counts["repeats"] += t.user_attrs.get(ATTR.REPEAT_OF) is not None
            counts["trailing"] += t.user_attrs.get(ATTR.TRAILS) is not None
            continue
        key = t.state.name.lower()
        counts[key] = counts.get(key, 0) + 1
    return counts
