"""Pacing sends: rate limits shared by every daemon on the database, and retry backoff with jitter."""

from __future__ import annotations

import asyncio
import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import Session, select

from drainage.store.db import session
from drainage.store.models import Pace
from drainage.units import parse_rate as parse_rate  # where the dispatcher looks for it


class SharedLimit:
    """At most `count` sends per `period` for one key (a channel instance, an email relay), however many daemons
    share the database: every send is taken in one transaction under the key's row lock (PostgreSQL: SELECT ...
    FOR UPDATE; SQLite: its single writer), and the times of the sends inside the period are kept on that row.

    A sliding window, so a cap holds in every span of `period` (X's 17 posts a day mean 17 in any 24 h, also
    across restarts and daemons); a platform's Retry-After blocks the key for everyone (`block`).
    """

    def __init__(self, engine: Engine, key: str, count: int, period: timedelta) -> None:
        self.engine, self.key, self.count, self.period = engine, key, count, period.total_seconds()

    def take(self, now: datetime) -> float:
        """Take one send now and return 0, or return the seconds to wait before one may go (nothing taken)."""
        stamp = now.timestamp()
        with session(self.engine) as s:
            row = self._locked(s)
            sent = [t for t in json.loads(row.sent) if t > stamp - self.period]
            wait = max(0.0, row.blocked_until - stamp)
            if len(sent) >= self.count:
                wait = max(wait, sent[-self.count] + self.period - stamp)
            if wait <= 0:
                sent.append(stamp)
            row.sent = json.dumps(sent)
            s.add(row)
            s.commit()
        return max(0.0, wait)

    async def acquire(self) -> None:
        """Wait, without blocking the event loop, until one send may go now, and take it."""
        while (wait := await asyncio.to_thread(self.take, datetime.now(UTC))) > 0:
            await asyncio.sleep(wait)

    def give_back(self, now: datetime) -> None:
        """Return a send taken at `now` that did not happen (another daemon claimed the post first)."""
        stamp = now.timestamp()
        with session(self.engine) as s:
            row = self._locked(s)
            sent = json.loads(row.sent)
            if stamp in sent:
                sent.remove(stamp)
                row.sent = json.dumps(sent)
                s.add(row)
            s.commit()

    def block(self, until: datetime) -> None:
        """Nothing may go on this key before `until` (a rate-limit answer's retry-after), in any daemon."""
        with session(self.engine) as s:
            row = self._locked(s)
            row.blocked_until = max(row.blocked_until, until.timestamp())
            s.add(row)
            s.commit()

    def _locked(self, s: Session) -> Pace:
        dialect = self.engine.dialect.name
        if dialect in ("postgresql", "sqlite"):  # create the row once, without a race between daemons
            from sqlalchemy.dialects import postgresql, sqlite  # on first use: keeps the daemon's start quick

            insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
            s.execute(insert(Pace).values(key=self.key, sent="[]", blocked_until=0.0).on_conflict_do_nothing())
        elif s.get(Pace, self.key) is None:
            s.add(Pace(key=self.key))
            s.flush()
        return s.exec(select(Pace).where(Pace.key == self.key).with_for_update()).one()


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter: attempt n waits uniform(base*2^(n-1)/2, base*2^(n-1)), capped."""

    base: float
    cap: float
    rng: random.Random = field(default_factory=random.Random, compare=False)

    def delay(self, attempt: int) -> float:
        ceiling = min(self.cap, self.base * 2 ** max(0, attempt - 1))
        return self.rng.uniform(ceiling / 2, ceiling)
