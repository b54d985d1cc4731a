"""Several daemons on one database (PostgreSQL in CI's second run, SQLite in the first): every slot is posted
exactly once, a SIGKILLed daemon's claimed work is taken over, and a live daemon's in-flight post is not."""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from drainage.clock import FakeClock
from drainage.store.db import make_engine, session
from drainage.store.models import Delivery
from drainage.store.models import DeliveryStatus as S
from tests.daemon_helpers import make_dispatcher, rows, scripted_plugin, write_project
from tests.daemon_process import add_campaign, received, start, wait_for
from tests.daemon_process import write_project as write_process_project
from tests.databases import database_url


@pytest.mark.slow
def test_three_daemons_one_killed_and_restarted_post_every_slot_exactly_once(tmp_path: Path) -> None:
    write_process_project(tmp_path, latency=0.1, sweep="1s")
    now = datetime.now(UTC).replace(microsecond=0)
    expected: set[str] = set()
    for n, at in enumerate((now - timedelta(seconds=30), now + timedelta(seconds=4), now + timedelta(seconds=8))):
        add_campaign(tmp_path, f"wave{n}", at, 25, due_now=True)
        expected |= {f"wave{n}|box|p{i}|-|{at.strftime('%Y-%m-%dT%H:%M:%SZ')}" for i in range(25)}
    daemons = [start(tmp_path) for _ in range(3)]
    try:
        wait_for(lambda: len(received(tmp_path)) >= 15, 60, "the first posts")
        daemons[0].send_signal(signal.SIGKILL)  # mid-run: it may hold a claimed post
        daemons[0].wait()
        time.sleep(1.0)
        daemons[0] = start(tmp_path)  # restarted later
        wait_for(lambda: len(received(tmp_path)) >= len(expected), 90, "every slot to be posted")
        time.sleep(1.5)  # room for a duplicate to show up, if the claims were wrong
    finally:
        for proc in daemons:
            proc.send_signal(signal.SIGTERM)
        for proc in daemons:
            proc.wait(60)
    keys = Counter(r["key"] for r in received(tmp_path))
    assert {k: c for k, c in keys.items() if c > 1} == {}
    assert set(keys) == expected
    engine = make_engine(database_url(tmp_path))
    with session(engine) as s:
        statuses = Counter(r.status for r in s.exec(select(Delivery)).all())
    engine.dispose()
    assert statuses == {S.SENT: len(expected)}
    log = (tmp_path / "daemon.log").read_text()
    assert log.count("daemon.started") == 4


def test_a_live_daemons_claim_is_respected_until_its_lease_expires(tmp_path: Path) -> None:
    clock = FakeClock(datetime(2026, 12, 1, 8, 59, tzinfo=UTC))
    config = write_project(tmp_path, schedule="  - cron: '0 9 * * *'")
    with scripted_plugin():
        _, dispatcher = make_dispatcher(config, clock)
        asyncio.run(dispatcher.run_all())  # first sight: the cursor starts now
        clock.advance(minutes=1)
        dispatcher.plan_due("plat")
        [row] = rows(dispatcher)
        with session(dispatcher.engine) as s:  # another host's daemon is sending it right now
            stored = s.get(Delivery, row.id)
            assert stored is not None
            stored.status, stored.claimed_by = S.SENDING, "other-host:4242:abcdef"
            stored.lease_until = clock.now() + timedelta(minutes=2)
            s.add(stored)
            s.commit()
        asyncio.run(dispatcher.settle_unknown("plat"))
        assert rows(dispatcher)[0].status == S.SENDING  # not ours, lease running: left alone
        clock.advance(minutes=3)
        asyncio.run(dispatcher.settle_unknown("plat"))
        [settled] = rows(dispatcher)
        assert settled.status == S.UNKNOWN and settled.claimed_by == dispatcher.worker  # taken over
        assert "on_unknown: skip" in (settled.error or "")
