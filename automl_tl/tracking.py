"""Experiment tracking: a fit mirrored into MLflow (``fit --mlflow URI``,
``AutoTransfer(tracking_uri=...)``; docs/deploy.md, "Track").

The Optuna study is the record (:mod:`automl_tl.schema`); MLflow mirrors it and only ever adds
what it lacks, so the same command run again (a resumed fit) logs the new trials and nothing twice:

- one parent run per study in a run directory, found again by its tag ``automl_tl.run_key`` (a
  hash of the run directory's absolute path and of when the study's first trial started: a run
  directory emptied and fitted again gets a new parent run, not the old study's trials): the
  task's settings as parameters, the dataset profile as tags (``modality``, ``n_items``,
  ``classes``, ``balance``, ``groups``, ...), the selected and the top score and the trial counts
  as metrics (step: the trials finished), and as artifacts the delivered model (``model/``), the
  report (``report/``), ``leaderboard.csv`` and ``summary.json``;
- one nested run per finished trial, found again by its tag ``automl_tl.trial``: the trial's
  parameters, its score, standard error and seconds, its learning curve as step metrics
  (``head_loss``, ``fine_tune_val_score``, ... by epoch) and its fate (:func:`trial_fate`).

Each trial is logged as it finishes (an Optuna callback of the search loop, :meth:`Tracker.callbacks`)
and whatever is still missing is logged at the end of the fit (:meth:`Tracker.finish`), with the
artifacts. Tracking never costs the fit: its first failure (a server that is down, a database that
cannot be written) is one warning line, tracking stops for the rest of the fit, and the fit goes on
and delivers; the same command later logs what is missing. A URI that MLflow cannot read at all is
refused before the fit starts (exit 2), as is a missing MLflow (:data:`INSTALL_HINT`).

Why MLflow's own client (``mlflow.MlflowClient``) and not Optuna's ``MLflowCallback``
(optuna-integration): that callback logs one flat run per trial through MLflow's fluent API (one
process-wide active run), with no parent run and no memory of what it logged, so a resumed study
would be logged twice; and it knows nothing of what this study keeps in its user attributes (the
standard error, the learning curve, why a trial failed or was not run). The client takes explicit
run ids, so the mirror can look up what is there and add only what is missing.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import time
from importlib import import_module
from pathlib import Path
from typing import Any, Iterator, Mapping
from urllib.parse import urlsplit

from automl_tl.errors import ConfigError
from automl_tl.schema import ATTR, COUNT_KEYS, STUDY_NAME, SUMMARY_ATTR, trial_counts

__all__ = ["INSTALL_HINT", "EXPERIMENT", "TAG", "Tracker", "check_tracking_uri", "trial_fate"]

log = logging.getLogger("automl_tl")

INSTALL_HINT = "pip install 'automl-tl[mlflow]'"
#: the MLflow experiment the runs go to, unless ``MLFLOW_EXPERIMENT_NAME`` names another
EXPERIMENT = "automl-tl"


class TAG:
    """The tags the mirror finds its runs by (MLflow's own ``mlflow.*`` names included)."""

    RUN_KEY = "automl_tl.run_key"  # the parent run of a study in a run directory (see run_key)
    RUN_DIR = "automl_tl.run_dir"
    TRIAL = "automl_tl.trial"  # a nested run's trial number
    FATE = "automl_tl.fate"
    ARTIFACTS = "automl_tl.artifacts"  # what each group of the parent's artifacts was uploaded from
    PARENT = "mlflow.parentRunId"  # MLflow's tag that nests a run under another


#: a trial's fate -> the status of its MLflow run
_STATUS = {"completed": "FINISHED", "failed": "FAILED", "interrupted": "FAILED"}  # the rest: KILLED

#: the user attributes of a trial that become tags of its run
_TRIAL_TAGS = (ATTR.STRATEGY, ATTR.EVALUATION, ATTR.FAIL_REASON, ATTR.NOT_STARTED, ATTR.REPEAT_OF,
               ATTR.TRAILS, ATTR.RETRY_OF, ATTR.RECOMMENDED, ATTR.PROBE, ATTR.TABLE_HEAD, ATTR.WARM_START,
               ATTR.STRATEGY_TOUR, ATTR.STOPPED_EARLY, ATTR.BATCH_SIZE)

#: MLflow's HTTP client retries a failed request 7 times with a backoff factor of 2: minutes against
#: a server that is down. While it mirrors a fit (unless the user set these), a server that does not
#: answer is given up after a few seconds: the fit waits that long for tracking, not minutes.
_HTTP_PATIENCE = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                  "MLFLOW_HTTP_REQUEST_TIMEOUT": "30"}


def _mlflow():
    try:
        import mlflow
    except ImportError as exc:
        raise ConfigError(f"tracking to MLflow (--mlflow, tracking_uri=) needs MLflow, which is not "
                          f"installed: {INSTALL_HINT} ({exc})") from exc
    return mlflow


def shown(uri: str) -> str:
    """``uri`` with its password, if it holds one, as ``***``."""
    try:
        parts = urlsplit(uri)
        if parts.password:
            return uri.replace(f":{parts.password}@", ":***@", 1)
    except ValueError:
        pass
    return uri


def check_tracking_uri(uri: str | None) -> None:
    """Refuse (:class:`~automl_tl.errors.ConfigError`, exit 2), before a fit starts, a tracking
    ``uri`` that MLflow cannot read at all, and a missing MLflow. Nothing is contacted or written:
    a server that is down is found later, and only warned about."""
    if uri is None:
        return
    example = "e.g. http://localhost:5000, sqlite:///mlflow.db or a folder"
    if not isinstance(uri, str) or not uri.strip():
        raise ConfigError(f"the MLflow tracking URI is empty: give one, {example}")
    _mlflow()
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as exc:
        raise ConfigError(f"the MLflow tracking URI {shown(uri)!r} cannot be read ({exc}): {example}") from None
    if parts.scheme in ("http", "https") and not parts.hostname:
        raise ConfigError(f"the MLflow tracking URI {shown(uri)!r} names no host: {example}")
    if parts.scheme == "sqlite" and not parts.path.strip("/"):
        raise ConfigError(f"the MLflow tracking URI {shown(uri)!r} names no database file: e.g. "
                          f"sqlite:///mlflow.db (relative) or sqlite:////srv/mlflow.db (absolute)")
    if parts.scheme in ("", "file"):
        allowed = getattr(import_module("mlflow.environment_variables"), "MLFLOW_ALLOW_FILE_STORE", None)
        if allowed is not None and not allowed.get():  # newer MLflow keeps runs in a folder only on request
            raise ConfigError(f"MLflow {_mlflow().__version__} no longer tracks into a folder ({shown(uri)!r}) "
                              f"unless MLFLOW_ALLOW_FILE_STORE=true is set: give a database instead, e.g. "
                              f"sqlite:///mlflow.db, or a server, e.g. http://localhost:5000")
    try:  # the schemes MLflow has a store for (its plugins' too); a private name, so only if it is there
        from mlflow.tracking._tracking_service.utils import _tracking_store_registry as registry
    except ImportError:
        return
    try:
        registry.get_store_builder(uri)
    except Exception:  # noqa: BLE001 - MLflow's "unsupported URI" types moved between versions
        known = sorted(s for s in getattr(registry, "_registry", {}) if s)
        raise ConfigError(f"MLflow has no tracking store for the URI {shown(uri)!r} (scheme {parts.scheme!r}; "
                          f"it knows {', '.join(known)}): {example}") from None


def trial_fate(t) -> str:
    """What became of a finished trial, in a word: ``completed``, ``pruned``, ``failed``,
    ``interrupted`` (the process ended or a Ctrl-C came first; retried when the command runs
    again), or, for a proposal that was recorded but not run (:data:`~automl_tl.schema.ATTR`
    ``not_started``): ``repeat`` (of a finished trial), ``left out`` (a new head on features that
    trail far behind) or ``not started`` (no time or trial budget left)."""
    a = t.user_attrs
    state = t.state.name
    if state == "COMPLETE":
        return "completed"
    if a.get(ATTR.NOT_STARTED):
        if a.get(ATTR.REPEAT_OF) is not None:
            return "repeat"
        return "left out" if a.get(ATTR.TRAILS) is not None else "not started"
    if state == "PRUNED":
        return "pruned"
    reason = str(a.get(ATTR.FAIL_REASON) or "")
    return "interrupted" if not reason or reason.startswith("interrupted") else "failed"


def _key(name: str) -> str:
    """A parameter or metric name MLflow takes everywhere (no ``:``, which Windows refuses)."""
    return re.sub(r"[^\w./ -]", ".", str(name))[:250]


def _text(value: Any, limit: int = 5000) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text[:limit]


def _ms(when) -> int:
    return int((when.timestamp() if when is not None else time.time()) * 1000)


def _number(value) -> float | None:
    try:
        return float(value) if value is not None and not isinstance(value, (bool, str)) else None
    except (TypeError, ValueError):
        return None


def run_key(run_dir, trials) -> str:
    """The tag value the parent run of the study of ``trials`` in ``run_dir`` is found by: the run
    directory's absolute path and when the study's first trial started, hashed. The start of its
    first trial never changes once the study has one (the mirror first connects after a trial),
    and tells the study of a run directory that was emptied and fitted again from the old one."""
    first = min((t.datetime_start for t in trials if t.datetime_start is not None), default=None)
    return hashlib.sha1(f"{Path(run_dir).resolve()}\n{first.isoformat() if first else ''}".encode()).hexdigest()[:20]


@contextlib.contextmanager
def _calm() -> Iterator[None]:
    """MLflow's HTTP patience bounded (:data:`_HTTP_PATIENCE`, where the user set none) and its
    information lines ("Creating initial MLflow database tables...") and urllib3's retry warnings
    held back while it mirrors: a failure is the one warning line of :meth:`Tracker._guarded`."""
    added = {k: v for k, v in _HTTP_PATIENCE.items() if k not in os.environ}
    loggers = [logging.getLogger(n) for n in ("mlflow", "alembic", "urllib3")]
    levels = [lg.level for lg in loggers]
    os.environ.update(added)
    for lg in loggers:
        lg.setLevel(max(lg.level, logging.ERROR if lg.name == "urllib3" else logging.WARNING))
    try:
        yield
    finally:
        for k in added:
            os.environ.pop(k, None)
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _every_run(client, experiment: str, filter_string: str):
    token = None
    while True:
        page = client.search_runs([experiment], filter_string=filter_string, max_results=1000, page_token=token)
        yield from page
        token = page.token
        if not token:
            return


def _artifact_location(uri: str) -> str | None:
    """Where a new experiment keeps its artifacts: for a SQLite database, beside it
    (``mlartifacts/``), rather than MLflow's default ``./mlruns`` under whatever folder the fit
    runs in; elsewhere MLflow's (a server's own artifact store)."""
    if not uri.startswith("sqlite:///"):
        return None
    return (Path(uri[len("sqlite:///"):]).resolve().parent / "mlartifacts").as_uri()


class Tracker:
    """The MLflow mirror of one fit's study, for the run directory ``run_dir``; with no ``uri``
    it does nothing."""

    def __init__(self, uri: str | None, run_dir) -> None:
        check_tracking_uri(uri)
        self.uri = uri
        self.run_dir = Path(run_dir).resolve()
        self.broken = False  # after the first failure, nothing more is tried in this fit
        self._client = None
        self._experiment = ""
        self._parent = ""
        self._parent_data: dict[str, dict] = {}
        self._logged: set[int] = set()

    def callbacks(self) -> list:
        """Optuna callbacks for the search loop: each finished trial logged at once."""
        return [self._after_trial] if self.uri else []

    def _after_trial(self, study, trial) -> None:
        self._guarded(lambda: self._sync(study, final=False))

    def finish(self, study) -> None:
        """At the end of a fit: every finished trial not logged yet, the parent's tags and metrics,
        the delivered model and the report; the parent run marked finished."""
        self._guarded(lambda: self._sync(study, final=True))

    def _guarded(self, step) -> None:
        if self.uri is None or self.broken:
            return
        try:
            with _calm():
                step()
        except Exception as exc:  # noqa: BLE001 - tracking never costs the fit (see the module)
            self.broken = True
            what = (str(exc).strip().splitlines() or [""])[0][:200]
            log.warning("MLflow tracking to %s stopped, the fit goes on (%s: %s); the same command "
                        "again logs what is missing", shown(self.uri), type(exc).__name__, what)

    # ------------------------------------------------------------------ the mirror
    def _sync(self, study, *, final: bool) -> None:
        trials = study.get_trials(deepcopy=False)
        if self._client is None:
            self._connect(trials)
        finished = [t for t in trials if t.state.is_finished()]
        for t in finished:
            if t.number not in self._logged:
                self._log_trial(t)
        summary = study.user_attrs.get(SUMMARY_ATTR) or {}
        self._log_parent(summary, trials, step=len(finished))
        if final:
            self._log_artifacts()
            self._client.set_terminated(self._parent, status="FINISHED")

    def _connect(self, trials) -> None:
        """The client, the experiment and the parent run (found by its tag, else created, and
        marked running); the trials it holds complete runs of. A nested run left running (its
        process ended while logging it) is deleted, to be logged again whole."""
        client = _mlflow().MlflowClient(tracking_uri=self.uri)
        self._experiment = self._experiment_id(client)
        key = run_key(self.run_dir, trials)
        found = client.search_runs([self._experiment], filter_string=f"tags.`{TAG.RUN_KEY}` = '{key}'",
                                   max_results=1, order_by=["attributes.start_time ASC"])
        if found:
            parent = found[0]
            client.update_run(parent.info.run_id, status="RUNNING")
        else:
            parent = client.create_run(self._experiment, run_name=self.run_dir.name, tags={
                TAG.RUN_KEY: key, TAG.RUN_DIR: str(self.run_dir), "automl_tl.study": STUDY_NAME})
        self._parent = parent.info.run_id
        self._parent_data = {"params": dict(parent.data.params), "tags": dict(parent.data.tags)}
        for run in _every_run(client, self._experiment, f"tags.`{TAG.PARENT}` = '{self._parent}'"):
            number = run.data.tags.get(TAG.TRIAL)
            if number is None:
                continue
            if run.info.status == "RUNNING":
                client.delete_run(run.info.run_id)
            else:
                self._logged.add(int(number))
        self._client = client

    def _experiment_id(self, client) -> str:
        name = os.environ.get("MLFLOW_EXPERIMENT_NAME") or EXPERIMENT
        exp = client.get_experiment_by_name(name)
        if exp is None:
            try:
                return client.create_experiment(name, artifact_location=_artifact_location(self.uri))
            except Exception:  # noqa: BLE001 - another process created it meanwhile
                exp = client.get_experiment_by_name(name)
                if exp is None:
                    raise
        if exp.lifecycle_stage != "active":
            raise RuntimeError(f"the MLflow experiment {name!r} is deleted: restore it, or set "
                               f"MLFLOW_EXPERIMENT_NAME to another name")
        return exp.experiment_id

    def _log_trial(self, t) -> None:
        from mlflow.entities import Metric, Param, RunTag

        fate, a = trial_fate(t), t.user_attrs
        end = _ms(t.datetime_complete)
        run = self._client.create_run(self._experiment, start_time=_ms(t.datetime_start), run_name=f"trial {t.number}",
                                      tags={TAG.PARENT: self._parent, TAG.TRIAL: str(t.number), TAG.FATE: fate})
        params = {_key(k): _text(v, 500) for k, v in t.params.items()}
        if a.get(ATTR.STRATEGY):
            params.setdefault("strategy", str(a[ATTR.STRATEGY]))
        values = {"score": t.value, "score_se": a.get(ATTR.SCORE_SE), "seconds": a.get(ATTR.SECONDS),
                  "n_eval": a.get(ATTR.N_EVAL)}
        metrics = [Metric(k, v, end, 0) for k, v in ((k, _number(v)) for k, v in values.items()) if v is not None]
        for point in a.get(ATTR.HISTORY) or ():  # the learning curve: {"phase", "epoch", "loss", "val_score"}
            for name in ("loss", "val_score"):
                value = _number(point.get(name))
                if value is not None:
                    metrics.append(Metric(_key(f"{point.get('phase', 'train')}_{name}"), value, end,
                                          int(point.get("epoch") or 0)))
        tags = {"state": t.state.name} | {k: _text(a[k]) for k in _TRIAL_TAGS if a.get(k) not in (None, "", False)}
        self._client.log_batch(run.info.run_id, metrics=metrics, params=[Param(k, v) for k, v in params.items()],
                               tags=[RunTag(k, v) for k, v in tags.items()])
        self._client.set_terminated(run.info.run_id, status=_STATUS.get(fate, "KILLED"), end_time=end)
        self._logged.add(t.number)

    def _log_parent(self, summary: Mapping[str, Any], trials, *, step: int) -> None:
        """The task's settings as parameters (those not logged yet: a parameter never changes), the
        profile and what was selected as tags, the selected score and the counts as metrics."""
        from mlflow.entities import Metric, Param, RunTag

        task = summary.get("task") or {}
        params = {k: _text(task[k], 500) for k in ("metric", "seed", "val_fraction") if k in task}
        params = {k: v for k, v in params.items() if k not in self._parent_data["params"]}
        selection = summary.get("selection") or {}
        now = _ms(None)
        counts = trial_counts(trials)
        values = {f"trials_{k}": counts[k] for k in COUNT_KEYS} | {
            "selected_score": selection.get("score"), "selected_score_se": selection.get("se"),
            "top_score": selection.get("top_score"),
            "fit_seconds": (summary.get("clock") or {}).get("wall_s")}
        metrics = [Metric(k, v, now, step) for k, v in ((k, _number(v)) for k, v in values.items()) if v is not None]
        tags = profile_tags(summary)
        self._client.log_batch(self._parent, metrics=metrics, params=[Param(k, v) for k, v in params.items()],
                               tags=[RunTag(k, v) for k, v in tags.items()])
        self._parent_data["params"].update(params)

    def _log_artifacts(self) -> None:
        """The delivered model (``model/``), the report (``report/``), ``leaderboard.csv`` and
        ``summary.json``; a group uploaded again only when its files changed."""
        from automl_tl.artifacts import model_folder

        groups = {"model": (model_folder(self.run_dir), ("model.keras", "config.json", "labels.json", "assets", "members")),
                  "report": (self.run_dir, ("report.html", "report.md", "report.json", "report_files")),
                  "": (self.run_dir, ("leaderboard.csv", "summary.json"))}
        try:
            before = json.loads(self._parent_data["tags"].get(TAG.ARTIFACTS) or "{}")
        except ValueError:
            before = {}
        stamps = dict(before)
        for dest, (folder, names) in groups.items():
            paths = [folder / n for n in names if (folder / n).exists()]
            stamp = _stamp(folder, paths)
            if not paths or before.get(dest) == stamp:
                continue
            for p in paths:
                if p.is_dir():
                    self._client.log_artifacts(self._parent, str(p), "/".join(filter(None, (dest, p.name))))
                else:
                    self._client.log_artifact(self._parent, str(p), dest or None)
            stamps[dest] = stamp
        self._client.set_tag(self._parent, TAG.ARTIFACTS, json.dumps(stamps, sort_keys=True))
        self._parent_data["tags"][TAG.ARTIFACTS] = json.dumps(stamps, sort_keys=True)


def _stamp(folder: Path, paths) -> str:
    """What the files under ``paths`` are: names, sizes and modification times, hashed."""
    h = hashlib.sha1(str(folder.resolve()).encode())
    for p in paths:
        for f in sorted([p] if p.is_file() else (q for q in p.rglob("*") if q.is_file())):
            st = f.stat()
            h.update(f"{f.relative_to(folder)}:{st.st_size}:{st.st_mtime_ns};".encode())
    return h.hexdigest()[:20]


def profile_tags(summary: Mapping[str, Any]) -> dict[str, str]:
    """The dataset profile and what the fit selected, as the parent run's tags."""
    prof = summary.get("profile") or {}
    counts = prof.get("class_counts") or {}
    groups = summary.get("groups") or {}
    rec = summary.get("recommendation") or {}
    selection = summary.get("selection") or {}
    delivered = summary.get("delivered") or {}
    ratio = _number(prof.get("imbalance_ratio"))
    tags = {
        "modality": prof.get("modality"), "source": prof.get("source"), "n_items": prof.get("n_samples"),
        "n_classes": prof.get("n_classes"), "classes": ", ".join(map(str, counts)) if counts else None,
        "class_counts": counts or None, "imbalance_ratio": round(ratio, 3) if ratio is not None else None,
        "balance": None if ratio is None else ("imbalanced" if ratio > 1.5 else "balanced"),
        "size": prof.get("size_category"),
        "groups": (f"by {groups.get('unit') or 'group'}" if groups.get("used") else
                   f"none: {groups.get('reason', '')}".strip(": ")) if groups else None,
        "evaluation": (summary.get("evaluation") or {}).get("kind"),
        "recommended": "/".join(str(rec[k]) for k in ("backbone", "strategy") if rec.get(k)) or None,
        "selected_trial": selection.get("trial"), "delivered": delivered.get("kind"),
        "automl_tl.version": summary.get("version"),
    }
    return {k: _text(v) for k, v in tags.items() if v not in (None, "")}
