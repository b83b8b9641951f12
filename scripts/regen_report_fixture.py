"""Regenerate the report tests' engine-run fixture (tests/report/data/engine_run) from a real run.

It writes a small image dataset (96 Fashion-MNIST images, 8 classes: ``automl_tl.demo``), runs
``automl-tl fit`` on it (8 trials of MobileNetV2 and the classical pixels baseline; seed 0, no report), and copies the run directory
into the fixture without the model file and with every machine path stripped: the temporary work
folder becomes relative (``data/...``), the Python environment's site-packages ``<site-packages>``,
the repository ``<repo>`` and the home folder ``~``, in the files and in the study's attributes
alike. It fails if any of those paths is left. The delivered model's files stay as the engine
links them (``config.json`` -> ``current/`` -> ``models/<name>/``), the model file itself left out.

The fit sees nothing of this machine's earlier runs: its embedding cache, Keras' home and the
knowledge base of past searches point into the temporary folder, and warm start is off (as in
the tests), so the trials do not depend on what ran here before, and nothing is written outside.

    .venv/bin/python scripts/regen_report_fixture.py [--out tests/report/data/engine_run] [--trials 8]

A few minutes on two CPU cores. Run it when the engine's record (automl_tl.schema) changes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import sys
import sysconfig
import tempfile
from contextlib import closing
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "tests" / "report" / "data" / "engine_run"
#: what the fixture leaves out: the model (megabytes) and the report the tests write themselves
LEFT_OUT = ("model.keras", "report.html", "report.md", "report.json", "report_files")
#: the files whose text may hold paths (the study is rewritten apart)
TEXT_SUFFIXES = (".json", ".csv", ".txt", ".jsonl")
#: the study's tables whose JSON values may hold paths
ATTR_TABLES = ("study_user_attributes", "study_system_attributes", "trial_user_attributes", "trial_system_attributes")


def isolate(work: Path) -> None:
    """Point every cache and record of past runs into ``work`` (before Keras or automl_tl is imported)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ["AUTOML_TL_OFFLINE"] = "1"
    os.environ["AUTOML_TL_CACHE_DIR"] = str(work / "cache")
    os.environ["KERAS_HOME"] = str(work / "keras")
    os.environ["AUTOML_TL_KNOWLEDGE"] = str(work / "knowledge.jsonl")
    os.environ["AUTOML_TL_WARM_START"] = "0"
    os.environ.pop("AUTOML_TL_PRIOR", None)


def make_data(out: Path, per_class: int) -> Path:
    """A small image-folder dataset: ``per_class`` Fashion-MNIST images of each of 8 classes."""
    from automl_tl import demo

    return demo.make_demo(out, per_class=per_class)


def fit(data: Path, run: Path, trials: int) -> None:
    """``automl-tl fit`` on ``data`` into ``run``, as a user runs it."""
    from automl_tl.cli import main

    rc = main(["fit", str(data), "--run-dir", str(run), "--trials", str(trials), "--backbones", "mobilenetv2,pixels",
               "--seed", "0", "--no-warm-start", "--no-report", "--quiet"])
    if rc != 0:
        raise SystemExit(f"automl-tl fit exited with {rc}")


def replacements(work: Path) -> list[tuple[str, str]]:
    """(machine path, what replaces it), longest first: the work folder (paths under it become
    relative), site-packages, the repository, the home folder."""
    pairs = {str(work.resolve()) + "/": "", str(work) + "/": "", str(work.resolve()): ".", str(work): "."}
    for key in ("purelib", "platlib"):
        pairs[sysconfig.get_paths()[key]] = "<site-packages>"
    pairs[str(REPO)] = "<repo>"
    pairs[sys.prefix] = "<python>"
    home = os.path.expanduser("~")
    if home not in ("/", ""):
        pairs[home] = "~"
    return sorted(pairs.items(), key=lambda kv: -len(kv[0]))


def strip_text(text: str, pairs: list[tuple[str, str]]) -> str:
    for old, new in pairs:
        text = text.replace(old, new)
    return text


def strip_study(db: Path, pairs: list[tuple[str, str]]) -> int:
    """Strip the paths from the study's attribute values; the number of values changed."""
    changed = 0
    with closing(sqlite3.connect(db)) as con:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        for table in (t for t in ATTR_TABLES if t in tables):
            for rowid, value in con.execute(f"SELECT rowid, value_json FROM {table}").fetchall():
                new = strip_text(value, pairs)
                if new != value:
                    con.execute(f"UPDATE {table} SET value_json=? WHERE rowid=?", (new, rowid))
                    changed += 1
        con.commit()
        con.execute("VACUUM")  # no free page left holding an old value
    return changed


def copy_run(run: Path, out: Path, pairs: list[tuple[str, str]]) -> None:
    """``run`` into ``out`` (replacing it), without :data:`LEFT_OUT`, its paths stripped."""
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(run, out, symlinks=True, ignore=shutil.ignore_patterns(*LEFT_OUT, "*.lock", "*-journal", "*-wal", "*-shm"))
    for path in sorted(out.rglob("*")):
        if path.is_file() and not path.is_symlink() and path.suffix in TEXT_SUFFIXES:
            path.write_text(strip_text(path.read_text(encoding="utf-8"), pairs), encoding="utf-8")
    strip_study(out / "study.db", pairs)
    for path in sorted(out.rglob("*"), key=lambda p: -len(p.parts)):  # what git would not keep
        if path.is_dir() and not path.is_symlink() and not any(path.iterdir()):
            path.rmdir()
    for path in out.rglob("*"):
        if path.is_symlink() and not path.exists():
            path.unlink()


def check_clean(out: Path, pairs: list[tuple[str, str]]) -> None:
    """Fail if any machine path is left in any file of ``out`` (the study's bytes included)."""
    left = [(str(p.relative_to(out)), old) for p in sorted(out.rglob("*")) if p.is_file() and not p.is_symlink()
            for old, _ in pairs if old.encode() in p.read_bytes()]
    if left:
        raise SystemExit(f"machine paths left in the fixture: {left}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the fixture folder (replaced)")
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--per-class", type=int, default=12, help="images per class (8 classes)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="automl-tl-fixture-") as tmp:
        work = Path(tmp)
        isolate(work)
        data = make_data(work / "data", args.per_class)
        run = work / "run"
        fit(data, run, args.trials)
        pairs = replacements(work)
        copy_run(run, args.out, pairs)
        check_clean(args.out, pairs)
    print(f"wrote {args.out}: " + ", ".join(sorted(p.name for p in args.out.iterdir())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
