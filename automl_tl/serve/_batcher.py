"""Requests gathered into batches: the requests that arrive within a short window (or until a
batch is full) are answered by one forward pass, run on one thread of its own so that the event
loop keeps accepting requests meanwhile. Written here because neither FastAPI nor uvicorn
batches requests; it is an asyncio queue and one worker task."""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

__all__ = ["Batcher"]


@dataclass
class _Job:
    """One request's usable inputs and the future its handler awaits."""

    items: list
    future: asyncio.Future
    queued: float = field(default_factory=time.perf_counter)


class Batcher:
    """Runs ``predict(items) -> probabilities (n x classes)`` on batches of requests.

    ``window_s``: how long the first request of a batch waits for others; ``max_batch``: the
    most inputs in one pass (a request with more runs alone). Passes never overlap: the one
    thread that runs them would only compete with a second for the same cores."""

    def __init__(self, predict: Callable[[list], np.ndarray], *, window_s: float, max_batch: int) -> None:
        self._predict = predict
        self.window_s, self.max_batch = float(window_s), int(max_batch)
        self._queue: asyncio.Queue[_Job] | None = None
        self._task: asyncio.Task | None = None
        self._carry: _Job | None = None  # the request that did not fit the batch before
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self.stats = {"requests": 0, "inputs": 0, "forward_passes": 0, "largest_pass_inputs": 0,
                      "largest_pass_requests": 0, "requests_sharing_a_pass": 0, "failed_passes": 0,
                      "model_seconds": 0.0}

    def start(self) -> None:
        """Start the worker on the running event loop (the server's start-up)."""
        self._queue = asyncio.Queue()
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="automl-tl-model")
        self._task = asyncio.get_running_loop().create_task(self._run(), name="automl-tl-batcher")

    async def stop(self) -> None:
        """Stop the worker (the server's shutdown): requests still queued are told so."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        while self._queue is not None and not self._queue.empty():
            self._fail(self._queue.get_nowait(), RuntimeError("the server is shutting down"))
        if self._carry is not None:
            self._fail(self._carry, RuntimeError("the server is shutting down"))
        if self._executor is not None:
            self._executor.shutdown(wait=True)

    async def submit(self, items: Sequence[Any]) -> np.ndarray:
        """The probabilities of ``items`` (one row each), from the pass they join."""
        if self._queue is None:
            raise RuntimeError("the batcher is not started")
        job = _Job(list(items), asyncio.get_running_loop().create_future())
        self._queue.put_nowait(job)
        return await job.future

    async def _gather(self) -> list[_Job]:
        """The next batch: the first request waiting, then those arriving within the window,
        while they fit in ``max_batch`` inputs."""
        assert self._queue is not None
        first = self._carry or await self._queue.get()
        self._carry = None
        jobs, n = [first], len(first.items)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.window_s
        while n < self.max_batch:
            try:
                job = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                left = deadline - loop.time()
                if left <= 0:
                    break
                try:
                    job = await asyncio.wait_for(self._queue.get(), left)
                except asyncio.TimeoutError:
                    break
            if n + len(job.items) > self.max_batch:
                self._carry = job
                break
            jobs.append(job)
            n += len(job.items)
        return jobs

    async def _run(self) -> None:
        while True:
            jobs = [j for j in await self._gather() if not j.future.done()]  # a client gone: cancelled
            if jobs:
                await self._pass(jobs)

    async def _pass(self, jobs: list[_Job]) -> None:
        """One forward pass for ``jobs``; when it fails, each job alone, so that one bad input
        fails its own request only."""
        items = [x for j in jobs for x in j.items]
        try:
            proba = await self._forward(items)
        except Exception as exc:  # noqa: BLE001 - handed to the requests, which answer it
            self.stats["failed_passes"] += 1
            if len(jobs) == 1:
                self._fail(jobs[0], exc)
                return
            for job in jobs:
                await self._pass([job])
            return
        s = self.stats
        s["requests"] += len(jobs)
        s["inputs"] += len(items)
        s["largest_pass_inputs"] = max(s["largest_pass_inputs"], len(items))
        s["largest_pass_requests"] = max(s["largest_pass_requests"], len(jobs))
        s["requests_sharing_a_pass"] += len(jobs) if len(jobs) > 1 else 0
        start = 0
        for job in jobs:
            if not job.future.done():
                job.future.set_result(proba[start:start + len(job.items)])
            start += len(job.items)

    async def _forward(self, items: list) -> np.ndarray:
        t = time.perf_counter()
        proba = await asyncio.get_running_loop().run_in_executor(self._executor, self._predict, items)
        self.stats["forward_passes"] += 1
        self.stats["model_seconds"] += time.perf_counter() - t
        proba = np.asarray(proba)
        if proba.shape[0] != len(items):
            raise RuntimeError(f"the model gave {proba.shape[0]} rows of probabilities for {len(items)} inputs")
        return proba

    @staticmethod
    def _fail(job: _Job, exc: BaseException) -> None:
        if not job.future.done():
            job.future.set_exception(exc)
