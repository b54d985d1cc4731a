"""Clicks leave the request path: an in-memory buffer written in batches, in one transaction per batch.

A redirect only appends a small record to a list. A background task writes the buffer when `batch_size`
clicks wait or `flush_every` has passed, whichever comes first: the clicks, their hourly rollups, the daily
unique visitors and the daily per-link rollups (clicks by class, unique visitors: what reports read), in one
transaction, so rollups are always exactly the sum of the clicks. A failed write keeps
the batch and retries; SIGTERM writes everything before the process ends. A hard kill loses at most the clicks
of the last `flush_every` (plus the time one write takes).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Connection, Engine

from drainage.logs import event
from drainage.store.models import AgentClass
from drainage.tracker.agents import classify
from drainage.tracker.metrics import TrackerMetrics


@dataclass(slots=True)
class PendingClick:
    """What a redirect records; classification and parsing happen later, off the request path."""

    click_id: str
    code: str
    at: datetime
    visitor: str
    user_agent: str
    method: str
    referer: str


class ClickRecorder:
    """Buffers clicks and writes them in batches from one background task."""

    def __init__(self, engine: Engine, metrics: TrackerMetrics, *, flush_every: float = 0.25,
                 batch_size: int = 1000, max_pending: int = 200_000) -> None:
        self.engine = engine
        self.metrics = metrics
        self.flush_every = flush_every
        self.batch_size = batch_size
        self.max_pending = max_pending
        self._pending: list[PendingClick] = []
        self._full = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self.written = 0

    @property
    def depth(self) -> int:
        """Clicks accepted but not yet written."""
        return len(self._pending)

    def add(self, click: PendingClick) -> None:
        """Accept one click (called on the request path: no I/O)."""
        self._pending.append(click)
        if len(self._pending) >= self.batch_size:
            self._full.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="click-flusher")

    async def stop(self) -> None:
        """Stop the background task and write everything still buffered."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for _ in range(5):
            if not self._pending:
                return
            if not await self.flush():
                await asyncio.sleep(0.2)
        if self._pending:
            event("tracker.clicks_lost", logging.ERROR, clicks=len(self._pending),
                  reason="the database could not be written at shutdown")

    async def _run(self) -> None:
        delay = self.flush_every
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._full.wait(), timeout=delay)
            self._full.clear()
            ok = await self.flush()
            delay = self.flush_every if ok else min(max(delay * 2, 0.5), 10.0)

    async def flush(self) -> bool:
        """Write what is buffered now; False (batch kept for the next try) when the database fails."""
        async with self._lock:
            batch, self._pending = self._pending, []
            if not batch:
                self.metrics.queue.set(0)
                return True
            started = time.perf_counter()
            try:
                classes = await asyncio.to_thread(self._write, batch)
            except Exception as exc:
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
            self.metrics.flush_seconds.observe(time.perf_counter() - started)
            for agent_class, count in classes.items():
                self.metrics.clicks.labels(agent_class=agent_class).inc(count)
            self.metrics.queue.set(len(self._pending))
            self.written += len(batch)
            return True

    def _write(self, batch: list[PendingClick]) -> Counter[str]:
        with self.engine.begin() as conn:
            stamp = _sqlite_time if conn.dialect.name == "sqlite" else _same
            clicks: list[tuple[Any, ...]] = []
            classes: Counter[str] = Counter()
            rollups: Counter[tuple[Any, str, str]] = Counter()
            visitors: set[tuple[Any, str, str]] = set()
            hours: dict[tuple[int, int, int, int], Any] = {}
            for c in batch:
                agent_class, device = classify(c.user_agent, c.method)
                classes[agent_class] += 1
                at = c.at
                clicks.append((c.click_id, c.code, stamp(at), c.visitor, agent_class, device, _host(c.referer)))
                hour_key = (at.year, at.month, at.day, at.hour)
                hour = hours.get(hour_key)
                if hour is None:
                    hour = hours[hour_key] = stamp(at.replace(minute=0, second=0, microsecond=0))
                rollups[(hour, c.code, agent_class)] += 1
                if agent_class == AgentClass.HUMAN:
                    visitors.add((at.date().isoformat() if stamp is _sqlite_time else at.date(), c.code, c.visitor))
            writer = _RawWriter(conn)
            writer.many(CLICKS_SQL, clicks)
            # sorted keys: concurrent trackers take row locks in the same order (no deadlocks on PostgreSQL)
            writer.many(ROLLUPS_SQL, [(*key, n) for key, n in sorted(rollups.items())])
            days: dict[tuple[Any, str], list[int]] = {}
            for (hour, code, agent_class), n in rollups.items():
                day = days.setdefault((_day_of(hour), code), [0, 0, 0, 0])
                day[_CLASS_COLUMN[agent_class]] += n
            # only the visitors this insert adds are new for the day: counted from what the insert returns, which
            # stays exact when several trackers write the same visitor at once (one insert wins, one returns it)
            for day_value, code in writer.returning(VISITORS_SQL, sorted(visitors)):
                days[(day_value, code)][3] += 1
            writer.many(LINK_DAYS_SQL, [(*key, *counts) for key, counts in sorted(days.items())])
        return classes


CLICKS_SQL = ("INSERT INTO clicks (click_id, code, clicked_at, visitor, agent_class, device, referer_host) "
              "VALUES (?, ?, ?, ?, ?, ?, ?)")
ROLLUPS_SQL = ("INSERT INTO click_rollups (hour, code, agent_class, clicks) VALUES (?, ?, ?, ?) "
               "ON CONFLICT (hour, code, agent_class) DO UPDATE SET clicks = click_rollups.clicks + excluded.clicks")
VISITORS_SQL = ("INSERT INTO visitor_days (day, code, visitor) VALUES {values} "
                "ON CONFLICT DO NOTHING RETURNING day, code")
LINK_DAYS_SQL = ("INSERT INTO link_days (day, code, human, preview, bot, visitors) VALUES (?, ?, ?, ?, ?, ?) "
                 "ON CONFLICT (day, code) DO UPDATE SET human = link_days.human + excluded.human, "
                 "preview = link_days.preview + excluded.preview, bot = link_days.bot + excluded.bot, "
                 "visitors = link_days.visitors + excluded.visitors")
_CLASS_COLUMN = {AgentClass.HUMAN: 0, AgentClass.PREVIEW: 1, AgentClass.BOT: 2}
_ROWS_PER_STATEMENT = 300
"""Rows per multi-row INSERT (3 parameters each: under SQLite's oldest limit of 999 parameters)."""


class _RawWriter:
    """executemany on the DB-API cursor, in the connection's transaction.

    The tracker writes thousands of rows a second; SQLAlchemy's per-row parameter processing cost four times
    the insert itself (bench/tracker.py), so these three statements (plain SQL that SQLite and PostgreSQL both
    accept) go to the driver directly, with values in the form SQLAlchemy itself stores them.
    """

    def __init__(self, conn: Connection) -> None:
        self.cursor = conn.connection.cursor()
        self.marker = "?" if conn.dialect.paramstyle == "qmark" else "%s"

    def many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        if rows:
            self.cursor.executemany(sql.replace("?", self.marker), rows)

    def returning(self, sql: str, rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        """Multi-row INSERT ... RETURNING (`{values}` in `sql`): the rows the database actually inserted."""
        returned: list[tuple[Any, ...]] = []
        for start in range(0, len(rows), _ROWS_PER_STATEMENT):
            chunk = rows[start:start + _ROWS_PER_STATEMENT]
            row_marks = "(" + ", ".join([self.marker] * len(chunk[0])) + ")"
            self.cursor.execute(sql.format(values=", ".join([row_marks] * len(chunk))),
                                [value for row in chunk for value in row])
            returned += [tuple(r) for r in self.cursor.fetchall()]
        return returned


def _sqlite_time(moment: datetime) -> str:
    """A UTC datetime as SQLAlchemy's DateTime stores it in SQLite (naive, with microseconds)."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(" ", timespec="microseconds")


def _same(moment: datetime) -> datetime:
    return moment


def _day_of(hour: Any) -> Any:
    """The day of an hour as `_write` stamps it: 'YYYY-MM-DD' for SQLite's text datetimes, else a date."""
    return hour[:10] if isinstance(hour, str) else hour.date()


def _host(referer: str) -> str:
    if not referer:
        return ""
    try:
        return (urlsplit(referer).hostname or "")[:255]
    except ValueError:
        return ""
