"""How trials are scored and which one is delivered: folds, standard errors, the one-SE rule.

A leaf module (numpy, scikit-learn and automl-tl's errors only), shared by the probe, the trials and the search.

* :func:`make_plan` splits the data once per run: a list of folds over all labelled items.
  Small data gets stratified k-fold cross-validation (grouped when groups are given) so cheap
  trials are scored on every example; the first fold doubles as the train/validation split of
  the expensive (fine-tuning) trials. Large data, or a validation split the user fixed, gets
  one hold-out fold.
* :func:`bootstrap_se` is the standard error of any metric on a set of predictions (resampling
  examples, or whole groups when there are groups).
* :func:`select` is the one-standard-error rule: every trial whose score is within one standard
  error of the top score ties with it (paired on the items both were scored on, when their
  predictions are known), and the tie goes to the cheapest, simplest trial.
* :func:`ensemble` adds cheap trials to the selected one when averaging their class
  probabilities improves them on the items all were scored on.
* :func:`evaluation_plan` is :func:`make_plan` over labelled data: the user's split or groups,
  else folds that keep each set of exact copies (:func:`duplicate_groups`) on one side.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from automl_tl.errors import DataError
from automl_tl.metrics import true_class_log_loss

__all__ = ["EvaluationPlan", "make_plan", "bootstrap_se", "Candidate", "Selection", "select",
           "paired_gap", "complexity", "CV_MAX_ITEMS", "Ensemble", "ensemble", "evaluation_plan",
           "duplicate_groups"]

_log = logging.getLogger("automl_tl")

#: cross-validate cheap trials up to this many labelled items; above it one hold-out split is
#: already large (>= 1 000 validation items at the default fraction) and k fits cost k times more
CV_MAX_ITEMS = 5000


@dataclass(frozen=True, kw_only=True)
class EvaluationPlan:
    """Folds over all labelled items; ``folds[0]`` is the train/validation split."""

    folds: tuple[tuple[np.ndarray, np.ndarray], ...]
    kind: str  # "cv" (k folds) or "holdout" (one fold)
    reason: str = ""

    @property
    def train(self) -> np.ndarray:
        return self.folds[0][0]

    @property
    def val(self) -> np.ndarray:
        return self.folds[0][1]

    @property
    def k(self) -> int:
        return len(self.folds)

    def describe(self) -> str:
        if self.kind == "cv":
            return f"{self.k}-fold cross-validation"
        return f"hold-out validation ({len(self.val)} items)"

    def restrict(self, index) -> "EvaluationPlan":
        """The same folds over the items ``index`` only, numbered by their position in ``index``
        (a sample keeps the run's split: its validation items are validation items of the run)."""
        where = {int(i): k for k, i in enumerate(np.asarray(index))}

        def keep(part):
            return np.array([where[int(i)] for i in part if int(i) in where], dtype=np.int64)

        return EvaluationPlan(folds=tuple((keep(tr), keep(va)) for tr, va in self.folds), kind=self.kind,
                              reason=self.reason)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "k": self.k, "n_train": int(len(self.train)),
                "n_val": int(len(self.val)), "reason": self.reason}


def make_plan(y: Sequence, *, groups: Sequence | None = None, fixed_val: np.ndarray | None = None,
              val_fraction: float = 0.2, seed: int = 0, cv_max_items: int = CV_MAX_ITEMS,
              cv: bool | None = None) -> EvaluationPlan:
    """The run's folds.

    :param fixed_val: a boolean mask of the items the user fixed as validation (``--split-column``):
        then one hold-out fold, exactly that split.
    :param cv: force cross-validation on (True) or off (False); default: on up to ``cv_max_items``.
    """
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    y = np.asarray(y)
    n = len(y)
    idx = np.arange(n)
    if fixed_val is not None:
        mask = np.asarray(fixed_val, dtype=bool)
        return EvaluationPlan(folds=((idx[~mask], idx[mask]),), kind="holdout",
                              reason="the validation split was fixed by the data")
    k = int(min(10, max(2, round(1 / val_fraction))))
    min_class = int(np.bincount(np.unique(y, return_inverse=True)[1]).min())
    n_groups = len(set(groups)) if groups is not None else None
    if groups is not None and n_groups is not None and n_groups >= 2:
        k = min(k, n_groups)
        splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
        folds = [(np.sort(a), np.sort(b)) for a, b in splitter.split(idx, y, groups=np.asarray(groups))]
        folds = [f for f in folds if len(f[0]) and len(f[1])]
    else:
        k = min(k, max(2, min_class))
        splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
        import warnings

        with warnings.catch_warnings():  # classes with fewer members than k: sklearn warns, copes
            warnings.simplefilter("ignore", UserWarning)
            folds = [(np.sort(a), np.sort(b)) for a, b in splitter.split(idx, y)]
    use_cv = (n <= cv_max_items) if cv is None else cv
    if use_cv and len(folds) >= 2:
        return EvaluationPlan(folds=tuple(folds), kind="cv",
                              reason=f"{n} items <= {cv_max_items}: cheap trials are cross-validated")
    reason = (f"{n} items > {cv_max_items}: one hold-out split is large enough" if cv is None
              else "cross-validation turned off")
    return EvaluationPlan(folds=(folds[0],), kind="holdout", reason=reason)


def bootstrap_se(y_true, y_pred, metric: Callable, *, groups=None, n_boot: int = 200,
                 seed: int = 0) -> float:
    """Standard error of ``metric(y_true, y_pred)`` by the bootstrap (whole groups resampled
    when ``groups`` is given, since items of one group are not independent).

    Floored by the "plus four" (Agresti-Coull) standard error of a proportion at the same score:
    the bootstrap says 0 for a perfect score on 12 items, which would make 12 lucky items
    outrank a cross-validated score on 600.
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    n = len(y_true)
    if n < 2:
        return float("nan")
    score = float(metric(y_true, y_pred))
    p = (min(max(score, 0.0), 1.0) * n + 2) / (n + 4)
    floor = float(np.sqrt(p * (1 - p) / (n + 4)))
    rng = np.random.default_rng(seed)
    if groups is not None and len(set(groups)) >= 2:
        g = np.asarray(groups)
        names, inverse = np.unique(g, return_inverse=True)
        members = [np.flatnonzero(inverse == i) for i in range(len(names))]
        draws = (np.concatenate([members[j] for j in rng.integers(0, len(names), len(names))])
                 for _ in range(n_boot))
    else:
        draws = (rng.integers(0, n, n) for _ in range(n_boot))
    values = [metric(y_true[d], y_pred[d]) for d in draws]
    return max(float(np.std(values, ddof=1)), floor)


@dataclass(frozen=True, kw_only=True)
class Candidate:
    """A finished trial as the selection sees it.

    ``index`` / ``pred``: the items the trial was scored on and its predicted classes there
    (out of fold under cross-validation), for paired comparisons; ``p_true``: the probability it
    gave each of those items' true class (the log-loss tie-break); ``proba``: its class
    probabilities there, one row per item of ``index`` (ensembles); all optional.
    """

    trial: int
    score: float
    se: float
    seconds: float = 0.0
    #: smaller is simpler: (strategy rank, head rank, classical?) - see :func:`complexity`
    complexity: tuple = ()
    index: np.ndarray | None = None
    pred: np.ndarray | None = None
    p_true: np.ndarray | None = None
    proba: np.ndarray | None = None
    #: the part of ``se`` that comes from scoring on few held-out sources (grouping.spread_term);
    #: a paired comparison on the items of those sources carries it too
    spread: float = 0.0


@dataclass(frozen=True, kw_only=True)
class Selection:
    trial: int
    score: float
    se: float
    top_trial: int
    top_score: float
    top_se: float
    tied: tuple[int, ...] = field(default_factory=tuple)
    reason: str = ""
    paired: bool = False

    def to_dict(self) -> dict:
        return {"trial": self.trial, "score": self.score, "se": self.se, "top_trial": self.top_trial,
                "top_score": self.top_score, "top_se": self.top_se, "tied": list(self.tied),
                "rule": "one standard error" + (" (paired, on the items both trials were scored on)"
                                                if self.paired else ""),
                "reason": self.reason}


def complexity(rank: int, head_units: int | None, classical: bool, unfreeze_blocks: int | None = None) -> tuple:
    """Order used to break ties: frozen before fine-tuned (the strategy's ``rank``; fewer blocks
    before more), linear head before a hidden layer, and a pretrained backbone before a classical
    featurizer (its features generalise better to inputs unlike the training data, e.g. a new
    speaker)."""
    return (int(rank), int(unfreeze_blocks or 0), 1 if head_units else 0, 1 if classical else 0)


def cost_tier(seconds: float) -> int:
    """A trial's cost as an order of magnitude (under 10 s: 0, under 100 s: 1, ...): the
    tie-break counts a tenfold difference in cost, not the jitter between two cheap trials."""
    s = float(seconds) if seconds is not None and np.isfinite(seconds) else 0.0
    return int(np.floor(np.log10(max(s, 1.0))))


def paired_gap(top: Candidate, other: Candidate, y, metric: Callable, *, n_boot: int = 200,
               seed: int = 0) -> tuple[float, float] | None:
    """``(gap, se)``: how much better ``top`` scores than ``other`` on the items both were scored
    on, and the standard error of that gap (bootstrap over those items: the two trials' errors on
    one item are not independent, so pairing removes most of the noise of comparing two scores).
    None when they share fewer than 10 items."""
    if top.index is None or other.index is None or top.pred is None or other.pred is None:
        return None
    common, ia, ib = np.intersect1d(top.index, other.index, return_indices=True)
    if len(common) < 10:
        return None
    yt, pa, pb = np.asarray(y)[common], np.asarray(top.pred)[ia], np.asarray(other.pred)[ib]
    gap = float(metric(yt, pa) - metric(yt, pb))
    if not (pa != pb).any():
        return gap, 0.0
    # floor: McNemar's standard error with one pseudo-item each way (as "plus four" does for a
    # proportion): one item of 40 right where the other trial was wrong is not evidence
    n = len(common)
    b, c = int(np.sum((pa == yt) & (pb != yt))), int(np.sum((pa != yt) & (pb == yt)))
    floor = float(np.sqrt(max(b + c + 2 - (b - c) ** 2 / (n + 2), 0.0))) / (n + 2)
    rng = np.random.default_rng(seed)
    draws = [rng.integers(0, n, n) for _ in range(n_boot)]
    gaps = [metric(yt[d], pa[d]) - metric(yt[d], pb[d]) for d in draws]
    return gap, max(float(np.std(gaps, ddof=1)), floor)


def select(candidates: Sequence[Candidate], *, y=None, metric: Callable | None = None,
           cache: dict | None = None) -> Selection | None:
    """The one-standard-error rule over finished trials.

    The top-scoring trial sets the mark. Another trial ties with it when the gap is within the
    top score's standard error, or - when predictions and ``y`` are given - when the *paired* gap
    on the items both were scored on is within its standard error (a fine-tuned trial scored on
    40 hold-out items and a probe cross-validated on 200 share those 40; a lucky hold-out shows
    there). Either test finding noise is a tie: the rule leans to the simpler model, as the
    one-standard-error rule is meant to. Among the tied, the simplest trial wins (:func:`complexity`),
    then one an order of magnitude cheaper (:func:`cost_tier`): a 0.1 s difference between two
    probes says nothing, a tenfold one does. Among tied trials equally simple and costly, the
    lowest log-loss on the items all were scored on (:func:`_by_log_loss`), else the higher score. ``cache`` (a dict kept by the
    caller) remembers paired comparisons between calls.
    """
    cache = {} if cache is None else cache
    cands = [c for c in candidates if c.score is not None and np.isfinite(c.score)]
    if not cands:
        return None
    top = max(cands, key=lambda c: (c.score, -c.trial))
    band = top.se if np.isfinite(top.se) else 0.0
    paired_any = False

    def ties(c: Candidate) -> bool:
        nonlocal paired_any
        if c.trial == top.trial:
            return True
        if c.score >= top.score - band - 1e-12:
            return True
        # not within the top score's own standard error: maybe the scores were measured on
        # different items (a hold-out of 40 vs cross-validation on all); compare on the shared ones
        key = (top.trial, c.trial)
        if key not in cache:
            cache[key] = paired_gap(top, c, y, metric) if (y is not None and metric is not None) else None
        pg = cache[key]
        if pg is None:
            return False
        paired_any = True
        # on the items of one or two held-out sources, the gap between two models also varies with
        # the source: a trial scored there carries the spread between sources
        return pg[0] <= float(np.hypot(pg[1], max(top.spread, c.spread))) + 1e-12

    ordered = sorted(cands, key=lambda c: (c.complexity, cost_tier(c.seconds), -c.score, c.trial))
    tied = [c for c in ordered if ties(c)]
    equal = [c for c in tied if (c.complexity, cost_tier(c.seconds)) == (tied[0].complexity, cost_tier(tied[0].seconds))]
    pick, losses = _by_log_loss(equal)
    if pick.trial == top.trial:
        reason = f"trial {top.trial} has the top score {top.score:.4f}"
        if len(tied) > 1:
            reason += f"; {len(tied) - 1} other trial(s) within one standard error are not simpler"
    elif pick is not equal[0]:
        reason = (f"trial {pick.trial} ({pick.score:.4f}) is within one standard error of the top "
                  f"score {top.score:.4f} (trial {top.trial}) and as simple; among such trials its "
                  f"probabilities are the best (log-loss {losses[pick.trial]:.4f} against "
                  f"{losses[equal[0].trial]:.4f} for trial {equal[0].trial}, on the same items)")
    else:
        reason = (f"trial {pick.trial} ({pick.score:.4f}) is within one standard error of the top "
                  f"score {top.score:.4f} (trial {top.trial}"
                  f"{', compared on the same items' if paired_any else ''}) and is simpler or "
                  f"cheaper: a gap this small is noise")
    return Selection(trial=pick.trial, score=pick.score, se=pick.se, top_trial=top.trial,
                     top_score=top.score, top_se=top.se, tied=tuple(sorted(c.trial for c in tied)),
                     reason=reason, paired=paired_any)


def _by_log_loss(group: Sequence[Candidate]) -> tuple[Candidate, dict[int, float]]:
    """The pick among equally simple tied trials: the lowest log-loss on the items all of them
    were scored on, when each recorded its true-class probabilities there (at least 10 shared
    items); else the first of ``group`` (the higher score). Accuracy on 200 items moves in steps
    of half a point and flips between two probes with the fold split; the log-loss sees how sure
    each prediction was, so it separates what accuracy calls a tie."""
    if len(group) < 2 or any(c.p_true is None or c.index is None for c in group):
        return group[0], {}
    common = group[0].index
    for c in group[1:]:
        common = np.intersect1d(common, c.index)
    if len(common) < 10:
        return group[0], {}
    losses = {}
    for c in group:
        _, _, where = np.intersect1d(common, c.index, return_indices=True)
        losses[c.trial] = true_class_log_loss(np.asarray(c.p_true, dtype=float)[where])
    best = min(enumerate(group), key=lambda kc: (round(losses[kc[1].trial], 9), kc[0]))[1]
    return best, losses


#: an ensemble is judged on at least this many items all its members were scored on
ENSEMBLE_MIN_ITEMS = 30
#: a member must lower the log-loss by at least this share of it (a gain of 0.01 %, seen between
#: two probes of one backbone on 200 texts, is no reason to double the prediction cost)
ENSEMBLE_MIN_GAIN = 0.01


@dataclass(frozen=True, kw_only=True)
class Ensemble:
    """Trials whose class probabilities are averaged (equal weights), the selected one first, and
    the evidence: log-loss and metric on the items all were scored on, against the selected alone."""

    trials: tuple[int, ...]
    index: np.ndarray
    proba: np.ndarray
    loss: float
    base_loss: float
    score: float
    base_score: float
    reason: str = ""

    def to_dict(self) -> dict:
        return {"trials": list(self.trials), "weights": [round(1 / len(self.trials), 6)] * len(self.trials),
                "n_items": int(len(self.index)), "log_loss": round(self.loss, 6),
                "base_log_loss": round(self.base_loss, 6), "score": self.score, "base_score": self.base_score,
                "reason": self.reason}


def ensemble(base: Candidate, pool: Sequence[Candidate], *, y, metric: Callable, max_members: int = 3,
             min_items: int = ENSEMBLE_MIN_ITEMS, min_gain: float = ENSEMBLE_MIN_GAIN) -> Ensemble | None:
    """Greedy forward selection of an equal-weight ensemble (Caruana et al., 2004), starting from
    the selected trial ``base`` and drawing from ``pool``; None when nothing is added.

    A pool trial may join when, on the items all members (it included) were scored on, averaging
    it in lowers the log-loss by at least ``min_gain`` of it and does not lower the metric. Each
    step adds the one that raises the metric most, then lowers the log-loss most: an overconfident
    fine-tuned model gains log-loss from any softer partner, but only a partner that errs on other
    items (word n-grams beside a sentence encoder) also fixes predictions. The two conditions
    together are the guard against noise; a gain beyond its standard error is not also required,
    because an average of two sound, different models rarely loses: on Rotten Tomatoes (2 000
    texts; docs/benchmarks.md) the fine-tuned MiniLM with the TF-IDF baseline gained 0.024 ± 0.028
    in log-loss on its 400 validation texts, and the same pair 1.8 points of accuracy on test; this
    rule, run on 600 resampled validation sets, never cost accuracy on the remaining test texts. Why not
    scikit-learn's ``VotingClassifier`` / ``StackingClassifier``: they refit their members; these
    members are trials already scored, and only their recorded probabilities are needed here.
    """
    y = np.asarray(y)

    def on(c: Candidate, items: np.ndarray) -> np.ndarray:
        _, _, where = np.intersect1d(items, c.index, return_indices=True)
        return np.asarray(c.proba, dtype=float)[where]

    def log_loss(p: np.ndarray, items: np.ndarray) -> float:
        return true_class_log_loss(p[np.arange(len(items)), y[items]])

    if base.proba is None or base.index is None:
        return None
    members, items = [base], np.asarray(base.index)
    pool = [c for c in pool if c.proba is not None and c.index is not None and c.trial != base.trial]
    while len(members) < max_members:
        best = None
        for c in pool:
            if any(c.trial == m.trial for m in members):
                continue
            common = np.intersect1d(items, c.index)
            if len(common) < min_items:
                continue
            now = np.mean([on(m, common) for m in members], axis=0)
            new = (now * len(members) + on(c, common)) / (len(members) + 1)
            l_now = log_loss(now, common)
            gain = l_now - log_loss(new, common)
            yt = y[common]
            s_now, s_new = float(metric(yt, now.argmax(1))), float(metric(yt, new.argmax(1)))
            if gain <= max(0.0, min_gain * l_now) or s_new < s_now - 1e-12:
                continue
            key = (round(s_new - s_now, 9), gain)
            if best is None or key > best[0]:
                best = (key, c, common, new)
        if best is None:
            break
        _, c, items, proba = best
        members.append(c)
    if len(members) == 1:
        return None
    loss, score = log_loss(proba, items), float(metric(y[items], proba.argmax(1)))
    base_p = on(base, items)
    base_score, base_loss = float(metric(y[items], base_p.argmax(1))), log_loss(base_p, items)
    added = ", ".join(f"trial {m.trial}" for m in members[1:])
    reason = (f"trial {base.trial} averaged with {added}: on the {len(items)} items all were scored on, "
              f"log-loss {loss:.4f} against {base_loss:.4f} for trial {base.trial} alone, score {score:.4f} "
              f"against {base_score:.4f}")
    return Ensemble(trials=tuple(m.trial for m in members), index=items, proba=proba, loss=loss,
                    base_loss=base_loss, score=score, base_score=base_score, reason=reason)


# ------------------------------------------------------------------ the plan over labelled data
def evaluation_plan(data, y, *, val_fraction: float = 0.2, seed: int = 0, quiet: bool = False):
    """The run's folds for ``data`` (a :class:`automl_tl.data.LabelledData`; :func:`make_plan`):
    stratified k-fold on small data, grouped when ``data.groups`` is set, exactly the user's split
    when ``data.split`` is set; ``plan.train`` / ``plan.val`` is the hold-out split."""
    fixed = None
    if data.split is not None:
        fixed = np.asarray(data.split) == "val"
        if fixed.all() or not fixed.any():
            raise DataError(f"{data.source}: the split column leaves {int((~fixed).sum())} training and "
                            f"{int(fixed.sum())} validation rows; both need some.")
    ids, copies = duplicate_groups(data) if data.groups is None and fixed is None else (None, 0)
    if not copies:
        return make_plan(y, groups=data.groups, fixed_val=fixed, val_fraction=val_fraction, seed=seed)
    # The folds are drawn over one input of each set of copies, and each copy goes where its first
    # input went: the same stratified folds as for unique data, in linear time (scikit-learn's
    # StratifiedGroupKFold took 6 s over 60 000 groups of one).
    if not quiet:
        _say_conflicts(data, ids, y)
    firsts = np.unique(ids, return_index=True)[1]  # ids count up from 0 in order of first appearance
    plan = make_plan(np.asarray(y)[firsts], val_fraction=val_fraction, seed=seed)  # over distinct inputs
    folds = tuple((np.flatnonzero(np.isin(ids, tr)), np.flatnonzero(np.isin(ids, va))) for tr, va in plan.folds)
    why = (f"{copies} input{'s are exact copies' if copies > 1 else ' is an exact copy'} of another: "
           f"each set of copies stays on one side of every split (else a copy in validation scores "
           f"what was learned from its twin)")
    if not quiet:
        _log.info("%s: %s", data.source, why)
    return EvaluationPlan(folds=folds, kind=plan.kind, reason=f"{plan.reason}; {why}")


def _say_conflicts(data, ids: np.ndarray, y) -> None:
    """Warn about copies of one input labelled as different classes (a text pasted under two
    labels, an image listed once per object in it): the model is taught both answers and
    validation counts one of them wrong whatever it learns."""
    y = np.asarray(y)
    order = np.argsort(ids, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(ids[order]) != 0])
    conflicts = [order[s:e] for s, e in zip(starts, np.r_[starts[1:], len(order)])
                 if len(set(y[order[s:e]].tolist())) > 1]
    if not conflicts:
        return
    first = conflicts[0]
    shown = str(data.items[first[0]])
    shown = os.path.basename(shown) if os.path.isfile(shown) else shown  # a file by its name
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    names = sorted({str(data.labels[i]) for i in first})
    _log.warning("%s: %d input(s) appear more than once with different labels (e.g. %r as %s): the model "
                 "is taught both; give each input one label, or drop the copies", data.source,
                 len(conflicts), shown, " and ".join(repr(n) for n in names))


def duplicate_groups(data) -> tuple[np.ndarray | None, int]:
    """``(group id per item, number of items that copy an earlier one)``; ``(None, 0)`` when no
    two inputs are the same. Texts are the same when equal up to case and spacing; files when
    their bytes are (:func:`_file_digest`). The run's folds keep each set of copies together
    (:func:`evaluation_plan`), as ``--group-column`` keeps a speaker's clips together."""
    inline = not all(isinstance(x, str) and os.path.isfile(x) for x in data.items[:20])
    keys = [_text_key(x) if inline else _file_digest(x) for x in data.items]
    ids, seen = np.empty(len(keys), dtype=np.int64), {}
    for i, k in enumerate(keys):
        ids[i] = seen.setdefault(k, len(seen))
    copies = len(keys) - len(seen)
    return (ids, copies) if copies else (None, 0)


def _text_key(text) -> str:
    """A text as copies and labels are compared: case and spacing aside."""
    return " ".join(str(text).split()).casefold()


def _file_digest(path: str, chunk: int = 1 << 16, whole_below: int = 1 << 20) -> str:
    """A file's identity by content: all of its bytes up to ``whole_below``, else its size and
    three ``chunk``-sized pieces (start, middle, end), so that a folder of large photos is not
    read twice; a file that cannot be read is only itself."""
    try:
        size = os.path.getsize(path)
        h = hashlib.blake2b(str(size).encode(), digest_size=16)
        with open(path, "rb") as f:
            if size <= whole_below:
                h.update(f.read())
            else:
                for offset in (0, size // 2, size - chunk):
                    f.seek(offset)
                    h.update(f.read(chunk))
        return h.hexdigest()
    except OSError:
        return f"unreadable:{path}"
