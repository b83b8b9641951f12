"""The run directory's views of the study (the leaderboard), the saved model and loading it back."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from automl_tl.atomic import DIR_MODE, atomic_write_json, atomic_write_text
from automl_tl.killpoints import kill_point
from automl_tl.workers import pid_alive
from automl_tl.errors import NO_SPACE_ERRNOS, NoSpaceError, NotFittedError
from automl_tl.schema import LEADERBOARD_COLUMNS, STUDY_NAME, SUMMARY_ATTR, trial_rows

__all__ = ["atomic_write_text", "atomic_write_json", "write_leaderboard", "leaderboard_rows",
           "write_views", "save_model", "remove_leftovers", "load_predictor", "MODEL_FILES", "Predictor", "LEADERBOARD_COLUMNS", "STUDY_NAME",
           "leaderboard_frame"]

def leaderboard_rows(study) -> list[dict]:
    return trial_rows(study.get_trials(deepcopy=False))


def leaderboard_frame(study=None, run_dir=None):
    """The leaderboard as a pandas DataFrame: of ``study``, else of the study in ``run_dir``
    (its ``study.db``, opened read-only as the report opens it), else that folder's
    ``leaderboard.csv``."""
    import pandas as pd

    run_dir = Path(run_dir) if run_dir is not None else None
    if study is None and run_dir is not None and (run_dir / "study.db").is_file():
        from automl_tl.report._load import _load_study

        study = _load_study(run_dir / "study.db", [])  # None when it cannot be read: the view below
    if study is not None:
        return pd.DataFrame(leaderboard_rows(study), columns=list(LEADERBOARD_COLUMNS))
    if run_dir is not None and (run_dir / "leaderboard.csv").is_file():
        return pd.read_csv(run_dir / "leaderboard.csv")
    raise NotFittedError("no search to show: call fit(), or AutoTransfer.load() a run directory "
                         "that has its study.db or leaderboard.csv")


def write_leaderboard(study, path) -> list[dict]:
    rows = leaderboard_rows(study)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=LEADERBOARD_COLUMNS)
    w.writeheader()
    w.writerows(rows)
    atomic_write_text(path, buf.getvalue())
    return rows


def write_views(study, run_dir, summary: Mapping[str, Any] | None = None) -> dict:
    """Write ``summary.json`` and ``leaderboard.csv`` of ``run_dir`` from the study alone: the
    summary a worker last recorded in it (or ``summary``), with counts from the trials. Any
    machine that reaches the storage rebuilds the same views (``automl-tl report --storage``)."""
    from automl_tl.schema import trial_counts

    run_dir = Path(run_dir)
    summary = dict(summary if summary is not None else study.user_attrs.get(SUMMARY_ATTR) or {})
    summary["counts"] = trial_counts(study.get_trials(deepcopy=False))
    atomic_write_json(run_dir / "summary.json", summary)
    write_leaderboard(study, run_dir / "leaderboard.csv")
    return summary


# ------------------------------------------------------------------------------ model
#: the files of a delivered model; in the run directory each is a link into ``current/``
MODEL_FILES = ("model.keras", "config.json", "labels.json", "assets", "val_predictions.csv")
MODELS_DIR = "models"
CURRENT = "current"


MEMBERS_DIR = "members"


def model_folder(run_dir) -> Path:
    """The folder the delivered model's files are read from: ``current/`` resolved once (so every
    file comes from one model even if ``current`` is swapped meanwhile), else ``run_dir`` itself
    (a copy made by ``AutoTransfer.save``, or an ensemble member's folder)."""
    run_dir = Path(run_dir)
    return (run_dir / CURRENT).resolve() if (run_dir / CURRENT).is_symlink() else run_dir


def _write_model(folder: Path, *, model, adapter, labels: Sequence[str], config: Mapping[str, Any]) -> None:
    # the assets first: when the disk fills during model.save, their size is known (save_model's message)
    (folder / "assets").mkdir()
    adapter.save_assets(str(folder / "assets"))
    model.save(folder / "model.keras")
    atomic_write_json(folder / "labels.json", list(labels))
    atomic_write_json(folder / "config.json", dict(config))


def save_model(run_dir, *, model, config: Mapping[str, Any], labels: Sequence[str], adapter,
               val_predictions: Sequence[Mapping] | None = None, name: str = "model",
               members: Sequence[Mapping[str, Any]] = ()) -> Path:
    """Deliver a model so that ``model.keras``, ``config.json``, ``labels.json``, ``assets/`` and
    ``val_predictions.csv`` always belong to one trial, whenever the process is killed.

    ``members``: the other models of an ensemble (each a dict of ``model``, ``adapter`` and
    ``config``), saved in ``members/<i>/`` of the same folder; ``config["ensemble"]["members"]``
    lists those folders, and :class:`Predictor` averages all with ``config["ensemble"]["weights"]``.

    The set is written into a staging folder under ``models/``, renamed to its own name
    (``models/<name>.<pid>.<n>``), and then one symbolic link, ``current``, is swapped to it
    (``os.replace`` of a link is atomic). The run directory's ``model.keras`` etc. are fixed links
    into ``current/``, so they change together. POSIX renames of several files cannot be made
    atomic together, hence the links. Returns the model's folder.

    A full disk raises :class:`NoSpaceError` (exit 2) saying about how much the model needs; the
    staging folder is removed and ``current`` still points to the model saved before."""
    run_dir = Path(run_dir)
    models = run_dir / MODELS_DIR
    staging = full = None
    try:
        models.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".staging.{os.getpid()}.", dir=models))
        os.chmod(staging, DIR_MODE)  # mkdtemp makes it private; a model folder is like any other
        config = dict(config)
        if members:
            config["ensemble"] = dict(config.get("ensemble") or {}) | {
                "members": [f"{MEMBERS_DIR}/{i}" for i in range(len(members))]}
        for i, m in enumerate(members):
            folder = staging / MEMBERS_DIR / str(i)
            folder.mkdir(parents=True)
            _write_model(folder, model=m["model"], adapter=m["adapter"], labels=labels, config=m["config"])
        _write_model(staging, model=model, adapter=adapter, labels=labels, config=config)
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=("item", "label", "predicted", "probability"))
        w.writeheader()
        w.writerows(val_predictions or [])
        atomic_write_text(staging / "val_predictions.csv", buf.getvalue())
        kill_point("model-save")
        final = models / f"{name}.{os.getpid()}.{staging.name.rsplit('.', 1)[-1]}"
        os.rename(staging, final)
        kill_point("model-swap")
        _swap_link(run_dir / CURRENT, Path(MODELS_DIR) / final.name)
        for f in MODEL_FILES:
            _link_into_current(run_dir, f)
    except OSError as exc:
        if exc.errno not in NO_SPACE_ERRNOS:
            raise
        full, needed = exc, _bytes_needed(staging, [model] + [m["model"] for m in members])
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    if full is not None:  # said once the staging folder is gone: the free space is what is left
        raise NoSpaceError(run_dir, needed=needed, hint="free some space there and run the same command again: "
                                                        "the finished trials are kept and the search resumes") from full
    remove_leftovers(run_dir)
    return final


def _bytes_needed(staging: Path | None, models: Sequence[Any]) -> int:
    """About the bytes a model set takes on disk, when the disk filled while it was written: its
    weights (from their shapes and types) and its configuration (a TF-IDF vocabulary lives there)
    plus the assets written so far (they are written first), and no less than all that was
    written; plus 64 KiB for its small files."""
    def size(folder: Path) -> int:
        return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file() and not f.is_symlink())

    weights = 0
    for m in models:
        try:
            weights += len(m.to_json())
        except Exception:  # noqa: BLE001 - an estimate: a model whose config does not serialise counts its weights
            pass
        for v in getattr(m, "weights", []):
            try:
                itemsize = np.dtype(str(v.dtype)).itemsize
            except TypeError:
                itemsize = 4
            weights += int(np.prod(v.shape)) * itemsize
    if staging is None or not staging.is_dir():
        return weights + (1 << 16)
    folders = [staging, *staging.glob(f"{MEMBERS_DIR}/*")]
    assets = sum(size(f / "assets") for f in folders if (f / "assets").is_dir())
    return max(weights + assets, size(staging)) + (1 << 16)


def _swap_link(link: Path, target: Path) -> None:
    tmp = link.with_name(f".{link.name}.{os.getpid()}.tmp")
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(target, tmp)
    os.replace(tmp, link)


def _link_into_current(run_dir: Path, name: str) -> None:
    """``run_dir/name`` -> ``current/name`` (a run of an earlier version has a plain file there: ours)."""
    path, target = run_dir / name, Path(CURRENT) / name
    if path.is_symlink() and Path(os.readlink(path)) == target:
        return
    if path.is_dir() and not path.is_symlink():
        old = run_dir / f".{name}.{os.getpid()}.old"
        os.replace(path, old)
        shutil.rmtree(old, ignore_errors=True)
    _swap_link(path, target)


def _owner_pid(name: str) -> int | None:
    """The pid in a name this program makes: ``.<file>.<pid>.<x>`` (temporary files, links and
    staging folders) and ``models/<name>.<pid>.<x>`` (model folders); None for other names."""
    parts = name.split(".")
    return int(parts[-2]) if len(parts) >= 3 and parts[-2].isdigit() else None


def remove_leftovers(run_dir) -> list[str]:
    """Remove what this program left half-done in ``run_dir``: temporary files, links and staging
    folders of processes that are gone (a kill -9), and model folders that ``current`` no longer
    points to. Only names this program makes are touched, and never those of a live process (it
    may be about to use them). Returns the names removed."""
    run_dir = Path(run_dir)
    models, current = run_dir / MODELS_DIR, run_dir / CURRENT
    keep = Path(os.readlink(current)).name if current.is_symlink() else None
    found = [p for d in (run_dir, run_dir / "report_files") if d.is_dir() for p in d.iterdir() if p.name.startswith(".")]
    if models.is_dir():
        found += [p for p in models.iterdir() if p.name != keep]
    removed = []
    for p in found:
        pid = _owner_pid(p.name)
        if pid is None:
            continue
        finished_model = p.parent == models and not p.name.startswith(".")
        if pid_alive(pid) and not (finished_model and pid == os.getpid()):
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
        removed.append(p.name)
    return removed


class Predictor:
    """A saved model plus what turns raw inputs into its inputs."""

    def __init__(self, run_dir, *, plugin_manager=None) -> None:
        from automl_tl.plugin_manager import get_plugin_manager
        from automl_tl.weights import ResolvedWeights

        run_dir = Path(run_dir)
        base = model_folder(run_dir)
        cfg_path, model_path = base / "config.json", base / "model.keras"
        if not model_path.exists() or not cfg_path.exists():
            raise NotFittedError(f"{run_dir}: no saved model here (model.keras and config.json are "
                                 f"written when a search completes its first trial). Run "
                                 f"`automl-tl fit` first, or point to the right run directory.")
        pm = plugin_manager or get_plugin_manager()
        self.run_dir = run_dir
        assets = str(base / "assets")
        try:
            self.config = json.loads(cfg_path.read_text(encoding="utf-8"))
            labels = json.loads((base / "labels.json").read_text(encoding="utf-8"))
            if not isinstance(self.config, dict) or not isinstance(self.config.get("backbone"), str) \
                    or not isinstance(self.config.get("input_config"), dict) or not isinstance(labels, list) \
                    or not labels:
                raise ValueError("a key is missing or of the wrong type")
            self.labels = [str(x) for x in labels]
            self.spec = pm.backbones.get(self.config["backbone"])
            self.modality = pm.modalities.get(self.spec.modality)
            self.adapter = self.spec.make_adapter(self.config["input_config"], None, assets)
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
            # files this program wrote, edited or damaged since: the user's to fix by refitting
            raise NotFittedError(
                f"{base}: config.json, labels.json or assets/ is damaged or incomplete ({type(exc).__name__}: "
                f"{exc}). Rerun `automl-tl fit` to rebuild the model.") from exc
        import keras

        try:
            self.model = keras.saving.load_model(model_path, compile=False)
        except (ValueError, OSError, zipfile.BadZipFile, KeyError, TypeError) as exc:
            # damaged or incomplete (a truncated zip, overwritten bytes), or refused by Keras' safe
            # mode because it holds code (a Lambda layer): all the user's to fix, none a bug here
            raise NotFittedError(
                f"{model_path} could not be loaded ({type(exc).__name__}): the file is damaged or "
                f"incomplete, or holds code that Keras' safe mode refuses. Rerun `automl-tl fit` to "
                f"rebuild it; if you wrote and trust a model with code, load it yourself with "
                f"keras.saving.load_model(path, safe_mode=False).") from exc
        self._featurize = None
        if self.config.get("featurize"):
            w = ResolvedWeights(backbone=self.spec.name, kind="assets", location=assets)
            self._featurize = self.spec.featurize(w, self.config["input_config"],
                                                  **self.config.get("options", {}))
        # an ensemble: the other members live in sub-folders; probabilities are averaged
        self.members: list[Predictor] = []
        self.weights = [1.0]
        ens = self.config.get("ensemble")
        if ens:
            try:
                folders, weights = list(ens["members"]), [float(w) for w in ens["weights"]]
                if len(weights) != len(folders) + 1:
                    raise ValueError(f"{len(weights)} weights for {len(folders) + 1} models")
            except (KeyError, TypeError, ValueError) as exc:
                raise NotFittedError(f"{cfg_path}: its ensemble entry is damaged ({type(exc).__name__}: {exc}). "
                                     f"Rerun `automl-tl fit` to rebuild the model.") from exc
            self.members = [Predictor(base / f, plugin_manager=pm) for f in folders]
            self.weights = weights
        # the temperature fitted on the delivered model's out-of-fold probabilities (automl_tl.calibration);
        # 1 for runs of earlier versions, which have no such entry
        self.temperature = 1.0
        cal = self.config.get("calibration")
        if cal:
            try:
                self.temperature = float(cal["temperature"]) if cal.get("applied", True) else 1.0
                if not (np.isfinite(self.temperature) and self.temperature > 0):
                    raise ValueError(f"temperature {self.temperature} is not a positive number")
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise NotFittedError(f"{cfg_path}: its calibration entry is damaged ({type(exc).__name__}: {exc}). "
                                     f"Rerun `automl-tl fit` to rebuild the model.") from exc

    def check_inputs(self, items) -> tuple[list, list, list]:
        """The same checks as training: kept indices, the kept inputs as cleaned by the modality
        (what the model should see), and the counted skips."""
        result = self.modality.check(list(items))
        return list(result.keep), list(result.items), list(result.skips)

    def predict_proba(self, items, batch_size: int = 32) -> np.ndarray:
        """Class probabilities: the ensemble's average, calibrated with the saved temperature
        (which keeps each item's most probable class, so :meth:`predict` is unchanged by it)."""
        from automl_tl.calibration import apply_temperature

        return apply_temperature(self._averaged(list(items), batch_size), self.temperature)

    def _averaged(self, items: list, batch_size: int) -> np.ndarray:
        """The uncalibrated probabilities: the temperature was fitted on the average of all
        members, so it applies once, to the average, never to a member's own."""
        from automl_tl.batching import predict_proba_items

        p = self.weights[0] * predict_proba_items(self.model, self.adapter, items, batch_size,
                                                  featurize=self._featurize, n_classes=len(self.labels))
        for w, m in zip(self.weights[1:], self.members):
            p = p + w * m._averaged(items, batch_size)
        return p / sum(self.weights)

    def predict(self, items) -> list[str]:
        return [self.labels[i] for i in np.argmax(self.predict_proba(items), axis=1)]


def load_predictor(run_dir, **kw) -> Predictor:
    return Predictor(run_dir, **kw)
