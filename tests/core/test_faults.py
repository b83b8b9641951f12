"""Faults survived (issue 35), each made for real: bytes overwritten in the middle of a real cache
file, a nearly full cache disk and a run directory's disk that fills during a fit (small tmpfs
mounts: root only; CI runs as root with CI=true, where a mount that cannot be made fails the test
instead of skipping it), and a class folder that is a link to a folder outside the data folder."""

from __future__ import annotations

import json
import logging
import os
import subprocess

import numpy as np
import optuna
import pytest

from automl_tl.cache import CACHE_ENV, EmbeddingCache
from automl_tl.data import load_data
from automl_tl.errors import NoSpaceError
from automl_tl.schema import STUDY_NAME
from automl_tl.testing import missing


@pytest.fixture
def small_disk(tmp_path):
    """``small_disk(name, size)``: a folder ``tmp_path/name`` that is a tmpfs of ``size`` (``"2m"``),
    unmounted after the test."""
    mounted = []

    def mount(name: str, size: str):
        if os.geteuid() != 0:
            missing("mounting a small tmpfs (a disk that fills) needs root")
        folder = tmp_path / name
        folder.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            missing(f"cannot mount a tmpfs here: {done.stderr.strip() or done.returncode}")
        mounted.append(folder)
        return folder

    yield mount
    for folder in reversed(mounted):
        if subprocess.run(["umount", str(folder)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(folder)], capture_output=True)  # a file still open: detached


def _fill(folder, leave: int) -> None:
    """Fill ``folder``'s disk with a file of the user's until ``leave`` bytes are free."""
    import shutil

    free = shutil.disk_usage(folder).free
    (folder / "user-file.bin").write_bytes(b"\1" * max(0, free - leave))


def _pixels(pm, image_folder):
    spec = pm.backbones.get("pixels")
    items = list(load_data(str(image_folder), modalities=pm.modalities).items)
    return dict(spec=spec, weights=None, input_config={"image_size": 32}, options={}, items=items,
                data_fingerprint="faults", batch_size=8)


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


# ------------------------------------------------------------------ a damaged cache file
def test_a_cache_file_with_random_bytes_inside_is_computed_again_and_said_once(tmp_path, image_folder, pm, caplog):
    kw = _pixels(pm, image_folder)
    fresh = EmbeddingCache(tmp_path / "fresh", disk=False).get_or_compute(**kw)
    first = EmbeddingCache(tmp_path / "cache")
    np.testing.assert_array_equal(first.get_or_compute(**kw), fresh)
    [npy] = (tmp_path / "cache").glob("*.npy")
    del first
    # the header stays whole; 4 KiB in the middle of the data become random bytes
    offset = np.load(npy, mmap_mode="r").offset
    middle = offset + (npy.stat().st_size - offset) // 2
    with open(npy, "r+b") as fh:
        fh.seek(middle)
        fh.write(np.random.default_rng(0).bytes(4096))
    damaged = np.load(npy, mmap_mode="r")
    assert damaged.shape == fresh.shape and not np.array_equal(np.asarray(damaged), fresh)
    del damaged

    again = EmbeddingCache(tmp_path / "cache")
    with caplog.at_level(logging.INFO, logger="automl_tl"):
        feats = again.get_or_compute(**kw)
    np.testing.assert_array_equal(feats, fresh)
    assert again.stats["disk_hits"] == 0 and again.stats["misses"] == 1 and again.stats["forward_batches"] > 0
    said = _warnings(caplog)
    assert said == [f"embedding cache: {npy} is damaged: its data does not match its checksum: its features "
                    f"are computed again"], said

    # the file written again is whole: read without a word, nothing computed
    caplog.clear()
    third = EmbeddingCache(tmp_path / "cache")
    with caplog.at_level(logging.INFO, logger="automl_tl"):
        np.testing.assert_array_equal(third.get_or_compute(**kw), fresh)
    assert third.stats["disk_hits"] == 1 and third.stats["forward_batches"] == 0 and not _warnings(caplog)

    # a file with no checksum (an earlier version's, or its writer stopped before its record) is not trusted
    meta = npy.with_suffix(".json")
    meta.write_text(json.dumps({k: v for k, v in json.loads(meta.read_text()).items() if k != "crc32"}))
    caplog.clear()
    fourth = EmbeddingCache(tmp_path / "cache")
    with caplog.at_level(logging.INFO, logger="automl_tl"):
        np.testing.assert_array_equal(fourth.get_or_compute(**kw), fresh)
    assert fourth.stats["misses"] == 1 and "has no checksum" in " ".join(_warnings(caplog))


# ------------------------------------------------------------------ the cache's disk nearly full
def _leftovers(folder, dead_pid: int, live_pid: int):
    """Temporary feature files as killed and running processes leave them (this machine's)."""
    from automl_tl.cache import _HOST

    dead = [folder / f"0123abcd.npy.{_HOST}.{dead_pid}.tmp.npy", folder / f"4567cdef.npy.{dead_pid}.tmp.npy",
            folder / f".89abcdef.json.{dead_pid}.x1y2z3"]
    live = folder / f"0123abcd.npy.{_HOST}.{live_pid}.tmp.npy"
    for f in dead + [live]:
        f.write_bytes(b"\0" * 1024)
    return dead, live


def test_a_nearly_full_cache_disk_keeps_the_features_in_memory_and_leaves_no_temporary_file(
        small_disk, image_folder, pm, caplog, tmp_path):
    kw = _pixels(pm, image_folder)
    fresh = EmbeddingCache(tmp_path / "fresh", disk=False).get_or_compute(**kw)
    assert fresh.nbytes > 150_000  # the features need more than the disk has left
    cache_dir = small_disk("cache", "2m")
    gone, running = subprocess.Popen(["true"]), subprocess.Popen(["sleep", "60"])
    gone.wait()
    try:
        dead, live = _leftovers(cache_dir, gone.pid, running.pid)
        _fill(cache_dir, leave=100_000)
        cache = EmbeddingCache(cache_dir)
        with caplog.at_level(logging.INFO, logger="automl_tl"):
            feats = cache.get_or_compute(**kw)  # was: the process died of SIGBUS ("Bus error", exit 135)
        np.testing.assert_array_equal(feats, fresh)
        [said] = _warnings(caplog)
        assert said.startswith(f"embedding cache: no space left on tmpfs (mounted at {cache_dir}) at {cache_dir} "
                               f"(needs about 0.2 MB, 0.1 MB free): free some space there, or give --cache-dir "
                               f"(or {CACHE_ENV}) a folder on another disk"), said
        assert said.endswith("Meanwhile the features of pixels are kept in memory")
        # the dead processes' temporary files are gone, this one wrote none; a running one's stays
        assert not any(f.exists() for f in dead) and live.exists()
        assert sorted(f.name for f in cache_dir.iterdir()) == sorted([live.name, "user-file.bin"])
        # the same features asked again in this fit: from memory, not computed again
        assert cache.get_or_compute(**kw) is feats and cache.stats["forward_batches"] == -(-len(kw["items"]) // 8)
    finally:
        running.kill()
        running.wait()


def test_a_full_cache_disk_with_no_memory_to_spare_is_exit_2_naming_the_folder_and_cache_dir(
        small_disk, image_folder, pm, monkeypatch):
    import automl_tl.cache as cache_module

    kw = _pixels(pm, image_folder)
    cache_dir = small_disk("cache", "2m")
    _fill(cache_dir, leave=100_000)
    monkeypatch.setattr(cache_module, "_memory_to_spare", lambda: 0)  # the features fit nowhere
    with pytest.raises(NoSpaceError) as err:
        EmbeddingCache(cache_dir).get_or_compute(**kw)
    assert err.value.exit_code == 2
    assert str(err.value) == (f"no space left on tmpfs (mounted at {cache_dir}) at {cache_dir} (needs about 0.2 MB, "
                              f"0.1 MB free): free some space there, or give --cache-dir (or {CACHE_ENV}) a folder "
                              f"on another disk")
    assert [f.name for f in cache_dir.iterdir()] == ["user-file.bin"]  # no temporary file left


# ------------------------------------------------------------------ the run directory's disk fills
def _texts(path, per_class: int = 100, seed: int = 0, vocabulary: int = 1200):
    """Two classes of made-up sentences, each class with words of its own (5/12 of ``vocabulary``
    each, the last 1/6 shared): a TF-IDF model of about 1 MB at the default vocabulary. A smaller
    one gives fewer features, hence quicker hidden-layer heads, where the model's size is not
    what a test is about."""
    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    words = ["".join(rng.choice(letters, size=rng.integers(4, 9))) for _ in range(vocabulary)]
    rows, own_n = ["text,label"], vocabulary * 5 // 12
    for k, label in enumerate(("north", "south")):
        own = words[k * own_n:(k + 1) * own_n] + words[2 * own_n:]
        rows += [" ".join(rng.choice(own, size=12)) + f",{label}" for _ in range(per_class)]
    path.write_text("\n".join(rows) + "\n")
    return path


def _fit(data, run, cache, capsys, *extra):
    """The command line's ``fit``, in this process (what is tested is its exit code and its words,
    not a process of its own: an interpreter and TensorFlow start-up fewer each)."""
    from types import SimpleNamespace

    from automl_tl.cli import main

    old = os.environ.get(CACHE_ENV)
    os.environ[CACHE_ENV] = str(cache)
    capsys.readouterr()
    try:
        code = main(["fit", str(data), "--backbones", "tfidf", "--trials", "2", "--run-dir", str(run),
                     "--patience", "0", "--quiet", "--no-report", *extra])
    finally:
        os.environ.pop(CACHE_ENV) if old is None else os.environ.__setitem__(CACHE_ENV, old)
    said = capsys.readouterr()
    return SimpleNamespace(returncode=code, stdout=said.out, stderr=said.err)


def _complete(run) -> dict[int, float]:
    storage = optuna.storages.RDBStorage(f"sqlite:///{run / 'study.db'}", skip_table_creation=True)
    try:
        study = optuna.load_study(study_name=STUDY_NAME, storage=storage)
        return {t.number: t.value for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"}
    finally:
        storage.engine.dispose()  # the file closed: the small disk can be unmounted


@pytest.mark.slow
def test_a_run_directory_whose_disk_fills_is_exit_2_with_the_space_needed_and_resumes(small_disk, tmp_path, capsys):
    data = _texts(tmp_path / "texts.csv")
    run = small_disk("run", "700k")  # the study and the views fit; the first model (about 1 MB) does not
    out = _fit(data, run, tmp_path / "cache", capsys)
    assert out.returncode == 2, out.stderr[-3000:]
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: no space left on tmpfs (mounted at {run}) at {run} (needs about "), last
    assert last.endswith(" MB free): free some space there and run the same command again: the finished trials "
                         "are kept and the search resumes"), last
    needed = float(last.split("needs about ")[1].split(" MB")[0])
    assert 0.8 <= needed <= 2.0, last  # the model's weights, its vocabulary and its assets
    assert "internal error" not in out.stderr
    kept = _complete(run)
    assert kept, "the trial that finished before the disk filled is in the study"
    # nothing half-written: no staging folder, no model folder, no link to one
    assert list((run / "models").iterdir()) == [] and not (run / "current").is_symlink()
    assert not [p.name for p in run.iterdir() if p.name.startswith(".") and p.name != ".automl-tl-run"]

    # space freed: the same command resumes, keeps the finished trial, and delivers
    subprocess.run(["mount", "-o", "remount,size=8m", str(run)], check=True)
    again = _fit(data, run, tmp_path / "cache", capsys)
    assert again.returncode == 0, again.stderr[-3000:]
    assert {n: v for n, v in _complete(run).items() if n in kept} == kept
    assert (run / "model.keras").is_file() and (run / "current").is_symlink()


def test_a_full_disk_anywhere_in_the_run_is_exit_2_not_an_internal_error(small_disk, tmp_path, capsys):
    """Where the study itself cannot be written (SQLite: "database or disk is full"), the one rule
    in the command line says the same: which disk, which folder, what to do."""
    data = _texts(tmp_path / "texts.csv", per_class=20)
    run = small_disk("run", "64k")
    out = _fit(data, run, tmp_path / "cache", capsys)
    assert out.returncode == 2, out.stderr[-3000:]
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: no space left on tmpfs (mounted at {run}) at {run} ("), last
    assert last.endswith("free some space there and run the same command again: the finished trials are kept"), last


# ------------------------------------------------------------------ a class folder linked outside
def test_a_class_folder_linked_outside_the_data_folder_is_left_out_and_said_once(tmp_path, pm, caplog):
    data, elsewhere = tmp_path / "data", tmp_path / "elsewhere"
    for name, words in (("cats", "purr meow whiskers"), ("dogs", "bark woof fetch")):
        (data / name).mkdir(parents=True)
        for i in range(4):
            (data / name / f"{i}.txt").write_text(f"{words} {i}")
    # outside: a folder tree of other files (as /etc would be)
    for sub in ("a", "a/b", "c"):
        (elsewhere / sub).mkdir(parents=True)
        for i in range(5):
            (elsewhere / sub / f"conf{i}.cfg").write_text("x = 1")
    (data / "etc").symlink_to(elsewhere, target_is_directory=True)
    # inside: a link to a folder in the data folder keeps working as a class
    (data / "more").mkdir()
    for i in range(4):
        (data / "more" / f"{i}.txt").write_text(f"squeak nibble cheese {i}")
    (data / "mice").symlink_to(data / "more", target_is_directory=True)

    with caplog.at_level(logging.INFO, logger="automl_tl"):
        ld = load_data(str(data), modalities=pm.modalities)
    said = [m for m in _warnings(caplog) if "link" in m]
    assert said == [f"class 'etc' is a link to {elsewhere} (outside the data folder): left out (to train on it, "
                    f"make {data / 'etc'} a folder of its files, or of links to them)"]
    assert set(ld.labels) == {"cats", "dogs", "mice", "more"}
    assert ld.class_counts()["mice"] == 4
    assert not [s for s in ld.skips if str(elsewhere) in s.item or "etc" in s.item]  # nothing of it walked
