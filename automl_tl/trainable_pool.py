"""Trainable backbones built once per process and configuration, their pretrained weights restored
at the start of each fine-tuning trial instead of built again (issue 33).

A fine-tuning trial builds its backbone again each time: the graph, then the weights that
:mod:`automl_tl.weights` read once per process assigned to it. :func:`trainable_backbone` keeps
built copies per (backbone, weights, input config, options, dtype policy, backend) with their
pretrained state as numpy arrays, and hands one out again with that state assigned back, so the
next trial starts from the pretrained weights, never the previous trial's.

A model something still holds is never restored over: a :class:`~automl_tl.training.TrialResult`,
a refit's result or a delivered classifier may keep a fine-tuned backbone. The pooled copy is
handed out again only when nothing outside the pool references it (its reference count, read
after a garbage collection where the count alone is not enough: the trial's assembled model and
its compiled train step sit in reference cycles); otherwise a fresh build is handed out and
pooled beside it (:data:`PER_CONFIG`), the held one left as it is.

A handed-out copy is also indistinguishable from a fresh build of the same trial: the build runs
with Python's and NumPy's random state saved and put back (it draws initialiser and dropout seeds
from them), and both paths then draw the model's dropout seeds the same way (:func:`_reseed`).
Backbones without pretrained weights (``weights`` None: random initial weights, which a fresh
build draws anew) are built fresh every time.

What it saves, measured on this 2-core CPU shared with other jobs (load 4-8; a /tmp script: each
round gets the backbone, assembles it with a head, compiles it, takes one train step and drops it;
medians of the rounds after the first): a build after the first costs MiniLM-L6 (128 tokens)
1.2-3.1 s on TensorFlow and 0.6 s on JAX, MobileNetV2 (96 px) 0.6-1.0 s on either; a pooled
hand-out 1.1-3.4 s, 1.3 s and 0.7-1.9 s. Restoring takes 0.02-0.2 s, the garbage collection
that proves the copy free 0.3-3 s (a full traversal of the 0.6-0.8 million objects TensorFlow or
JAX keep alive, growing with the traced trials; since the search freezes the heap it started
with, :func:`automl_tl.search.loop._frozen_heap`, a collection walks only what the search
allocated). So on a CPU the saving is within noise; the collection is run only while the last
one was quicker than a build (:meth:`_Slot.free`), else a fresh build is made as before. A fine-tuning trial itself takes 10-30 s here, most of it tracing its
train step (15 s of 21 s profiled, MobileNetV2 at 32 px): the model the step is traced for is new
each trial (a new head and optimiser), which restoring the backbone does not change.

On a GPU: restoring is one host-to-device copy of the weights instead of allocating every variable
again, and the collection frees the device buffers of the trials' dead models before the next
trial allocates; the collection's cost is the host's, as here. Not measured on a GPU (none lent).
"""

from __future__ import annotations

import collections
import gc
import json
import random
import sys
import threading
import time
from typing import Any, Callable, Mapping

import numpy as np

__all__ = ["trainable_backbone", "clear_pool", "POOL", "MAX_POOLED", "PER_CONFIG"]

#: configurations kept built. Each holds up to :data:`PER_CONFIG` models, each with a host copy of
#: its pretrained state (mpnet-base: 0.44 GB a copy); a search alternates between a few backbones.
MAX_POOLED = 2

#: models kept per configuration: one the search's best trial may hold, one for the next trial.
PER_CONFIG = 2


class _Entry:
    """One pooled model, what it looked like when built, and how many references it has then."""

    def __init__(self, model) -> None:
        from automl_tl.training import nested_layers

        self.model = model
        variables = list(model.variables)
        weight_ids = {id(w) for w in model.weights}
        self.variables = variables
        self.state = [np.array(v) for v in variables]  # weights, BatchNorm statistics, dropout seeds
        self.seeds = [v for v in variables if id(v) not in weight_ids]  # SeedGenerator states
        self.layer_flags = [(l, l.trainable) for l in [model, *nested_layers(model)]]
        self.variable_flags = [v.trainable for v in variables]
        self.inbound, self.outbound = len(model._inbound_nodes), len(model._outbound_nodes)
        self.base = 0

    def references(self) -> int:
        """References to the model beyond what it had when pooled: the pool's own, and those of
        the graphs it was called in (a node of each, which names it as its operation and in each
        output tensor's history) are not someone holding it."""
        m = self.model
        own = sum(_node_references(n, m) for n in m._inbound_nodes[self.inbound:])
        return sys.getrefcount(m) - own - self.base

    def restore(self) -> None:
        """The state of the build: weights, statistics, seeds and trainable flags; the nodes of
        the (dead) graphs it was called in dropped, so its node lists do not grow trial by trial."""
        m = self.model
        del m._inbound_nodes[self.inbound:]
        del m._outbound_nodes[self.outbound:]
        for v, value in zip(self.variables, self.state):
            v.assign(value)
        for layer, flag in self.layer_flags:  # parents first: a layer's setter sets its children
            layer.trainable = flag
        for v, flag in zip(self.variables, self.variable_flags):
            v.trainable = flag


class _Slot:
    """The pooled models of one configuration (up to :data:`PER_CONFIG`: the search keeps its best
    trial's model, so a spare serves the next trial) and whether its builds leave garbage."""

    def __init__(self) -> None:
        self.entries: list[_Entry] = []
        self.clean: bool | None = None  # a build leaves no garbage naming the model (None: unknown)
        self.build_s = 0.0  # how long its last build took
        self.spec: Any = None

    def free(self, gc_s: float) -> _Entry | None:
        """A pooled model nothing outside the pool holds (exactly the count it had when pooled;
        fewer would mean a miscount: that one is dropped, never restored), or None. A garbage
        collection is run where the count alone does not tell, unless the last one (``gc_s``)
        took longer than a build (then the build is cheaper)."""
        for collect in (False, True):
            if collect:  # the last trial's assembled model and train step sit in reference cycles
                if gc_s > self.build_s:
                    return None
                POOL.collect()
            for e in list(self.entries):
                refs = e.references()
                if refs < 0:
                    self.entries.remove(e)
                elif refs == 0:
                    return e
            if not self.entries:
                return None
        return None

    def add(self, model) -> _Entry:
        entry = _Entry(model)
        del model
        before = entry.references()
        if self.clean is not False:  # the first build is checked: later ones of a clean builder are not
            # the built-in backbones leave none on every backend (5 references before and after);
            # garbage counted in the base could later hide a holder
            if self.clean is None:
                POOL.collect()
                self.clean = entry.references() == before
        else:
            POOL.collect()
        entry.base = entry.references()  # with no one but the pool holding it
        self.entries.append(entry)
        if len(self.entries) > PER_CONFIG:
            self.entries.pop(0)  # the oldest: whoever holds it keeps it
        return entry


def _node_references(node, model) -> int:
    hist = [getattr(t, "_keras_history", None) for t in node.outputs]
    return int(node.operation is model) + sum(1 for h in hist if h is not None and h.operation is model)


def _reseed(entry: _Entry) -> None:
    """Dropout seeds drawn from Python's random state as a fresh build draws them (Keras'
    ``make_default_seed``), in one fixed order: a pooled and a built model train alike."""
    for v in entry.seeds:
        v.assign(np.array([random.randint(1, int(1e9))] + [0] * (int(np.prod(v.shape)) - 1),
                          dtype=np.dtype(str(v.dtype))).reshape(v.shape))


def _build_isolated(make: Callable[[], Any]):
    """``make()`` with Python's and NumPy's random state as before it: a pooled model's hand-out
    draws nothing, so a fresh build must leave the random state as it found it too."""
    py, npy = random.getstate(), np.random.get_state()
    try:
        return make()
    finally:
        random.setstate(py)
        np.random.set_state(npy)


def _timed_build(slot: _Slot, make: Callable[[], Any]):
    t = time.perf_counter()
    try:
        return _build_isolated(make)
    finally:
        slot.build_s = time.perf_counter() - t


class _Pool:
    """The per-process pool: at most ``size`` configurations, least recently used dropped."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.entries: collections.OrderedDict = collections.OrderedDict()  # key -> _Slot
        self.builds = 0
        self.restores = 0
        self.gc_s = 0.0  # how long the last full garbage collection took
        self.lock = threading.RLock()

    def collect(self) -> None:
        """A full garbage collection, timed: its cost grows with the process' objects (0.3-3 s
        here once TensorFlow or JAX has traced a few trials), a build's with the backbone, so a
        restore can win only where a build takes longer than the collection (:meth:`_Slot.free`)."""
        t = time.perf_counter()
        gc.collect()
        self.gc_s = time.perf_counter() - t

    def get(self, key, make: Callable[[], Any], spec=None):
        with self.lock:
            slot = self.entries.get(key) or _Slot()
            slot.spec = spec  # held: the key's id(spec) is not reused by another spec while the slot lives
            self.entries[key] = slot
            self.entries.move_to_end(key)
            while len(self.entries) > self.size:
                self.entries.popitem(last=False)
            entry = slot.free(self.gc_s)
            if entry is not None:
                entry.restore()
                self.restores += 1
            else:  # none yet, or every pooled one is held: a fresh build, pooled beside them
                entry = slot.add(_timed_build(slot, make))  # no local here: it would count in the base
                self.builds += 1
            _reseed(entry)
            return entry.model


POOL = _Pool(MAX_POOLED)


def clear_pool() -> None:
    """Forget every pooled backbone (their memory is freed once nothing else holds them)."""
    with POOL.lock:
        POOL.entries.clear()


def _key(spec, weights, input_config: Mapping, options: Mapping, precision: str) -> tuple:
    import keras

    return (id(spec), spec.name, weights.fingerprint,
            json.dumps(dict(input_config), sort_keys=True, default=str),
            json.dumps(dict(options), sort_keys=True, default=str), keras.backend.backend(), precision)


def trainable_backbone(spec, weights, input_config: Mapping, options: Mapping, precision: str,
                       make: Callable[[], Any]):
    """A backbone to fine-tune: ``make()`` (a fresh build at ``precision``) the first time in this
    process, then the same model with its pretrained state restored while nothing else holds it.
    Without pretrained ``weights`` always ``make()``."""
    if weights is None:
        return make()
    return POOL.get(_key(spec, weights, input_config, options, precision), make, spec)
