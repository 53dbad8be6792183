"""Micro-batching: requests that arrive within a short window share one model call on a worker thread.

One :class:`MicroBatcher` per served model; all of them hand their calls to the same single-thread
executor, so the process runs one model call at a time (the CPU is shared anyway) while the event loop
keeps accepting requests. When a shared call raises, its requests are scored again one by one, so an
input that breaks the model fails only its own request.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass

import numpy as np

__all__ = ["BatchResult", "MicroBatcher"]


@dataclass
class BatchResult:
    """The rows of one submission and how long the shared model call took."""

    proba: np.ndarray  # (n_texts, n_classes)
    compute_ms: float
    batch_size: int


@dataclass
class _Item:
    texts: list[str]
    future: asyncio.Future


class MicroBatcher:
    """Collect submissions for up to ``window_s`` (or ``max_items`` texts), then run ``fn`` on all of them.

    Args:
        fn: texts -> (n, k) probabilities; called on ``executor``.
        executor: where ``fn`` runs (a single-thread executor keeps one model call at a time).
        window_s: how long the first submission of a batch waits for company.
        max_items: a batch is closed as soon as it holds this many texts.
    """

    def __init__(self, fn: Callable[[list[str]], np.ndarray], executor: Executor, window_s: float = 0.005,
                 max_items: int = 32) -> None:
        self.fn = fn
        self.executor = executor
        self.window_s = window_s
        self.max_items = max_items
        self._queue: asyncio.Queue[_Item] | None = None
        self._task: asyncio.Task | None = None
        self._inflight: list[_Item] = []
        self.calls = 0  # model calls so far (tests read it)
        self.items = 0

    async def start(self) -> None:
        if self._task is None:
            self._queue = asyncio.Queue()
            self._task = asyncio.create_task(self._run(), name="graft-microbatcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        pending = list(self._inflight)
        while self._queue is not None and not self._queue.empty():
            pending.append(self._queue.get_nowait())
        for item in pending:
            if not item.future.done():
                item.future.set_exception(RuntimeError("the server is shutting down"))

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def submit(self, texts: Sequence[str]) -> BatchResult:
        """Score ``texts`` in the next batch; raises whatever ``fn`` raised for that batch."""
        if not self.running:
            raise RuntimeError("the micro-batcher is not running")
        future = asyncio.get_running_loop().create_future()
        await self._queue.put(_Item(list(texts), future))
        return await future

    async def _collect(self) -> list[_Item]:
        queue = self._queue
        items = [await queue.get()]
        n = len(items[0].texts)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.window_s
        while n < self.max_items:
            if queue.empty():
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    item = await asyncio.wait_for(queue.get(), remaining)
                except TimeoutError:
                    break
            else:
                item = queue.get_nowait()
            items.append(item)
            n += len(item.texts)
        return [i for i in items if not i.future.done()]  # a cancelled request needs no compute

    async def _call(self, texts: list[str]) -> np.ndarray:
        proba = np.asarray(await asyncio.get_running_loop().run_in_executor(self.executor, self.fn, texts))
        if proba.ndim != 2 or proba.shape[0] != len(texts):
            raise RuntimeError(f"the model returned shape {proba.shape} for {len(texts)} inputs")
        return proba

    async def _run(self) -> None:
        while True:
            items = self._inflight = await self._collect()
            if not items:
                continue
            texts = [t for i in items for t in i.texts]
            start = time.perf_counter()
            try:
                proba = await self._call(texts)
            except Exception as e:  # noqa: BLE001 -- the model's failure belongs to requests, not to the batcher
                await self._one_by_one(items, e)
                continue
            compute_ms = (time.perf_counter() - start) * 1000.0
            self.calls += 1
            self.items += len(texts)
            offset = 0
            for i in items:
                rows = proba[offset : offset + len(i.texts)]
                offset += len(i.texts)
                if not i.future.done():
                    i.future.set_result(BatchResult(rows, compute_ms, len(texts)))

    async def _one_by_one(self, items: list[_Item], error: Exception) -> None:
        """A batch failed: score its requests separately, so only the one(s) that break the model fail."""
        if len(items) == 1:
            if not items[0].future.done():
                items[0].future.set_exception(error)
            return
        for i in items:
            start = time.perf_counter()
            try:
                proba = await self._call(i.texts)
            except Exception as e:  # noqa: BLE001 -- handed to the request that caused it
                if not i.future.done():
                    i.future.set_exception(e)
                continue
            self.calls += 1
            self.items += len(i.texts)
            if not i.future.done():
                i.future.set_result(BatchResult(proba, (time.perf_counter() - start) * 1000.0, len(i.texts)))
