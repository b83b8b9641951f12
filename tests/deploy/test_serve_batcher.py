"""The server's batcher on its own: which requests share a pass, and a failing input failing its
own request only. ``predict`` here is a plain function of the items (the model's place)."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from automl_tl.serve import Batcher


def _scores(passes):
    """A predict function recording each pass's items: one row (x, 1 - x) per number x; "bad" fails."""
    def predict(items):
        passes.append(list(items))
        if "bad" in items:
            raise ValueError("bad input")
        return np.array([[x, 1 - x] for x in items], dtype=float)

    return predict


def _run(coro):
    return asyncio.run(coro)


def test_requests_in_the_window_share_one_pass_up_to_max_batch():
    passes = []

    async def scenario():
        b = Batcher(_scores(passes), window_s=0.2, max_batch=4)
        b.start()
        try:
            first = asyncio.ensure_future(b.submit([0.1, 0.2, 0.3]))
            await asyncio.sleep(0.05)  # inside the first request's window
            second = asyncio.ensure_future(b.submit([0.4, 0.5]))  # 5 inputs would pass max_batch
            third = asyncio.ensure_future(b.submit([0.6]))
            results = await asyncio.gather(first, second, third)
        finally:
            await b.stop()
        return results, b.stats

    (first, second, third), stats = _run(scenario())
    assert passes == [[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]]  # the second waited for the next pass, with the third
    np.testing.assert_allclose(first[:, 0], [0.1, 0.2, 0.3])
    np.testing.assert_allclose(second[:, 0], [0.4, 0.5])
    np.testing.assert_allclose(third[:, 0], [0.6])
    assert stats["forward_passes"] == 2 and stats["requests"] == 3 and stats["inputs"] == 6
    assert stats["largest_pass_requests"] == 2 and stats["requests_sharing_a_pass"] == 2


def test_a_failing_input_fails_its_own_request_only():
    passes = []

    async def scenario():
        b = Batcher(_scores(passes), window_s=0.05, max_batch=64)
        b.start()
        try:
            jobs = [b.submit([0.1]), b.submit(["bad"]), b.submit([0.2, 0.3])]
            return await asyncio.gather(*jobs, return_exceptions=True), b.stats
        finally:
            await b.stop()

    (good, bad, other), stats = _run(scenario())
    assert passes[0] == [0.1, "bad", 0.2, 0.3]  # one pass for all, then each request alone
    assert isinstance(bad, ValueError)
    np.testing.assert_allclose(good[:, 0], [0.1])
    np.testing.assert_allclose(other[:, 0], [0.2, 0.3])
    assert stats["failed_passes"] == 2 and stats["requests"] == 2


def test_without_a_window_only_requests_already_waiting_share_a_pass():
    passes = []

    async def scenario():
        b = Batcher(_scores(passes), window_s=0.0, max_batch=64)
        b.start()
        try:
            both = await asyncio.gather(b.submit([0.1]), b.submit([0.2]))  # queued before the worker runs
            later = await b.submit([0.3])
        finally:
            await b.stop()
        return both, later

    both, later = _run(scenario())
    assert passes == [[0.1, 0.2], [0.3]]
    assert later.shape == (1, 2)


def test_submit_before_start_is_an_error():
    with pytest.raises(RuntimeError, match="not started"):
        _run(Batcher(_scores([]), window_s=0.0, max_batch=1).submit([1.0]))
