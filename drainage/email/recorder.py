"""A sender's one path to the ledger for outcomes and `sending` marks (group-committed).

The SMTP sessions hand it each finished message's result and, before the next message's DATA, ask it to mark
that recipient `sending`. Both go into the same transaction, in the order asked: a session's previous outcome is
always on disk before its next recipient is `sending`, so a hard kill leaves at most one `sending` row per
session (the unknown window is `connections`, not `in_flight`). Requests that arrive while a transaction runs
wait for the next one, so a busy sender writes many of them at once.
"""

from __future__ import annotations

import asyncio
import logging

from drainage.email.ledger import Ledger, Result
from drainage.logs import event


class Recorder:
    """Writes a sender's results and `sending` marks through `Ledger.write`, one transaction at a time."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self._results: list[Result] = []
        self._marks: dict[int, asyncio.Future[bool]] = {}
        self._flushes: list[asyncio.Future[None]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._busy = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Write what is pending, then stop."""
        if self._task is None:
            return
        await self.flush()
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self._task = None

    def cancel(self) -> None:
        """Stop at once (a sender cut off: it writes `unwritten()` itself)."""
        if self._task is not None:
            self._task.cancel()
            self._task = None
        for future in [*self._marks.values(), *self._flushes]:
            future.cancel()

    def record(self, result: Result) -> None:
        """Write `result` with the next transaction."""
        self._results.append(result)
        self._wake.set()

    def mark(self, row_id: int) -> asyncio.Future[bool]:
        """Mark a claimed row `sending` (after every result recorded so far); True once written, False when the
        row is no longer this sender's or the write failed (then it must not be sent)."""
        future = asyncio.get_running_loop().create_future()
        self._marks[row_id] = future
        self._wake.set()
        return future

    async def flush(self) -> None:
        """Until everything asked so far is written (including a write under way)."""
        if not self._results and not self._marks and not self._busy:
            return
        future = asyncio.get_running_loop().create_future()
        self._flushes.append(future)
        self._wake.set()
        await future

    def unwritten(self) -> list[Result]:
        """Take the results not written yet (a sender cut off writes them itself)."""
        results, self._results = self._results, []
        return results

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            results, self._results = self._results, []
            marks, self._marks = self._marks, {}
            flushes, self._flushes = self._flushes, []
            self._busy = True
            try:
                marked = await asyncio.to_thread(self.ledger.write, results, list(marks)) \
                    if results or marks else set()
            except Exception as exc:  # the database: nothing is sent; the outcomes are written with the next step
                event("email.ledger_write_failed", logging.ERROR, campaign=self.ledger.campaign,
                      error=f"{exc.__class__.__name__}: {exc}"[:300])
                self._results[:0] = results
                marked = set()
            finally:
                self._busy = False
            for row_id, future in marks.items():
                if not future.done():
                    future.set_result(row_id in marked)
            for flushed in flushes:
                if not flushed.done():
                    flushed.set_result(None)
