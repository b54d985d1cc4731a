"""Clicks leave the request path: an in-memory buffer written in batches, in one transaction per batch.

A redirect only appends a small record to a list. A background task writes the buffer when `batch_size`
clicks wait or `flush_every` has passed, whichever comes first (`drainage.tracker.writer`: the clicks and their
rollups in one transaction). By default the writing happens in a child process (`tracker.writer: process`,
see `drainage.tracker.writer_process`), so the redirect process spends no CPU on the database; `thread` writes
from a thread of the tracker process instead. A failed write keeps the batch and retries; SIGTERM writes
everything before the process ends. A hard kill loses at most the clicks of the last `flush_every` (plus the
time one write takes).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter

from sqlalchemy import Engine

from drainage.logs import event
from drainage.tracker.metrics import TrackerMetrics
from drainage.tracker.visitors import VisitorHasher
from drainage.tracker.writer import ClickRow, PendingClick, write_batch
from drainage.tracker.writer_process import ProcessWriter

__all__ = ["ClickRecorder", "PendingClick"]


class ClickRecorder:
    """Buffers clicks and writes them in batches from one background task."""

    def __init__(self, engine: Engine, metrics: TrackerMetrics, *, flush_every: float = 0.25,
                 batch_size: int = 1000, max_pending: int = 200_000, in_process: bool = False) -> None:
        self.engine = engine
        self.metrics = metrics
        self.flush_every = flush_every
        self.batch_size = batch_size
        self.max_pending = max_pending
        self.process = ProcessWriter(engine.url.render_as_string(hide_password=False)) if in_process else None
        """The writer process (`in_process`), else None: batches are written from a thread."""
        self.visitors = VisitorHasher(b"")
        """Hashes the visitors of the batches written from this process (keyed by `start`)."""
        self._pending: list[ClickRow] = []
        self._full = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._retry = False  # the last batch was handed over without an answer
        self._writing = 0  # clicks of the batch being written now
        self._committing: asyncio.Future[bool] | None = None
        self.written = 0
        """Clicks committed (by this tracker's writer)."""

    @property
    def depth(self) -> int:
        """Clicks answered but not yet committed: those buffered and those of the batch being written."""
        return len(self._pending) + self._writing

    def add(self, click: ClickRow) -> None:
        """Accept one click, a `PendingClick` or the same plain tuple (called on the request path: no I/O)."""
        self._pending.append(click)
        if len(self._pending) >= self.batch_size:
            self._full.set()

    async def start(self, visitor_key: bytes) -> None:
        """Start writing; visitors are hashed with `visitor_key` (see `drainage.tracker.visitors`)."""
        self.visitors = VisitorHasher(visitor_key)
        if self.process is not None:
            self.process.visitor_key = visitor_key
            await self.process.start()  # returns once the writer is ready
            event("tracker.writer_ready", pid=self.process.pid)
        self._task = asyncio.create_task(self._run(), name="click-flusher")

    async def stop(self, limit: float = 600.0) -> None:
        """Stop the background task and write every click answered; after `limit` seconds, give up with an
        error that says how many clicks are at risk."""
        try:
            await asyncio.wait_for(self._drain(), limit)
        except TimeoutError:
            event("tracker.clicks_at_risk", logging.ERROR, clicks=self.depth, limit_seconds=limit,
                  reason="the clicks were not all written within the shutdown limit")
            if self.process is not None:
                self.process.abandon()

    async def _drain(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._committing is not None:
            await asyncio.wait([self._committing])  # the batch a cancelled flush handed over
        for _ in range(5):
            if not self._pending:
                break
            if not await self.flush():
                await asyncio.sleep(0.2)
        if self._pending:
            event("tracker.clicks_lost", logging.ERROR, clicks=len(self._pending),
                  reason="the database could not be written at shutdown")
        if self.process is not None:
            await self.process.close()  # the child ends after the batch it holds

    async def _run(self) -> None:
        delay = self.flush_every
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._full.wait(), timeout=delay)
            self._full.clear()
            ok = await self.flush()
            delay = self.flush_every if ok else min(max(delay * 2, 0.5), 10.0)

    async def _write(self, batch: list[ClickRow]) -> Counter[str]:
        if self.process is not None:
            return await self.process.write(batch, self._retry)
        return await asyncio.to_thread(write_batch, self.engine, batch, self.visitors, self._retry)

    async def flush(self) -> bool:
        """Write what is buffered now; False (batch kept for the next try) when the database fails."""
        async with self._lock:
            batch, self._pending = self._pending, []
            if not batch:
                self.metrics.queue.set(0)
                return True
            self._writing = len(batch)
            self.metrics.queue.set(self.depth)
            # shielded: a flush cancelled at shutdown still finishes its batch (the writer commits it anyway) and
            # counts it, and `stop` waits for it before the last flush
            self._committing = asyncio.ensure_future(self._commit(batch))
            return await asyncio.shield(self._committing)

    async def _commit(self, batch: list[ClickRow]) -> bool:
        started = time.perf_counter()
        try:
            classes = await self._write(batch)
        except Exception as exc:
            # the batch stays first in line; a batch whose outcome is unknown (a writer that died, a commit
            # cut off) is sent as a retry, which is skipped if it was committed after all
            self._retry = True
            self._pending = batch + self._pending
            overflow = len(self._pending) - self.max_pending
            if overflow > 0:
                del self._pending[:overflow]
                self.metrics.dropped.inc(overflow)
            self.metrics.flush_errors.inc()
            self.metrics.queue.set(len(self._pending))
            event("tracker.flush_failed", logging.ERROR, clicks=len(batch),
                  error=f"{exc.__class__.__name__}: {exc}"[:300])
            return False
        finally:
            self._writing = 0
            self.metrics.queue.set(self.depth)
        self._retry = False
        self.metrics.flush_seconds.observe(time.perf_counter() - started)
        for agent_class, count in classes.items():
            self.metrics.clicks.labels(agent_class=agent_class).inc(count)
        self.metrics.queue.set(len(self._pending))
        self.written += sum(classes.values())
        return True
