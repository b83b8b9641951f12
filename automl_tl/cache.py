"""Embedding cache: backbone features computed once per (backbone, weights, input settings,
options, data), kept in memory and on disk as ``.npy`` files opened memory-mapped.

Memory stays bounded as data grows: features are written batch by batch into a memory-mapped
file, and later trials read them back memory-mapped.

Faults survived (docs/errors.md): a feature file carries a checksum in its ``.json`` record, checked
when the file is first read, so a damaged file is computed again and said so; a file's blocks are
reserved before the features are written into it, so a full disk is an error (or features kept in
memory), never a "Bus error"; temporary files of processes that are gone are removed.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import re
import shutil
import socket
import time
import zlib
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from automl_tl.atomic import atomic_write_text
from automl_tl._pages import CHUNK_BYTES, mapping_of, release, row_chunks
from automl_tl.batching import iter_batches, pad_rows
from automl_tl.errors import NO_SPACE_ERRNOS, NoSpaceError
from automl_tl.forward import in_flight
from automl_tl.sparse_features import SparseRows, csr_parts
from automl_tl.workers import pid_alive

__all__ = ["EmbeddingCache", "default_cache_dir", "iter_batches", "feature_function", "readout_function"]

CACHE_ENV = "AUTOML_TL_CACHE_DIR"
_log = logging.getLogger("automl_tl")

#: this machine in a temporary file's name: in a cache folder that machines share (a network disk),
#: each removes only the leftovers of its own processes that are gone
_HOST = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname()) or "host"
#: what to do when the cache's disk is full
_FULL_HINT = f"free some space there, or give --cache-dir (or {CACHE_ENV}) a folder on another disk"


def default_cache_dir() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "automl-tl" / "embeddings"


def feature_function(spec, weights, input_config, options) -> Callable[[Any], np.ndarray]:
    """A function from one adapter batch to a ``(B, D)`` float32 numpy array."""
    fn = readout_function(spec, weights, input_config, [options])
    return lambda x: fn(x)[0]


def readout_function(spec, weights, input_config, options_list, *, lazy: bool = False
                     ) -> Callable[[Any], list[np.ndarray]]:
    """A function from one adapter batch to the features of every option set in ``options_list``
    (one ``(B, D)`` float32 array each): one forward pass through ``spec.readouts`` when there are
    several and the backbone has it, else one per option set. The frozen models and their compiled
    forward are built once per process and configuration (:func:`automl_tl.forward.frozen_readouts`).
    ``lazy``: the backend's arrays, maybe still computing (JAX), for :func:`~automl_tl.forward.in_flight`."""
    if spec.featurize is not None:
        fns = [spec.featurize(weights, input_config, **o) for o in options_list]
        return lambda x: [np.asarray(f(x), dtype=np.float32) for f in fns]
    from automl_tl.forward import frozen_readouts

    # a compiled call (jax.jit, tf.function) per model; predict_on_batch, before, also ran a compiled
    # step, but built the model each pass, and on JAX waited for each batch before the next
    readouts = frozen_readouts(spec, weights, input_config, options_list)

    def run(x):
        outs = readouts.dispatch(x)
        return outs if lazy else [np.asarray(r, dtype=np.float32) for r in outs]

    return run


def _known_everywhere(known, n: int) -> np.ndarray:
    """Which of ``n`` items every option set's samples ``known[j]`` (``[(positions, features)]``) hold."""
    done = np.ones(n, dtype=bool)
    for parts in known:
        have = np.zeros(n, dtype=bool)
        for pos, _ in parts:
            have[pos] = True
        done &= have
    return done

class EmbeddingCache:
    def __init__(self, root: str | os.PathLike | None = None, *, disk: bool = True) -> None:
        self.root = Path(root) if root is not None else default_cache_dir()
        self.disk = disk
        self._memory: dict[str, np.ndarray] = {}
        self.stats: Counter = Counter()
        #: measured seconds of one item's forward pass, per backbone (from the pass that filled the cache)
        self.seconds_per_item: dict[str, float] = {}
        #: (model key, whole data's fingerprint) -> [(positions, features)] of samples computed so far
        self._parts: dict[tuple[str, str], list[tuple[np.ndarray, np.ndarray]]] = {}
        self._swept = False  # the leftovers of dead processes removed (once, before the first write)
        #: ``guard(backbone, seconds_per_item, items_left)``, called after each batch of a pass from
        #: its second on: it may raise EmbeddingOverBudget to stop a pass that would not end in
        #: time (the probe sets it under a time budget); None: every pass runs to its end
        self.guard: Callable[[str, float, int], None] | None = None

    @staticmethod
    def key(spec, weights, input_config: Mapping, options: Mapping, data_fingerprint: str) -> str:
        """The features' key; the Keras dtype policy they are computed under is part of it (a
        backbone built under ``mixed_bfloat16``, its stem in float32 as
        :mod:`automl_tl.mixed_precision` builds it, gives other features), float32 keys staying
        what they were."""
        import keras

        fields = {"backbone": spec.name, "weights": weights.fingerprint if weights is not None else "random",
                  "input": dict(input_config), "options": dict(options), "data": data_fingerprint}
        policy = keras.config.dtype_policy().name
        if policy != "float32":
            fields["precision"] = f"{policy}:float32-stem"
        return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()[:24]

    def get_or_compute(self, *, spec, weights, input_config, options, items, data_fingerprint,
                       batch_size: int = 32, progress: bool = False, part_of=None) -> np.ndarray:
        """Features of ``items``. ``part_of=(fingerprint, positions)``: the items are a sample at
        ``positions`` of a larger data set; when that data's features are asked for later in this
        process, the sample's rows are copied instead of computed again."""
        return self.get_or_compute_many(spec=spec, weights=weights, input_config=input_config,
                                        options_list=[options], items=items, data_fingerprint=data_fingerprint,
                                        batch_size=batch_size, progress=progress, part_of=part_of)[0]

    def get_or_compute_many(self, *, spec, weights, input_config, options_list, items, data_fingerprint,
                            batch_size: int = 32, progress: bool = False, part_of=None) -> list[np.ndarray]:
        """:meth:`get_or_compute` for several option sets of one backbone: those not cached yet are
        computed in one pass over the items (one forward pass when the backbone has ``readouts``)."""
        keys = [self.key(spec, weights, input_config, o, data_fingerprint) for o in options_list]
        model_keys = [self.key(spec, weights, input_config, o, "") for o in options_list]
        out = [self._lookup(spec, k, len(items)) for k in keys]
        missing = [i for i, a in enumerate(out) if a is None]
        if missing:
            t0 = time.perf_counter()
            known = [self._parts.get((model_keys[i], data_fingerprint), []) for i in missing]
            if getattr(spec, "sparse", False):  # mostly zeros (TF-IDF): cached as CSR, not dense
                arrs, n_computed = self._compute_sparse(spec, weights, input_config, [options_list[i] for i in missing],
                                                        items, [self.root / f"{keys[i]}.csr" for i in missing],
                                                        batch_size, progress)
            else:
                arrs, n_computed = self._compute(spec, weights, input_config, [options_list[i] for i in missing],
                                                 items, [self.root / f"{keys[i]}.npy" for i in missing], batch_size,
                                                 progress, known)
            per_item = (time.perf_counter() - t0) / max(1, n_computed)
            if n_computed:
                self.seconds_per_item[spec.name] = per_item
            for i, arr in zip(missing, arrs):
                self.stats["misses"] += 1
                self._memory[keys[i]] = out[i] = arr
                on_disk = isinstance(arr, np.memmap) or (isinstance(arr, SparseRows) and isinstance(arr.data, np.memmap))
                if self.disk and on_disk:  # not features kept in memory for want of space
                    meta = {"backbone": spec.name, "input_config": dict(input_config), "options": dict(options_list[i]),
                            "n": len(items), "dim": int(arr.shape[1]), "seconds_per_item": per_item,
                            "crc32": _checksum(arr)}
                    if isinstance(arr, SparseRows):
                        meta |= {"format": "csr", "nnz": arr.nnz}
                    atomic_write_text((self.root / f"{keys[i]}.json"), json.dumps(meta))
        if part_of is not None:
            for mk, arr in zip(model_keys, out):
                parts = self._parts.setdefault((mk, part_of[0]), [])
                if not any(a is arr for _, a in parts):
                    parts.append((np.asarray(part_of[1]), arr))
        return out

    def _lookup(self, spec, key: str, n: int) -> np.ndarray | None:
        if key in self._memory:
            self.stats["memory_hits"] += 1
            return self._memory[key]
        path = self.root / f"{key}.npy"
        if self.disk and not path.exists() and (self.root / f"{key}.csr").is_dir():
            path = self.root / f"{key}.csr"
        if self.disk and path.exists():
            arr, damage = _checked(path, n)
            if arr is not None:
                self.stats["disk_hits"] += 1
                self._memory[key] = arr
                self._remember_timing(spec.name, path.with_suffix(".json"))
                return arr
            _log.warning("embedding cache: %s %s: its features are computed again", path, damage)
            # a damaged file is never read again (nor its space kept); one with no checksum may be a
            # writer's that has not written its record yet: it is replaced when computed again
            for f in (path, path.with_suffix(".json")) if damage != _NO_CHECKSUM else ():
                shutil.rmtree(f, ignore_errors=True) if f.is_dir() else f.unlink(missing_ok=True)
        return None

    def _remove_leftovers(self) -> None:
        """Remove the temporary files of this machine's processes that are gone (a kill -9, a crash;
        a "Bus error" of earlier versions): ``<key>.npy.<host>.<pid>.tmp.npy`` (``<key>.npy.<pid>.tmp.npy``
        of earlier versions) and the ``.<key>.json.<pid>.<x>`` of an atomic write. Once per cache."""
        if self._swept or not self.root.is_dir():
            return
        self._swept = True
        for f in list(self.root.glob("*.csr.*.tmp")):  # <key>.csr.<host>.<pid>.tmp: a sparse writer's folder
            host, pid = f.name.split(".")[2:4]
            if host == _HOST and pid.isdigit() and not pid_alive(int(pid)):
                shutil.rmtree(f, ignore_errors=True)
        for f in list(self.root.glob("*.tmp.npy")) + list(self.root.glob(".*.json.*")):
            parts = f.name.split(".")
            if f.name.endswith(".tmp.npy"):
                host, pid = (parts[2] if len(parts) == 6 else _HOST), parts[-3]
            else:
                host, pid = _HOST, parts[-2]
            if host == _HOST and pid.isdigit() and not pid_alive(int(pid)):
                f.unlink(missing_ok=True)

    def _remember_timing(self, backbone: str, meta_path: Path) -> None:
        try:
            per_item = json.loads(meta_path.read_text()).get("seconds_per_item")
        except (OSError, ValueError):
            return
        if per_item is not None:
            self.seconds_per_item.setdefault(backbone, float(per_item))

    def _guarded(self, backbone: str, timed: tuple[float, int] | None, n_done: int, n_all: int) -> None:
        """Tells :attr:`guard` the rate since ``timed`` (when, after how many items) and the items
        left, once a batch has run since then."""
        if self.guard is not None and timed is not None and n_done > timed[1]:
            self.guard(backbone, (time.perf_counter() - timed[0]) / (n_done - timed[1]), n_all - n_done)

    def _compute(self, spec, weights, input_config, options_list, items, paths, batch_size, progress, known):
        """``([features per option set], how many items went through the backbone)``; the rows of
        ``known[j]``, option set j's samples ``[(positions, features)]``, are copied where every
        option set has them."""
        from tqdm.auto import tqdm

        done = _known_everywhere(known, len(items))
        todo, t0 = np.flatnonzero(~done), time.perf_counter()
        adapter = spec.make_adapter(input_config, weights, None)
        outs: list = [None] * len(options_list)
        tmps = [p.with_name(p.name + f".{_HOST}.{os.getpid()}.tmp.npy") for p in paths]
        in_memory: set[int] = set()  # option sets whose features did not fit on the cache's disk
        bar = tqdm(total=len(todo), desc=f"embedding with {spec.name}", unit="item",
                   disable=not progress, leave=False)

        def allocate(j, dim):
            shape = (len(items), dim)
            if not self.disk:
                return np.empty(shape, dtype=np.float32)
            try:
                self._remove_leftovers()
                return _reserved_memmap(self.root, tmps[j], shape)
            except OSError as exc:
                if exc.errno not in NO_SPACE_ERRNOS:
                    raise
                tmps[j].unlink(missing_ok=True)
                full = NoSpaceError(self.root, needed=_npy_bytes(shape), hint=_FULL_HINT)
                if _npy_bytes(shape) > _memory_to_spare():
                    raise full from exc
                _log.warning("embedding cache: %s. Meanwhile the features of %s are kept in memory", full, spec.name)
                in_memory.add(j)
                return np.empty(shape, dtype=np.float32)

        try:
            for j, parts in enumerate(known):
                if parts and done.any():
                    outs[j] = allocate(j, parts[0][1].shape[1])
                    for pos, feats in parts:
                        outs[j][pos] = feats
                        release(feats)  # the sample's mapped pages leave the resident set, and so do
                    release(outs[j])  # the pages its rows were written to
            written: dict[int, int] = {}
            rows = batch_size if len(todo) > batch_size else 0  # one batch shape: traced once
            timed, n_done = None, 0  # after the first batch (the build, the tracing): the rate
            fn = readout_function(spec, weights, input_config, options_list, lazy=True) if len(todo) else None
            batches = iter_batches([items[i] for i in todo], adapter, batch_size)  # none: samples cover all
            for idx, feats in in_flight(lambda b: fn(pad_rows(b, rows)), batches):  # JAX: IN_FLIGHT computing
                self._guarded(spec.name, timed, n_done, len(todo))
                n_done += len(idx)
                timed = timed or (time.perf_counter(), n_done)
                self.stats["forward_batches"] += 1
                for j, f in enumerate(feats):
                    if outs[j] is None:
                        outs[j] = allocate(j, f.shape[1])
                    outs[j][todo[idx]] = f[:len(idx)]
                    written[j] = written.get(j, 0) + f[:len(idx)].nbytes
                    if written[j] >= CHUNK_BYTES:  # written pages leave the resident set (issue 35)
                        written[j] = 0
                        release(outs[j])
                bar.update(len(idx))
        except BaseException:  # a half-written cache file is never left behind
            outs = []
            for t in tmps:
                t.unlink(missing_ok=True)
            raise
        finally:
            bar.close()
            # decoding, the model's build and its forward passes: what scales with the data
            self.stats["forward_seconds"] += time.perf_counter() - t0
        if not self.disk:
            return outs, len(todo)
        kept = [outs[j] if j in in_memory else None for j in range(len(outs))]
        for j in range(len(outs)):
            if j not in in_memory:
                outs[j].flush()
        del outs  # the memory maps are closed before their files are moved into place
        for j, (tmp, path) in enumerate(zip(tmps, paths)):
            if j not in in_memory:
                os.replace(tmp, path)
        return [kept[j] if j in in_memory else np.load(path, mmap_mode="r") for j, path in enumerate(paths)], len(todo)


    def _compute_sparse(self, spec, weights, input_config, options_list, items, folders, batch_size, progress):
        """:meth:`_compute` for a featurizer whose features are mostly zeros (``spec.sparse``):
        each batch's non-zeros are appended to raw files in a temporary folder, which becomes
        ``<key>.csr`` (``data.npy``, ``indices.npy``, ``indptr.npy``) when every item is done;
        returned as :class:`~automl_tl.sparse_features.SparseRows` over those files, memory-mapped
        (in memory with ``disk=False``). Samples computed before are not reused: these
        featurizers are cheap, and rows must be written in order. A full disk is a
        :class:`~automl_tl.errors.NoSpaceError` with the size the files would have taken."""
        from tqdm.auto import tqdm

        t0 = time.perf_counter()
        adapter = spec.make_adapter(input_config, weights, None)
        fn = None
        tmps = [f.with_name(f.name + f".{_HOST}.{os.getpid()}.tmp") for f in folders]
        pieces = [([], [], [np.zeros(1, dtype=np.int64)]) for _ in options_list]  # values, columns, per row
        files: list = []
        dims = [0] * len(options_list)
        done = written = 0
        bar = tqdm(total=len(items), desc=f"embedding with {spec.name}", unit="item", disable=not progress, leave=False)
        try:
            if self.disk:
                self._remove_leftovers()
                for t in tmps:
                    t.mkdir(parents=True)
                files = [(open(t / "data.raw", "wb"), open(t / "indices.raw", "wb")) for t in tmps]
            rows = batch_size if len(items) > batch_size else 0
            for idx, batch in iter_batches(list(items), adapter, batch_size):
                fn = fn or readout_function(spec, weights, input_config, options_list)
                for j, f in enumerate(fn(pad_rows(batch, rows))):
                    values, columns, per_row = csr_parts(f[:len(idx)])
                    dims[j] = int(f.shape[1])
                    pieces[j][2].append(per_row)
                    written += 2 * values.nbytes
                    if files:
                        files[j][0].write(values.tobytes())
                        files[j][1].write(columns.tobytes())
                    else:
                        pieces[j][0].append(values)
                        pieces[j][1].append(columns)
                done += len(idx)
                self.stats["forward_batches"] += 1
                bar.update(len(idx))
            _close(files)
            out = []
            for j, (values, columns, per_row) in enumerate(pieces):
                indptr, shape = np.cumsum(np.concatenate(per_row)), (len(items), dims[j])
                out.append(_finish_sparse(tmps[j], folders[j], indptr, shape) if self.disk else SparseRows(
                    np.concatenate(values) if values else np.zeros(0, np.float32),
                    np.concatenate(columns) if columns else np.zeros(0, np.int32), indptr, shape))
            return out, len(items)
        except BaseException as exc:  # a half-written cache folder is never left behind
            _close(files, quiet=True)
            for t in tmps:
                shutil.rmtree(t, ignore_errors=True)
            if isinstance(exc, OSError) and exc.errno in NO_SPACE_ERRNOS:
                # the raw files and, for a moment, the .npy copy of the largest of them
                needed = int(written * len(items) / max(1, done) * 1.5) + 8 * (len(items) + 1)
                raise NoSpaceError(self.root, needed=needed, hint=_FULL_HINT) from exc
            raise
        finally:
            bar.close()
            self.stats["forward_seconds"] += time.perf_counter() - t0


def _close(files, *, quiet: bool = False) -> None:
    """Close the raw files of :meth:`EmbeddingCache._compute_sparse` (a full disk may fail the
    last flush: an error, except ``quiet``, on the way out of another one)."""
    for pair in files:
        for fh in pair:
            try:
                fh.close()
            except OSError:
                if not quiet:
                    raise


def _finish_sparse(tmp: Path, folder: Path, indptr: np.ndarray, shape) -> SparseRows:
    """The raw files in ``tmp`` as ``.npy`` files, the folder moved to ``folder`` (replacing
    another worker's or a damaged one), read back memory-mapped."""
    _raw_to_npy(tmp / "data.raw", np.float32)
    _raw_to_npy(tmp / "indices.raw", np.int32)
    np.save(tmp / "indptr.npy", indptr)
    (tmp / "shape.json").write_text(json.dumps(list(shape)))
    if folder.exists():
        shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)
    return _load_sparse(folder)


def _raw_to_npy(raw: Path, dtype) -> None:
    """``raw`` (values of ``dtype`` one after another) as the ``.npy`` file beside it, copied piece
    by piece (its pages released), then ``raw`` removed."""
    itemsize = np.dtype(dtype).itemsize
    n = raw.stat().st_size // itemsize
    out = np.lib.format.open_memmap(raw.with_suffix(".npy"), mode="w+", dtype=dtype, shape=(n,))
    step = max(1, CHUNK_BYTES // itemsize)
    with open(raw, "rb") as fh:
        for lo in range(0, n, step):
            out[lo:lo + step] = np.fromfile(fh, dtype=dtype, count=min(step, n - lo))
            release(out)
    out.flush()
    del out
    raw.unlink()


def _load_sparse(folder: Path) -> SparseRows:
    shape = json.loads((folder / "shape.json").read_text())
    return SparseRows(*(np.load(folder / f"{name}.npy", mmap_mode="r") for name in ("data", "indices", "indptr")),
                      shape)


def _npy_bytes(shape) -> int:
    """The size of a float32 ``.npy`` file of ``shape`` (its header is at most a few hundred bytes)."""
    return int(np.prod(shape)) * 4 + 4096


def _reserved_memmap(root: Path, tmp: Path, shape) -> np.memmap:
    """A new float32 ``.npy`` file at ``tmp``, memory-mapped, whose blocks are reserved on disk:
    ``OSError`` ENOSPC here when the features do not fit. A write into a memory map whose page the
    disk has no room for is not an exception but SIGBUS: the process died with "Bus error" (exit
    135) and left its temporary file behind. The free space is checked first (the reason said at
    once); ``posix_fallocate`` then reserves the blocks (another process may take the space
    meanwhile)."""
    root.mkdir(parents=True, exist_ok=True)
    if shutil.disk_usage(root).free < _npy_bytes(shape):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp))
    arr = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=shape)
    if hasattr(os, "posix_fallocate"):  # not on macOS: there the check above is all
        try:
            with open(tmp, "r+b") as fh:
                os.posix_fallocate(fh.fileno(), 0, os.fstat(fh.fileno()).st_size)
        except OSError as exc:
            if exc.errno in NO_SPACE_ERRNOS:
                del arr
                raise
            # EINVAL, EOPNOTSUPP: a file system that cannot reserve blocks; the check above stands
    return arr


def _memory_to_spare() -> int:
    """The bytes of features that may be kept in memory when the cache's disk is full: half the
    memory available now."""
    import psutil

    return psutil.virtual_memory().available // 2


def _checksum(arr: np.ndarray) -> int:
    """CRC-32 of the features' bytes. A checksum, not a cryptographic hash: it is there to catch
    damage (a disk, a copy, a kill), not tampering, and at about 4 GB/s on one core (blake2b: 0.9,
    sha256: 1.8) checking a 300 MB file costs under 0.1 s. It is computed once per file per
    cache, that is once per fit: a file read once is kept in the cache's memory after that."""
    if isinstance(arr, SparseRows):  # its three arrays, one after another
        crc = 0
        for part in (arr.data, arr.indices, arr.indptr):
            for piece in row_chunks(len(part), part.itemsize):
                crc = zlib.crc32(memoryview(np.ascontiguousarray(part[piece])).cast("B"), crc)
            release(part)
        return crc
    if arr.ndim != 2 or mapping_of(arr) is None:
        data = arr if arr.flags.c_contiguous else np.ascontiguousarray(arr)
        return zlib.crc32(memoryview(data).cast("B"))
    crc = 0  # a memory map: piece by piece, each read piece leaving the resident set (issue 35)
    for rows in row_chunks(arr.shape[0], arr.shape[1] * arr.itemsize):
        crc = zlib.crc32(memoryview(np.ascontiguousarray(arr[rows])).cast("B"), crc)
        release(arr)
    return crc


_NO_CHECKSUM = "has no checksum to check it by (written by an earlier version, or its writer was stopped)"


def _checked(path: Path, n: int) -> tuple[np.ndarray | None, str]:
    """``(the features at path, "")`` when the file is whole (``n`` rows, the shape and checksum
    its ``.json`` record gives), else ``(None, what is wrong with it)``."""
    try:
        arr = _load_sparse(path) if path.is_dir() else np.load(path, mmap_mode="r")
    except (ValueError, OSError) as exc:  # truncated, or its header overwritten
        return None, f"cannot be read ({type(exc).__name__}: {exc})"
    try:
        meta = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        meta = {}
    if not isinstance(meta, dict):
        meta = {}
    if arr.ndim != 2 or arr.dtype != np.float32 or arr.shape[0] != n:
        return None, f"holds an array of {arr.shape} {arr.dtype}, not {n} rows of float32 features"
    if meta.get("crc32") is None:
        return None, _NO_CHECKSUM
    if (meta.get("n"), meta.get("dim")) != tuple(arr.shape):
        return None, f"holds an array of {arr.shape}, its record says ({meta.get('n')}, {meta.get('dim')})"
    if _checksum(arr) != meta["crc32"]:
        return None, "is damaged: its data does not match its checksum"
    return arr, ""
