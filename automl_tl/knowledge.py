"""The knowledge base: what finished searches found, so the next search starts from it.

Every finished ``fit`` appends one record (one JSON line) to a local file: the task's
meta-features from the profile and the probe, the best configuration of each strategy with its
score and cost, and the recommendation's regret. A new search on data of the same modality
finds the nearest past tasks (:func:`nearest`) and enqueues their winning configurations after
the table's recommendation (``automl-tl fit --no-warm-start`` ignores them); ``automl-tl
recommend`` shows them as evidence.

Where: ``$AUTOML_TL_KNOWLEDGE`` if set, else ``$XDG_DATA_HOME/automl-tl/knowledge.jsonl`` (by
default ``~/.local/share/automl-tl/knowledge.jsonl``). ``AUTOML_TL_WARM_START=0`` turns the
warm start off like ``--no-warm-start``. A small prior ships inside the package
(``automl_tl/knowledge_prior.jsonl``, built by ``benchmarks/build_prior.py`` from runs on the
offline data sets), so a fresh install already has evidence; the local records come on top.
``AUTOML_TL_PRIOR`` replaces that prior with another file of records (a team's own), or with
none when it says ``none`` (``benchmarks/recommender/suite.py`` measures the recommender with
and without it).

Distance between tasks (same modality only) is Euclidean over a few meta-features, each on a
scale where one unit is a large difference: log10 of the item count, of the class count and of
the median items per class; the best pretrained backbone's probe score and the classical
baseline's (accuracy-like, in [0, 1], times 4: a 0.25 gap is one unit); log2 of the imbalance.
It is simple on purpose: the prior holds tens of tasks, not thousands, and the weights can be
read and argued with.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

__all__ = ["backbone_evidence", "KNOWLEDGE_ENV", "WARM_START_ENV", "PRIOR_ENV", "knowledge_path", "prior_path", "active_prior",
           "warm_start_enabled",
           "task_meta", "make_record", "append_record", "read_records", "nearest", "warm_start_configs"]

log = logging.getLogger("automl_tl")

KNOWLEDGE_ENV = "AUTOML_TL_KNOWLEDGE"
WARM_START_ENV = "AUTOML_TL_WARM_START"
PRIOR_ENV = "AUTOML_TL_PRIOR"
SCHEMA = 1
#: meta-feature -> weight (one unit of weighted difference is a large difference)
META_WEIGHTS = {"log_n": 1.0, "log_classes": 1.0, "log_per_class": 1.0, "probe": 4.0, "baseline": 4.0,
                "log_imbalance": 0.5}


def knowledge_path() -> Path:
    """The local knowledge base file (it may not exist yet)."""
    explicit = os.environ.get(KNOWLEDGE_ENV)
    if explicit:
        return Path(explicit).expanduser()
    root = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(root) / "automl-tl" / "knowledge.jsonl"


def prior_path() -> Path:
    """The prior shipped inside the package."""
    return Path(__file__).with_name("knowledge_prior.jsonl")


def active_prior() -> Path | None:
    """The prior a search reads: ``$AUTOML_TL_PRIOR`` when set (None when it says ``none``),
    else the shipped one."""
    explicit = os.environ.get(PRIOR_ENV, "").strip()
    if not explicit:
        return prior_path()
    if explicit.lower() in ("none", "0", "off", "false", "no"):
        return None
    return Path(explicit).expanduser()


def warm_start_enabled(flag: bool | None = None) -> bool:
    """``flag`` when given, else False only when ``AUTOML_TL_WARM_START`` says 0 / false / no."""
    if flag is not None:
        return bool(flag)
    return os.environ.get(WARM_START_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


# ------------------------------------------------------------------------------ meta-features
def task_meta(profile, probes: Sequence[Mapping[str, Any]]) -> dict:
    """The meta-features of a task: sizes from the profile, strengths from the probe."""
    scored = [p for p in probes if "score" in p]
    pretrained = [float(p["score"]) for p in scored if not p.get("classical")]
    classical = [float(p["score"]) for p in scored if p.get("classical")]
    return {
        "modality": profile.modality,
        "n_samples": int(profile.n_samples), "n_classes": int(profile.n_classes),
        "median_per_class": float(profile.median_per_class), "imbalance_ratio": float(profile.imbalance_ratio),
        "size_category": profile.size_category,
        "probe": max(pretrained) if pretrained else None,
        "baseline": max(classical) if classical else None,
    }


def _vector(meta: Mapping[str, Any]) -> dict[str, float]:
    def lg(v, base=10):
        return math.log(max(float(v), 1.0), base)

    out = {"log_n": lg(meta.get("n_samples", 1)), "log_classes": lg(meta.get("n_classes", 2)),
           "log_per_class": lg(meta.get("median_per_class", 1)),
           "log_imbalance": lg(meta.get("imbalance_ratio", 1.0), 2)}
    for key in ("probe", "baseline"):
        if meta.get(key) is not None:
            out[key] = float(meta[key])
    return out


def distance(a: Mapping[str, Any], b: Mapping[str, Any]) -> float:
    """Weighted Euclidean distance between two tasks' meta-features (a feature missing on
    either side is left out)."""
    va, vb = _vector(a), _vector(b)
    keys = [k for k in META_WEIGHTS if k in va and k in vb]
    return math.sqrt(sum((META_WEIGHTS[k] * (va[k] - vb[k])) ** 2 for k in keys))


# ------------------------------------------------------------------------------ records
def make_record(*, meta: Mapping[str, Any], trials: Iterable, recommendation, label: str = "",
                fingerprint: str = "", seconds: float | None = None, source: str = "local",
                transferability: Mapping[str, Any] | None = None, selected: int | None = None) -> dict | None:
    """One knowledge-base record from a finished search's trials (Optuna ``FrozenTrial``), or
    None when no trial completed. ``selected``: the number of the trial the search selected (the
    one-standard-error rule), its winner for the warm start."""
    done = [t for t in trials if t.state.name == "COMPLETE" and t.value is not None and t.params.get("backbone")]
    if not done:
        return None
    by_strategy: dict[str, dict] = {}
    by_backbone: dict[str, dict] = {}
    chosen = None
    for t in done:
        strategy = t.user_attrs.get("strategy") or t.params.get("strategy")
        seconds_t = t.user_attrs.get("seconds")
        if seconds_t is None and t.datetime_start and t.datetime_complete:
            seconds_t = (t.datetime_complete - t.datetime_start).total_seconds()
        entry = {"strategy": strategy, "score": float(t.value), "params": dict(t.params), "trial": t.number,
                 "seconds": None if seconds_t is None else round(float(seconds_t), 1)}
        # each strategy's best (which strategy wins at which size) and each backbone's best (the
        # best pretrained configuration of a task that a classical featurizer won)
        for table, key in ((by_strategy, strategy), (by_backbone, t.params["backbone"])):
            if key not in table or entry["score"] > table[key]["score"]:
                table[key] = entry
        if t.number == selected:
            chosen = entry
    top = max(by_strategy.values(), key=lambda r: r["score"])
    rec = next((t for t in done if t.user_attrs.get("recommended")), None)
    return {
        "schema": SCHEMA, "source": source, "label": label, "fingerprint": fingerprint,
        "written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "meta": dict(meta),
        "best": {"strategy": top["strategy"], "backbone": top["params"]["backbone"], "score": top["score"],
                 "params": top["params"]},
        "by_strategy": by_strategy,
        "by_backbone": by_backbone,
        "selected": chosen,
        "recommended": None if rec is None else {"strategy": recommendation.strategy, "score": float(rec.value),
                                                 "regret": round(top["score"] - float(rec.value), 4)},
        "fit_seconds": None if seconds is None else round(float(seconds), 1),
        # how well the probe and the proxies ranked the backbones here (Kendall's tau per measure)
        "tau": {k: v.get("tau") for k, v in ((transferability or {}).get("tau") or {}).items()},
        "transferability": dict((transferability or {}).get("by_candidate") or {}),
    }


def append_record(record: Mapping[str, Any], path: Path | None = None) -> Path:
    """Append ``record`` as one line (a single write of one line: a crash leaves the earlier
    lines whole, and a torn last line is skipped when read)."""
    path = Path(path or knowledge_path())
    if path.exists() and not _ours(path):
        raise FileExistsError(f"{path} is not an automl-tl knowledge base (its first line is not a record); "
                              f"it is left as it is")
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(record, sort_keys=True, default=str) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, line.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    return path


def _valid(rec: Any) -> bool:
    """A record this version can use: the fields :func:`nearest` and :func:`warm_start_configs`
    read, with the right types."""
    try:
        if not (isinstance(rec, dict) and rec.get("schema") == SCHEMA and isinstance(rec["meta"], dict)
                and isinstance(rec["meta"].get("modality"), str) and isinstance(rec["best"], dict)):
            return False
        float(rec["best"]["score"])
        for entry in _configurations(rec):
            if not (isinstance(entry["params"], dict) and isinstance(entry["strategy"], str)):
                return False
            float(entry["score"])
        _vector(rec["meta"])
        return True
    except (KeyError, TypeError, ValueError, AttributeError):
        return False


def _configurations(rec: Mapping[str, Any]) -> list[dict]:
    """A record's configurations: the selected one first (when recorded), then each strategy's
    and each backbone's best (records written before "selected" / "by_backbone" have each
    strategy's best only)."""
    return [*([rec["selected"]] if rec.get("selected") else []), *(rec.get("by_strategy") or {}).values(),
            *(rec.get("by_backbone") or {}).values()]


def _ours(path: Path) -> bool:
    """An empty file, or one whose first line is a knowledge-base record: never append to a file
    automl-tl did not write (``$AUTOML_TL_KNOWLEDGE`` pointed at the wrong file)."""
    try:
        with open(path, encoding="utf-8") as f:
            first = f.readline()
    except (OSError, UnicodeDecodeError):
        return False
    if not first.strip():
        return True
    try:
        return _valid(json.loads(first))
    except ValueError:
        return False


def read_records(paths: Sequence[Path] | None = None) -> list[dict]:
    """Records of the prior and the local file (unreadable lines skipped). A task searched again
    (same fingerprint) keeps its latest record."""
    if paths is None:
        paths = [p for p in (active_prior(), knowledge_path()) if p is not None]
    paths = list(paths)
    out: dict[str, dict] = {}
    for path in paths:
        try:
            lines = Path(path).read_text(encoding="utf-8").splitlines()
        except OSError:
            continue
        for i, line in enumerate(lines):
            try:
                rec = json.loads(line)
            except ValueError:
                rec = None
            if not _valid(rec):  # a torn line, another program's, an edited one
                log.debug("knowledge base %s line %d is not a record; skipped", path, i + 1)
                continue
            key = rec.get("fingerprint") or f"{path}:{i}"
            out[key] = rec
    return list(out.values())


def backbone_evidence(modality: str, records: Sequence[Mapping[str, Any]], *,
                      exclude_fingerprint: str | None = None) -> dict[str, float]:
    """What the past tasks of ``modality`` say each backbone is worth: for each backbone that ran
    there, the mean over those tasks of its best score minus the task's best (0: it was the best
    everywhere it ran; -0.05: five points behind on average). The probe embeds the candidates in
    this order under a time budget (:func:`automl_tl.probe.probe_order`); a backbone no record
    mentions has no entry."""
    gaps: dict[str, list[float]] = {}
    for rec in records:
        if rec["meta"].get("modality") != modality or (exclude_fingerprint and rec.get("fingerprint") == exclude_fingerprint):
            continue
        scores = {name: float(entry["score"]) for name, entry in (rec.get("by_backbone") or {}).items()
                  if isinstance(entry, Mapping) and entry.get("score") is not None}
        if not scores:
            continue
        best = max(scores.values())
        for name, score in scores.items():
            gaps.setdefault(name, []).append(score - best)
    return {name: sum(v) / len(v) for name, v in gaps.items()}


def nearest(meta: Mapping[str, Any], records: Sequence[Mapping[str, Any]], k: int = 3, *,
            exclude_fingerprint: str | None = None) -> list[tuple[float, dict]]:
    """The ``k`` past tasks of the same modality nearest to ``meta``, nearest first."""
    same = [r for r in records if r["meta"].get("modality") == meta.get("modality")
            and not (exclude_fingerprint and r.get("fingerprint") == exclude_fingerprint)]
    return sorted(((distance(meta, r["meta"]), r) for r in same), key=lambda t: t[0])[:k]


def warm_start_configs(meta: Mapping[str, Any], records, *, backbones: Iterable[str], strategies: Iterable[str],
                       k: int = 3, exclude_fingerprint: str | None = None) -> list[dict]:
    """The winning configurations of the nearest past tasks that this search can run (their
    backbone and strategy are among this run's), nearest task first, one per task.

    A task's winner is the configuration its search selected (the one-standard-error rule), not
    its top validation score: at a few hundred items that maximum is mostly noise (the suite of
    docs/benchmarks.md, judged on test: the search's top validation trial lost to the
    recommendation in 4 of 8 tasks, by 1.6 to 3 points). Where the selected configuration cannot
    run here, the task's best one that can.

    The caller leaves classical featurizers out of ``backbones``: every search probes its
    classical baseline anyway, so a past task that one won is represented by its best pretrained
    configuration (suite: speech10's nearest task was won by MFCC statistics, 10 points below
    speech10's best on its test set)."""
    backbones, strategies = set(backbones), set(strategies)
    out = []
    for dist, rec in nearest(meta, records, k, exclude_fingerprint=exclude_fingerprint):
        configs = _configurations(rec)
        selected = configs[:1] if rec.get("selected") else []
        options = selected + sorted(configs[len(selected):], key=lambda r: -r["score"])
        pick = next((o for o in options if o["params"].get("backbone") in backbones
                     and o.get("strategy") in strategies), None)
        if pick is not None:
            out.append({"params": dict(pick["params"]) | {"strategy": pick["strategy"]}, "score": pick["score"],
                        "distance": round(dist, 3),
                        "label": rec.get("label") or rec.get("fingerprint", "")[:12], "source": rec.get("source")})
    return out
