"""Fabricate realistic run directories (the format of docs/architecture.md) without the engine.

The study (``study.db``) is the record, with the user attributes the engine writes (names from
:mod:`automl_tl.schema`, so this fixture cannot drift from the engine); ``leaderboard.csv`` is
its view. ``write_rows`` edits trials in both, the way a different search would have left them.

By default a run has what the engine writes now: a standard error per score (``score_se``), the
one-standard-error selection, the refit, the stop reason, the evaluation scheme, the linear probe
and the baseline in summary.json (no baseline.json). ``legacy=True`` writes an older run without them.
"""

from __future__ import annotations

import csv
import json
import math
import random
from pathlib import Path

import pytest

from automl_tl.schema import ATTR, LEADERBOARD_COLUMNS, STUDY_NAME

LB_COLUMNS = [
    "trial", "state", "backbone", "strategy", "unfreeze_blocks", "head_lr", "backbone_lr", "head_units", "dropout",
    "head_epochs", "ft_epochs", "augment", "options", "score", "seconds", "recommended", "fail_reason",
]
NEW_LB_COLUMNS = list(LEADERBOARD_COLUMNS)
N_VAL = 60


def plus_four_se(score: float, n: int) -> float:
    """The standard error the engine floors its bootstrap with (a proportion on ``n`` items)."""
    p = (min(max(score, 0.0), 1.0) * n + 2) / (n + 4)
    return round(math.sqrt(p * (1 - p) / (n + 4)), 6)
STRATEGIES = ["feature_extraction", "fine_tune_top", "fine_tune_all"]
BACKBONES = ["mobilenet_v3_small", "efficientnet_b0", "resnet50"]
XSS_CLASS = "<img src=x onerror=alert(1)>"
XSS_LABEL = "<script>alert(1)</script>"


def _trial_plan(kind: str, rng: random.Random, winner: str, rec_strategy: str, backbones: list[str]) -> list[dict]:
    """(params, state, score, seconds, fail_reason, recommended) per trial."""
    plan = []
    if kind == "all_failed":
        reasons = ["ResourceExhaustedError: OOM when allocating tensor of shape [64,224,224,3]", "TrialFailed: loss became NaN at epoch 2", "WeightsUnavailableError: no weights for resnet50 (offline)"]
        for i in range(3):
            plan.append(dict(strategy=STRATEGIES[i % 3], backbone=backbones[i % len(backbones)], state="FAIL", score=None, seconds=3.0 + i, fail_reason=reasons[i], recommended=i == 0))
        return plan
    if kind == "single":
        return [dict(strategy=rec_strategy, backbone=backbones[0], state="COMPLETE", score=0.8125, seconds=42.5, fail_reason=None, recommended=True)]
    n = 5 if kind == "interrupted" else 12
    for i in range(n):
        strategy = rec_strategy if i == 0 else STRATEGIES[i % 3]
        backbone = backbones[0] if i == 0 else backbones[(i // 3) % len(backbones)]
        base = {"feature_extraction": 0.80, "fine_tune_top": 0.84, "fine_tune_all": 0.82}[strategy]
        if strategy == winner:
            base += 0.12
        score = round(min(0.999, base + rng.uniform(-0.03, 0.03)), 6)
        seconds = round({"feature_extraction": 15.0, "fine_tune_top": 120.0, "fine_tune_all": 400.0}[strategy] * rng.uniform(0.7, 1.4), 2)
        state, reason = "COMPLETE", None
        if kind == "normal" and i in (4, 8):
            state, score = "PRUNED", round(score - 0.1, 6)
        if kind == "normal" and i == 10:
            state, score, reason = "FAIL", None, "ResourceExhaustedError: OOM when allocating tensor\nTraceback (most recent call last): ..."
        if kind == "interrupted" and i == n - 1:
            state, score, reason = "RUNNING", None, None
        plan.append(dict(strategy=strategy, backbone=backbone, state=state, score=score, seconds=seconds if state != "RUNNING" else None, fail_reason=reason, recommended=i == 0))
    return plan


def _params(p: dict, rng: random.Random) -> dict:
    params = {"backbone": p["backbone"], "strategy": p["strategy"], "head_lr": round(10 ** rng.uniform(-4, -2), 6), "dropout": round(rng.uniform(0, 0.5), 3), "head_units": rng.choice([0, 128, 256])}
    if p["strategy"] == "fine_tune_top":
        params["unfreeze_blocks"] = rng.randint(1, 4)
    if p["strategy"] != "feature_extraction":
        params["backbone_lr"] = round(10 ** rng.uniform(-6, -3), 8)
    return params


def make_run(
    root: Path,
    name: str = "run",
    *,
    kind: str = "normal",
    n_samples: int = 1200,
    winner: str = "fine_tune_top",
    rec_strategy: str = "feature_extraction",
    classes: list[str] | None = None,
    backbones: list[str] | None = None,
    baseline_score: float | None = 0.71,
    with_predictions: bool = True,
    with_study: bool = True,
    seed: int = 0,
    study_only_running: bool = False,
    legacy: bool = False,
    se_n: int = N_VAL,
) -> Path:
    """``se_n``: the number of items behind each standard error (larger: tighter intervals)."""
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
    from optuna.trial import TrialState, create_trial

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rng = random.Random(seed)
    backbones = backbones or list(BACKBONES)
    classes = classes or ["cat", "dog", "bird"]
    run = Path(root) / name
    (run / "trials").mkdir(parents=True) if legacy else run.mkdir(parents=True)
    plan = _trial_plan(kind, rng, winner, rec_strategy, backbones)
    rows, trial_docs = [], []
    for number, p in enumerate(plan):
        params = _params(p, rng)
        head_epochs = 4
        ft_epochs = 3 if p["strategy"] != "feature_extraction" else 0
        hist = []
        if p["state"] != "FAIL":
            v = 0.5
            for e in range(head_epochs):
                v = min(0.99, v + rng.uniform(0.03, 0.1))
                hist.append({"phase": "head", "epoch": e, "loss": round(1.2 - 0.2 * e, 4), "val_score": round(v, 4)})
            for e in range(ft_epochs):
                v = min(0.99, v + rng.uniform(0.0, 0.05))
                hist.append({"phase": "fine_tune", "epoch": e, "loss": round(0.5 - 0.1 * e, 4), "val_score": round(v, 4)})
        if p["score"] is not None and hist:
            hist[-1]["val_score"] = p["score"]
        evaluation = "cv" if p["strategy"] == "feature_extraction" else "holdout"
        noise = {"score_se": plus_four_se(p["score"], se_n), "evaluation": evaluation, "n_eval": n_samples if evaluation == "cv" else N_VAL} if p["score"] is not None else {}
        rows.append({
            "trial": number, "state": p["state"], "backbone": p["backbone"], "strategy": p["strategy"],
            "unfreeze_blocks": params.get("unfreeze_blocks", ""), "head_lr": params["head_lr"], "backbone_lr": params.get("backbone_lr", ""),
            "head_units": params["head_units"], "dropout": params["dropout"], "head_epochs": head_epochs, "ft_epochs": ft_epochs,
            "augment": p["strategy"] != "feature_extraction", "options": "{}", "score": "" if p["score"] is None or p["state"] != "COMPLETE" else p["score"],
            "seconds": "" if p["seconds"] is None else p["seconds"], "recommended": p["recommended"], "fail_reason": p["fail_reason"] or "",
            **({} if legacy else {k: noise.get(k, "") for k in ("score_se", "evaluation", "n_eval")}),
        })
        trial_docs.append({"number": number, "params": params, "state": p["state"], "score": p["score"], "seconds": p["seconds"], "history": hist, "fail_reason": p["fail_reason"], **({} if legacy else noise)})
        if legacy:  # runs before schema 2 kept learning curves in trials/N.json
            (run / "trials" / f"{number}.json").write_text(json.dumps(trial_docs[-1]))
    rows.sort(key=lambda r: (r["score"] == "", -(r["score"] or 0) if r["score"] != "" else 0, r["trial"]))
    with (run / "leaderboard.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=LB_COLUMNS if legacy else NEW_LB_COLUMNS)
        w.writeheader()
        w.writerows(rows)

    if with_study:
        study = optuna.create_study(study_name=STUDY_NAME, storage=f"sqlite:///{run / 'study.db'}", direction="maximize")
        dists = {
            "backbone": CategoricalDistribution(backbones), "strategy": CategoricalDistribution(STRATEGIES),
            "head_lr": FloatDistribution(1e-4, 1e-2, log=True), "dropout": FloatDistribution(0.0, 0.5),
            "head_units": CategoricalDistribution([0, 128, 256]), "unfreeze_blocks": IntDistribution(1, 4),
            "backbone_lr": FloatDistribution(1e-6, 1e-3, log=True),
        }
        for doc, p in zip(trial_docs, plan):
            state = TrialState[p["state"]]
            study.add_trial(create_trial(
                params=doc["params"], distributions={k: dists[k] for k in doc["params"]},
                value=p["score"] if state == TrialState.COMPLETE else None, state=state,
                user_attrs={ATTR.RECOMMENDED: p["recommended"], ATTR.SECONDS: p["seconds"], ATTR.FAIL_REASON: p["fail_reason"], ATTR.STRATEGY: p["strategy"],
                            **({} if legacy else {k: doc[k] for k in ("score_se", "evaluation", "n_eval") if k in doc}),
                            **({} if legacy or not doc["history"] else {ATTR.HISTORY: doc["history"]})},
                intermediate_values={i: h["val_score"] for i, h in enumerate(doc["history"])} if state in (TrialState.COMPLETE, TrialState.PRUNED) else None,
            ))
        if study_only_running:  # a trial started after leaderboard.csv was last written
            params = _params({"strategy": "fine_tune_all", "backbone": backbones[-1]}, rng)
            study.add_trial(create_trial(params=params, distributions={k: dists[k] for k in params}, state=TrialState.RUNNING))
            study.enqueue_trial({"backbone": backbones[0], "head_lr": 1e-3})  # queued: WAITING, no params yet

    complete = [d for d in trial_docs if d["state"] == "COMPLETE"]
    best = max(complete, key=lambda d: d["score"]) if complete else None
    counts = {s.lower(): sum(1 for d in trial_docs if d["state"] == s) for s in ("COMPLETE", "PRUNED", "RUNNING")}
    counts["fail"] = sum(1 for d in trial_docs if d["state"] == "FAIL")
    baseline = {"name": "logistic_regression(pixels)", "metric": "accuracy", "score": baseline_score, "seconds": 2.5} if baseline_score is not None else None
    extra: dict = {}
    if not legacy:
        if baseline is not None:
            baseline = {"name": "pixels + logistic regression", "score": baseline_score, "score_se": plus_four_se(baseline_score, se_n),
                        "metric": "accuracy", "seconds": 2.5, "backbone": "pixels"}
        extra = _new_summary_fields(trial_docs, kind, n_samples, backbones, baseline)
        counts["not_started"] = 0
        if extra["selection"]:  # the engine's "best" is the selected (delivered) trial
            best = next(d for d in trial_docs if d["number"] == extra["selection"]["trial"])
    summary = {
        "version": 1,
        "task": {"modality": "image", "source": str(root / "data"), "metric": "accuracy", "seed": seed},
        "profile": {"n_samples": n_samples, "n_classes": len(classes), "class_counts": {c: n_samples // len(classes) for c in classes}, "imbalance_ratio": 1.0, "similarity": 0.62, "input": {"median_height": 224, "median_width": 224}},
        "recommendation": {"rule": "small_similar" if rec_strategy == "feature_extraction" else "medium_dissimilar", "strategy": rec_strategy, "reason": f"{n_samples} samples and high similarity to ImageNet: train a head on frozen features", "params": {"strategy": rec_strategy, "backbone": backbones[0]}},
        "best": {"trial": best["number"], "score": best["score"], "params": best["params"]} if best else None,
        "counts": counts,
        "labels": classes,
        "baseline": baseline,
        "finished": kind != "interrupted",
        **extra,
    }
    if best and not legacy:
        summary["best"] |= {"score_se": best["score_se"], "strategy": best["params"]["strategy"]}
    (run / "summary.json").write_text(json.dumps(summary, indent=2))
    (run / "labels.json").write_text(json.dumps(classes))
    if baseline is not None and legacy:  # newer runs keep the baseline in summary.json only
        (run / "baseline.json").write_text(json.dumps(baseline))
    n_val = 60
    val_items = [f"{root / 'data'}/{classes[i % len(classes)]}/img_{i}.jpg" for i in range(n_val)]
    val_labels = [classes[i % len(classes)] for i in range(n_val)]
    (run / "split.json").write_text(json.dumps({"modality": "image", "labels": classes, "train": {"items": ["x"] * (n_samples - n_val), "labels": []}, "val": {"items": val_items, "labels": val_labels}}))
    if best:
        (run / "config.json").write_text(json.dumps({"backbone": best["params"]["backbone"], "input_config": {}, "options": {}, "params": best["params"], "metric": "accuracy", "labels": classes, "trial": best["number"], "score": best["score"],
                                                         **({} if legacy else {"score_se": best["score_se"], "refitted": bool(summary["delivered"]), "classical": False})}))
        if with_predictions:
            with (run / "val_predictions.csv").open("w", newline="") as fh:
                w = csv.writer(fh)
                w.writerow(["item", "label", "predicted", "probability"])
                for i, (item, lab) in enumerate(zip(val_items, val_labels)):
                    pred = lab if rng.random() < 0.8 else classes[(classes.index(lab) + 1) % len(classes)]
                    w.writerow([item, lab, pred, round(rng.uniform(0.4, 0.99), 4)])
    return run


def _new_summary_fields(docs: list[dict], kind: str, n_samples: int, backbones: list[str], baseline: dict | None) -> dict:
    """selection (the engine's one-SE rule), stop, delivered, evaluation, probe, as the engine writes them."""
    from automl_tl.evaluation import Candidate, complexity, select

    cands = [
        Candidate(trial=d["number"], score=d["score"], se=d["score_se"], seconds=d["seconds"],
                  complexity=complexity({"feature_extraction": 0, "fine_tune_top": 1}.get(d["params"]["strategy"], 2), d["params"].get("head_units"), False, unfreeze_blocks=d["params"].get("unfreeze_blocks")))
        for d in docs if d["state"] == "COMPLETE"
    ]
    sel = select(cands)
    finished = kind != "interrupted"
    seconds = round(sum(d["seconds"] or 0 for d in docs), 1)
    delivered = None
    if sel is not None and finished:
        delivered = {"trial": sel.trial, "refit": True, "n_train": n_samples, "refit_seconds": 12.3, "kind": "transfer learning",
                     "refit_reason": f"refitted on all {n_samples} labelled items with the epochs trial {sel.trial} needed"}
    probe = [{"backbone": b, "options": {}, "score": round(0.78 - 0.03 * i, 4), "se": 0.03, "C": 1.0, "classical": False, "dim": 1280, "seconds": 4.0 + i}
             for i, b in enumerate(backbones)]
    if baseline is not None:
        probe.append({"backbone": "pixels", "options": {"size": 32}, "score": baseline["score"], "se": baseline["score_se"], "C": 0.1, "classical": True, "seconds": 2.5})
    probe.sort(key=lambda p: -p["score"])
    probe.append({"backbone": backbones[-1], "options": {"pooling": "max"}, "skipped": "the time budget for probing ran out"})
    return {
        "selection": sel.to_dict() if sel else None,
        "stop": {"kind": "trials", "reason": f"the trial budget ({len(docs)}) is used", "seconds": seconds} if finished else None,
        "delivered": delivered,
        "evaluation": {"kind": "cv", "k": 5, "n_train": n_samples - N_VAL, "n_val": N_VAL, "reason": f"{n_samples} items <= 5000: cheap trials are cross-validated"},
        "probe": probe,
        "candidates": [{"name": b, "classical": False} for b in backbones] + [{"name": "pixels", "classical": True}],
        "refit": True,
        "time_budget": None,
    }


def write_rows(run: Path, rows: list[dict]) -> None:
    """Rewrite the trials of ``run`` as ``rows`` (leaderboard rows, e.g. with edited scores):
    the study, rebuilt trial by trial with the edited states, scores and standard errors, and
    leaderboard.csv, its view."""
    import optuna
    from optuna.distributions import CategoricalDistribution
    from optuna.trial import TrialState, create_trial

    with (run / "leaderboard.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    db = run / "study.db"
    if not db.exists():
        return
    old = {t.number: t for t in optuna.load_study(study_name=STUDY_NAME, storage=f"sqlite:///{db}").trials}
    db.unlink()
    study = optuna.create_study(study_name=STUDY_NAME, storage=f"sqlite:///{db}", direction="maximize")
    by_number = {int(r["trial"]): r for r in rows}
    params = {n: dict(t.params) for n, t in old.items()}
    for n, r in by_number.items():  # a trial the rows add: its backbone and strategy
        params.setdefault(n, {"backbone": r["backbone"], "strategy": r["strategy"]})
    # one distribution per name across the study (Optuna's rule): categorical choices united
    choices: dict = {}
    for ps in params.values():
        for k in ("backbone", "strategy"):
            if k in ps:
                choices.setdefault(k, []).append(ps[k]) if ps[k] not in choices.get(k, []) else None
    dists = {k: d for t in old.values() for k, d in t.distributions.items()}
    dists |= {k: CategoricalDistribution(v) for k, v in choices.items()}
    for number in sorted(by_number):
        r, t = by_number[number], old.get(number)
        if t is not None and t.state == TrialState.WAITING:
            continue
        state = TrialState[r["state"]]
        attrs = (dict(t.user_attrs) if t is not None else {}) | {ATTR.STRATEGY: r["strategy"]}
        for key in ("score_se", "seconds"):
            if r.get(key) not in (None, ""):
                attrs[key] = float(r[key])
        if str(r.get("fail_reason") or "").startswith("not started"):
            attrs[ATTR.NOT_STARTED] = attrs[ATTR.FAIL_REASON] = r["fail_reason"]
        for key in ("evaluation",):
            if r.get(key):
                attrs[key] = r[key]
        study.add_trial(create_trial(
            params=params[number], distributions={k: dists[k] for k in params[number]}, state=state, user_attrs=attrs,
            value=float(r["score"]) if state == TrialState.COMPLETE and r.get("score") not in (None, "") else None,
            intermediate_values=(t.intermediate_values if t is not None and state in (TrialState.COMPLETE, TrialState.PRUNED)
                                 else None)))


@pytest.fixture
def make_run_dir(tmp_path):
    def _make(name: str = "run", **kw):
        return make_run(tmp_path, name, **kw)

    return _make
