"""The run directory of a fit: its default place, which folders a fit accepts (a new or empty one,
or a run of the same task to resume; nothing of anyone else's is overwritten), the task record a
resumed search must match, the split written there before the search, and the copy of its
deliverable that :meth:`AutoTransfer.save <automl_tl.estimator.AutoTransfer.save>` makes.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from automl_tl.errors import ConfigError


def default_run_dir(source: str) -> Path:
    name = Path(str(source)).stem if not str(source).startswith("<") else "dataframe"
    return Path("runs") / (name or "run")


def check_run_dir(run_dir: Path, *, create: bool = True) -> None:
    """Create ``run_dir`` or accept it: a new or empty folder, or an automl-tl run to resume. A
    folder of someone else's files is refused (nothing in it is ever overwritten or deleted).
    ``create=False`` only checks (before the profile and the probe, so a refusal comes first)."""
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"--run-dir {run_dir} is an existing file, not a folder; give a new or empty folder")
    if run_dir.is_dir():
        try:
            entries = sorted(p.name for p in run_dir.iterdir())
        except OSError as exc:
            raise ConfigError(f"cannot read the run directory {run_dir} ({exc.strerror}); give another --run-dir") from exc
        from automl_tl.schema import RUN_MARKERS

        if entries and not any((run_dir / m).exists() for m in RUN_MARKERS):
            shown = ", ".join(entries[:5]) + (", ..." if len(entries) > 5 else "")
            raise ConfigError(f"--run-dir {run_dir} is not empty ({shown}) and is not an automl-tl run: "
                              f"give a new or empty folder (nothing of yours is overwritten)")
    if not create:
        _check_writable(run_dir)
        return
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _unwritable(run_dir, exc) from exc
    _check_writable(run_dir)
    from automl_tl.schema import RUN_MARKER

    try:
        if not (run_dir / RUN_MARKER).exists():
            (run_dir / RUN_MARKER).write_text("an automl-tl run directory (automl-tl fit writes and resumes it)\n")
    except OSError as exc:
        raise _unwritable(run_dir, exc) from exc


def _unwritable(run_dir: Path, exc: OSError) -> ConfigError:
    return ConfigError(f"cannot write to the run directory {run_dir} ({exc.strerror or exc}); "
                       f"give a --run-dir you can write to")


def _check_writable(run_dir: Path) -> None:
    """Whether ``run_dir`` can be made and written to, leaving nothing behind: a file is made and
    removed in it, or in the nearest folder above it that exists (asked of the file system:
    permission bits do not tell a read-only mount or /proc). No folder is made: another worker
    may be making the same one."""
    import tempfile

    folder = next(p for p in [run_dir, *run_dir.parents] if p.exists())
    try:
        fd, probe = tempfile.mkstemp(prefix=".automl-tl-write-test-", dir=folder)  # a new name: no file replaced
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise _unwritable(run_dir, exc) from exc


def check_resume(run_dir: Path, task: dict) -> None:
    """A run directory resumes only the same task: same inputs, labels, metric, seed, split."""
    import json

    summary = run_dir / "summary.json"
    if not summary.exists():
        return
    try:
        old = json.loads(summary.read_text()).get("task", {})
    except (ValueError, OSError):
        return
    from automl_tl.schema import task_changes

    changed = task_changes(old, task)
    if changed:
        raise ConfigError(f"{run_dir} holds a search of a different task ({', '.join(changed)} changed "
                          f"since). Use another --run-dir, or delete {run_dir} to start over.")


def task_record(est, data) -> dict:
    """The task ``est`` (an :class:`~automl_tl.estimator.AutoTransfer`) searches on ``data``:
    what a resumed search must share with the one in the run directory."""
    return {"modality": data.modality, "source": data.source, "metric": est.metric,
            "seed": est.seed, "val_fraction": est.val_fraction,
            "data_fingerprint": data.fingerprint(), "labels_fingerprint": data.labels_fingerprint(),
            # the folds follow the grouping: a search resumed under another scores differently
            "groups": (f"column {est.group_column}" if est.group_column else
                       "found" if est.detect_groups else "none")}


def check_early(est, data) -> None:
    """Refuse the run directory ``est`` would use on ``data`` before the profile and the probe
    (a folder of someone else's files, a search of another task); nothing is created."""
    run_dir = Path(est.run_dir or default_run_dir(data.source))
    check_run_dir(run_dir, create=False)
    check_resume(run_dir, task_record(est, data))


def split_record(data, plan) -> dict:
    def part(idx):
        return {"items": [str(data.items[i]) for i in idx], "labels": [data.labels[i] for i in idx]}

    return {"modality": data.modality, "labels": data.classes, "train": part(plan.train),
            "val": part(plan.val), "evaluation": plan.to_dict()}


def copy_deliverable(src: Path, dst: Path) -> Path:
    """Copy the deliverable of the run (or saved model) ``src`` (model.keras, config.json,
    labels.json, assets/, an ensemble's members/) to ``dst``: a new or empty folder, or a saved
    model, replaced whole."""
    if dst.exists() and dst.resolve() == src.resolve():
        return dst
    if dst.exists() and any(dst.iterdir()) and not (dst / "config.json").exists():
        raise ConfigError(f"{dst} exists and is not a saved model: choose a new or empty folder")
    tmp = dst.with_name(f".{dst.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    # from the delivered model's own folder: an ensemble's members/ live only there
    from automl_tl.artifacts import model_folder

    base = model_folder(src)
    for name in ("model.keras", "config.json", "labels.json", "assets", "members"):
        s = base / name
        if s.is_dir():
            shutil.copytree(s, tmp / name)
        elif s.exists():
            shutil.copy2(s, tmp / name)
    if dst.exists():
        shutil.rmtree(dst)
    tmp.rename(dst)
    return dst
