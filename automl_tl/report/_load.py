"""Read a run directory into one plain structure, tolerating missing optional files and running runs.

The trials come from the Optuna study (``study.db``), the run's single record (see
:mod:`automl_tl.schema`): parameters, states, scores, learning curves and failure reasons as the
engine recorded them, RUNNING trials included. Only when there is no readable study (a run
whose storage was a database server, or a copied folder) does ``leaderboard.csv``, the study's
published view, stand in for it. Runs written before schema 2 kept learning curves in
``trials/<n>.json``; those are still read.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from automl_tl.report._io import read_csv, read_json, to_bool, to_float, to_int

from automl_tl.schema import ATTR, NOISE_COLUMNS, PARAM_COLUMNS, STUDY_NAME, trial_rows

__all__ = ["RunData", "load_run", "PARAM_COLUMNS", "NOISE_COLUMNS", "STUDY_NAME"]
_FLOAT_COLUMNS = {"head_lr", "backbone_lr", "dropout", "score", "seconds", "score_se"}
_INT_COLUMNS = {"unfreeze_blocks", "head_units", "head_epochs", "ft_epochs", "n_eval"}
_FINAL_STATES = {"COMPLETE", "PRUNED", "FAIL"}

log = logging.getLogger(__name__)


@dataclass
class RunData:
    run_dir: Path
    summary: dict[str, Any]
    trials: list[dict[str, Any]]
    labels: list[str]
    baseline: dict[str, Any] | None
    predictions: list[dict[str, str]] | None
    split: dict[str, Any] | None
    config: dict[str, Any] | None
    study: Any = None  # optuna.Study or None
    direction: str = "maximize"
    files: dict[str, bool] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def _norm_state(value: Any) -> str:
    s = str(value or "").strip().upper()
    if s.startswith("TRIALSTATE."):
        s = s.split(".", 1)[1]
    return {"FAILED": "FAIL", "COMPLETED": "COMPLETE", "DONE": "COMPLETE"}.get(s, s or "UNKNOWN")


def _norm_value(key: str, value: Any) -> Any:
    if key in _FLOAT_COLUMNS:
        return to_float(value)
    if key in _INT_COLUMNS:
        out = to_int(value)
        if out is None and isinstance(value, str) and value.strip():
            return value.strip()
        return out
    if key == "augment":
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        return to_bool(value)
    if key in ("options", "extra"):
        if isinstance(value, (dict, list)):
            return json.dumps(value, sort_keys=True)
        return None if value is None or str(value).strip() == "" else str(value)
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip() or None
    return value


def _empty_trial(number: int) -> dict[str, Any]:
    row: dict[str, Any] = {"trial": number, "state": "UNKNOWN"}
    for k in PARAM_COLUMNS:
        row[k] = None
    row.update(score=None, seconds=None, recommended=False, fail_reason=None, history=None, source=None)
    row.update({k: None for k in NOISE_COLUMNS}, not_started=False)
    return row


def _fill_noise(row: dict[str, Any], source: dict[str, Any], *, force: bool = False) -> None:
    """score_se / evaluation / n_eval from a trial file or user_attrs, where the row lacks them."""
    for k in NOISE_COLUMNS:
        if (force or row.get(k) is None) and source.get(k) not in (None, ""):
            row[k] = _norm_value(k, source[k])


def _not_started(state: str, reason: Any) -> bool:
    """A trial the time budget did not let start: PRUNED, its reason "not started: ..."."""
    return state == "PRUNED" and str(reason or "").strip().lower().startswith("not started")


def _from_leaderboard(rows: list[dict[str, str]], warnings: list[str]) -> dict[int, dict[str, Any]]:
    out: dict[int, dict[str, Any]] = {}
    for raw in rows:
        number = to_int(raw.get("trial"))
        if number is None:
            warnings.append(f"leaderboard.csv row without a trial number skipped: {dict(raw)!r:.120}")
            continue
        row = _empty_trial(number)
        row["state"] = _norm_state(raw.get("state"))
        for k in PARAM_COLUMNS + ("score", "seconds") + NOISE_COLUMNS:
            if k in raw:
                row[k] = _norm_value(k, raw.get(k))
        row["recommended"] = to_bool(raw.get("recommended"))
        row["fail_reason"] = (raw.get("fail_reason") or "").strip() or None
        row["not_started"] = _not_started(row["state"], row["fail_reason"])
        row["source"] = "leaderboard"
        out[number] = row
    return out


def _merge_trial_file(rows: dict[int, dict[str, Any]], data: dict[str, Any]) -> None:
    number = to_int(data.get("number"))
    if number is None:
        return
    params = data.get("params") or {}
    row = rows.get(number)
    state = _norm_state(data.get("state"))
    if row is None:
        row = _empty_trial(number)
        row["source"] = "trial_file"
        rows[number] = row
        row["state"] = state
        row["score"] = to_float(data.get("score"))
        row["seconds"] = to_float(data.get("seconds"))
        row["fail_reason"] = data.get("fail_reason") or None
        row["recommended"] = to_bool(data.get("recommended", params.get("recommended")))
    elif row["state"] in {"RUNNING", "UNKNOWN", "WAITING"} and state in _FINAL_STATES:
        # the leaderboard was written before this trial finished: the trial file is newer
        row["state"] = state
        row["score"] = to_float(data.get("score"))
        row["seconds"] = to_float(data.get("seconds"))
        row["fail_reason"] = data.get("fail_reason") or row["fail_reason"]
        _fill_noise(row, data, force=True)
    _fill_noise(row, data)
    for k in PARAM_COLUMNS:
        if row.get(k) is None and k in params:
            row[k] = _norm_value(k, params[k])
    hist = data.get("history")
    if isinstance(hist, list):
        row["history"] = [h for h in hist if isinstance(h, dict)]


def _read_only_storage(path: Path):
    """An Optuna storage on ``path`` that never writes: read-only SQLite URI, no table creation."""
    import optuna
    from urllib.parse import quote

    resolved = path.resolve()
    try:
        storage = optuna.storages.RDBStorage(f"sqlite:///file:{quote(str(resolved))}?mode=ro&uri=true", skip_table_creation=True)
        optuna.get_all_study_names(storage=storage)
        return storage
    except Exception:  # odd path for a URI, old SQLite: plain URL, still without creating tables
        return optuna.storages.RDBStorage(f"sqlite:///{resolved}", skip_table_creation=True)


def _load_study(path: Path | None, warnings: list[str], url: str | None = None):
    """The run's study from its ``study.db`` (``path``, opened read-only) or a storage ``url``."""
    try:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        storage = _read_only_storage(path) if url is None else optuna.storages.RDBStorage(url, skip_table_creation=True)
        names = optuna.get_all_study_names(storage=storage)
        if STUDY_NAME in names:
            name = STUDY_NAME
        elif len(names) == 1:
            name = names[0]
        else:
            warnings.append(f"study.db holds no study named {STUDY_NAME!r} (found {names}); Optuna sections omitted.")
            return None
        return optuna.load_study(study_name=name, storage=storage)
    except Exception as exc:  # locked, corrupt, incompatible version...
        warnings.append(f"study.db could not be opened ({type(exc).__name__}: {exc}); Optuna sections omitted.")
        return None


def _from_study(study, warnings: list[str]) -> dict[int, dict[str, Any]]:
    """Every trial of the study as a row (the engine's own leaderboard rows, plus the learning
    curve and whether the trial was never started)."""
    try:
        frozen = study.get_trials(deepcopy=False)
    except Exception as exc:
        warnings.append(f"study.db trials could not be read ({type(exc).__name__}: {exc}).")
        return {}
    by_number = {t.number: t for t in frozen}
    out: dict[int, dict[str, Any]] = {}
    for rec in trial_rows(frozen):
        t = by_number[rec["trial"]]
        row = _empty_trial(t.number)
        row["state"] = _norm_state(rec["state"])
        for k in PARAM_COLUMNS + ("score", "seconds") + NOISE_COLUMNS:
            row[k] = _norm_value(k, rec.get(k))
        attrs = t.user_attrs or {}
        if row["seconds"] is None and t.datetime_start is not None and t.datetime_complete is not None:
            row["seconds"] = (t.datetime_complete - t.datetime_start).total_seconds()
        row["recommended"] = bool(rec["recommended"])
        row["fail_reason"] = rec["fail_reason"] or None
        row["not_started"] = bool(attrs.get(ATTR.NOT_STARTED)) and row["state"] == "PRUNED"
        if row["not_started"]:
            row["fail_reason"] = row["fail_reason"] or str(attrs[ATTR.NOT_STARTED])
        hist = attrs.get(ATTR.HISTORY)
        if isinstance(hist, list):
            row["history"] = [h for h in hist if isinstance(h, dict)]
        row["source"] = "study"
        out[t.number] = row
    return out


_RUN_FILES = (
    "summary.json",
    "leaderboard.csv",
    "trials",
    "study.db",
    "split.json",
    "baseline.json",
    "config.json",
    "labels.json",
    "val_predictions.csv",
    "model.keras",
)


def _run_files(run_dir: Path) -> dict[str, bool]:
    """Which of the run's files exist; NotFittedError when ``run_dir`` is not a run directory."""
    from automl_tl.errors import NotFittedError

    if not run_dir.is_dir():
        raise NotFittedError(f"{run_dir} is not a directory; pass the run directory that `automl-tl fit` wrote.")
    files = {name: (run_dir / name).exists() for name in _RUN_FILES}
    if not any(files[k] for k in ("summary.json", "leaderboard.csv", "trials", "study.db")):
        raise NotFittedError(
            f"{run_dir} holds no summary.json, leaderboard.csv, trials/ or study.db: "
            "it is not an automl-tl run directory (or fit has not started writing it)."
        )
    return files


def _read_summary(run_dir: Path, files: dict[str, bool], warnings: list[str]) -> dict[str, Any]:
    """summary.json as a dict (empty, with a warning, when it is missing or not an object)."""
    summary = read_json(run_dir / "summary.json", warnings)
    if isinstance(summary, dict):
        return summary
    if files["summary.json"]:
        warnings.append("summary.json is not a JSON object; profile and recommendation are unknown.")
    else:
        warnings.append("summary.json is missing; profile and recommendation are unknown.")
    return {}


def _read_trials(run_dir: Path, files: dict[str, bool], with_study: bool, warnings: list[str],
                 storage: str | None = None) -> tuple[Any, str, dict[int, dict[str, Any]]]:
    """(study, direction, trial rows): from the study (``study.db``, or the ``storage`` URL) when it
    can be read, else from leaderboard.csv, legacy trial files merged in."""
    study = None
    direction = "maximize"
    rows: dict[int, dict[str, Any]] = {}
    if with_study and (files["study.db"] or storage):
        study = _load_study(run_dir / "study.db", warnings, url=storage)
        if study is not None:
            try:
                direction = study.direction.name.lower()
            except Exception:  # multi-objective: not ours
                direction = "maximize"
            rows = _from_study(study, warnings)
    if not rows:  # no readable study: its published view stands in
        lb = read_csv(run_dir / "leaderboard.csv", warnings)
        if lb is not None:
            rows.update(_from_leaderboard(lb, warnings))
    _merge_trial_files(run_dir / "trials", rows, warnings)
    return study, direction, rows


def _merge_trial_files(tdir: Path, rows: dict[int, dict[str, Any]], warnings: list[str]) -> None:
    """Runs before schema 2: learning curves (and trials) in trials/<n>.json, merged into ``rows``."""
    if not tdir.is_dir():
        return

    def _key(p: Path):
        n = to_int(p.stem)
        return (n is None, n if n is not None else 0, p.name)

    for p in sorted(tdir.glob("*.json"), key=_key):
        data = read_json(p, warnings)
        if isinstance(data, dict):
            if data.get("number") is None and to_int(p.stem) is not None:
                data = dict(data, number=to_int(p.stem))
            _merge_trial_file(rows, data)


def _pick_labels(labels_json: Any, summary: dict[str, Any], config: Any, split: Any) -> list[str]:
    """The class labels: labels.json, else summary.json, config.json or split.json, whichever has them first."""
    for cand in (
        labels_json if isinstance(labels_json, list) else None,
        summary.get("labels"),
        (config or {}).get("labels") if isinstance(config, dict) else None,
        (split or {}).get("labels") if isinstance(split, dict) else None,
    ):
        if isinstance(cand, list) and cand:
            return [str(x) for x in cand]
    return []


def _read_baseline(run_dir: Path, summary: dict[str, Any], warnings: list[str]) -> dict[str, Any] | None:
    """The classical baseline: newer runs keep it in summary.json; older ones wrote baseline.json."""
    baseline = summary.get("baseline") if isinstance(summary.get("baseline"), dict) else None
    if baseline is None:
        baseline = read_json(run_dir / "baseline.json", warnings)
        baseline = baseline if isinstance(baseline, dict) else None
    return baseline


def load_run(run_dir: str | Path, *, with_study: bool = True, storage: str | None = None) -> RunData:
    """Read ``run_dir``: the summary, the trials, the labels, the baseline and the validation
    predictions; the trials from the study at ``storage`` (a SQLAlchemy URL) when given."""
    run_dir = Path(run_dir)
    files = _run_files(run_dir)
    warnings: list[str] = []
    summary = _read_summary(run_dir, files, warnings)
    study, direction, rows = _read_trials(run_dir, files, with_study, warnings, storage)
    task_dir = str((summary.get("task") or {}).get("direction") or "").lower()
    if task_dir in {"maximize", "minimize"}:
        direction = task_dir
    labels_json = read_json(run_dir / "labels.json", warnings)
    config = read_json(run_dir / "config.json", warnings)
    split = read_json(run_dir / "split.json", warnings)
    labels = _pick_labels(labels_json, summary, config, split)
    baseline = _read_baseline(run_dir, summary, warnings)
    predictions = read_csv(run_dir / "val_predictions.csv", warnings)
    return RunData(
        run_dir=run_dir,
        summary=summary,
        trials=[rows[k] for k in sorted(rows)],
        labels=labels,
        baseline=baseline,
        predictions=predictions,
        split=split if isinstance(split, dict) else None,
        config=config if isinstance(config, dict) else None,
        study=study,
        direction=direction,
        files=files,
        warnings=warnings,
    )
