"""Rate limits shared by every daemon on one database (`drainage.pacing.SharedLimit`)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest

from drainage.email.throttle import RelayPace
from drainage.pacing import SharedLimit
from drainage.store.db import make_engine
from drainage.store.migrate import ensure_schema
from tests.databases import database_url

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def engines(tmp_path):  # type: ignore[no-untyped-def]
    """Two engines on one database: two daemons."""
    url = database_url(tmp_path)
    first, second = make_engine(url), make_engine(url)
    ensure_schema(first)
    yield first, second
    first.dispose()
    second.dispose()


def test_a_daily_cap_holds_across_daemons_and_restarts(engines) -> None:
    first, second = (SharedLimit(e, "channel:x-main", 17, timedelta(days=1)) for e in engines)
    taken = [(first if n % 2 else second).take(T0 + timedelta(minutes=n)) for n in range(17)]
    assert taken == [0.0] * 17
    assert first.take(T0 + timedelta(hours=2)) == pytest.approx(timedelta(hours=22).total_seconds())
    restarted = SharedLimit(engines[1], "channel:x-main", 17, timedelta(days=1))
    assert restarted.take(T0 + timedelta(hours=23)) == pytest.approx(3600.0)
    assert restarted.take(T0 + timedelta(days=1, seconds=1)) == 0.0  # the first post left the window
    assert restarted.take(T0 + timedelta(days=1, seconds=2)) > 0  # the second is still inside it
    other = SharedLimit(engines[0], "channel:other", 17, timedelta(days=1))
    assert other.take(T0 + timedelta(hours=2)) == 0.0  # each key is its own limit


def test_a_retry_after_blocks_every_daemon_and_a_send_not_made_is_given_back(engines) -> None:
    first, second = (SharedLimit(e, "channel:tg", 2, timedelta(minutes=1)) for e in engines)
    first.block(T0 + timedelta(seconds=90))
    assert second.take(T0) == pytest.approx(90.0)
    assert second.take(T0 + timedelta(seconds=90)) == 0.0
    assert first.take(T0 + timedelta(seconds=91)) == 0.0
    assert second.take(T0 + timedelta(seconds=92)) == pytest.approx(58.0)
    first.give_back(T0 + timedelta(seconds=91))  # its claim lost the post to another daemon
    assert second.take(T0 + timedelta(seconds=92)) == 0.0


@pytest.mark.slow  # several daemons' fan-outs at 3/second: seconds by design
def test_an_email_relays_rate_is_shared_by_the_fan_outs_of_every_daemon(engines) -> None:
    paces = []
    for engine in engines:  # each daemon paces its own fan-out at the relay's rate, and takes from the shared one
        pace = RelayPace(3.0)
        pace.shared = SharedLimit(engine, "relay:news:rate", 3, timedelta(seconds=1)).acquire
        paces.append(pace)

    async def both() -> float:
        started = time.monotonic()
        await asyncio.gather(*(pace.acquire() for pace in paces for _ in range(6)))
        return time.monotonic() - started

    elapsed = asyncio.run(both())
    assert elapsed >= 3.0  # 12 messages at 3 a second in any second: the 10th cannot go before 3 s (alone: 1 s)
