"""The micro-batcher: concurrent submissions share model calls; a failing call fails only its own requests."""

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from graftlab.serving.batching import MicroBatcher


class Model:
    def __init__(self, fail_on: str | None = None):
        self.calls: list[int] = []
        self.fail_on = fail_on
        self.active = 0
        self.max_active = 0
        self.lock = threading.Lock()

    def __call__(self, texts):
        with self.lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            time.sleep(0.01)
            if self.fail_on in texts:
                raise ValueError("boom")
            self.calls.append(len(texts))
            return np.array([[len(t), 1.0] for t in texts])
        finally:
            with self.lock:
                self.active -= 1


def run(model, submissions, window_s=0.02, max_items=32):
    async def main():
        executor = ThreadPoolExecutor(1)
        batcher = MicroBatcher(model, executor, window_s, max_items)
        await batcher.start()
        try:
            return await asyncio.gather(*(batcher.submit(s) for s in submissions), return_exceptions=True)
        finally:
            await batcher.stop()
            executor.shutdown()

    return asyncio.run(main())


def test_concurrent_requests_are_batched_and_answered_in_order():
    model = Model()
    subs = [["a" * (i + 1)] for i in range(20)] + [["x", "yy", "zzz"]]
    results = run(model, subs)
    assert sum(model.calls) == 23
    assert len(model.calls) < 5  # 21 requests, a handful of model calls
    for sub, res in zip(subs, results):
        np.testing.assert_array_equal(res.proba[:, 0], [len(t) for t in sub])
    assert model.max_active == 1  # one model call at a time


def test_batches_respect_max_items():
    model = Model()
    run(model, [["t"]] * 40, max_items=8)
    assert max(model.calls) <= 8 and sum(model.calls) == 40


def test_a_failing_batch_fails_its_requests_and_the_batcher_keeps_working():
    model = Model(fail_on="bad")

    async def main():
        executor = ThreadPoolExecutor(1)
        batcher = MicroBatcher(model, executor, 0.0, 32)
        await batcher.start()
        try:
            with pytest.raises(ValueError, match="boom"):
                await batcher.submit(["bad"])
            ok = await batcher.submit(["fine"])
            assert ok.proba.shape == (1, 2)
        finally:
            await batcher.stop()
            executor.shutdown()

    asyncio.run(main())


def test_one_bad_input_fails_only_its_own_request_in_a_shared_batch():
    model = Model(fail_on="bad")
    results = run(model, [["good"], ["bad"], ["fine", "ok"]], window_s=0.05)
    assert isinstance(results[1], ValueError)
    np.testing.assert_array_equal(results[0].proba[:, 0], [4])
    np.testing.assert_array_equal(results[2].proba[:, 0], [4, 2])
