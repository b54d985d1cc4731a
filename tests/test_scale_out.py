"""Several daemons on one database (PostgreSQL in CI's second run, SQLite in the first): every slot is posted
exactly once, a SIGKILLed daemon's claimed work is taken over, and a live daemon's in-flight post is not."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlmodel import select

from drainage.clock import FakeClock
from drainage.email.ledger import Ledger, open_fanout
from drainage.store.db import make_engine, session
from drainage.store.models import Cursor, Delivery
from drainage.store.models import DeliveryStatus as S
from tests.conftest import REPO
from tests.daemon_helpers import make_dispatcher, rows, scripted_plugin, write_project
from tests.daemon_process import add_campaign, received, start
from tests.daemon_process import write_project as write_process_project
from tests.databases import database_url
from tests.email_helpers import SLOT, engine_for, fanouts, ledger, subscribe
from tests.email_helpers import write_project as write_email_project
from tests.fakes.smtp import free_port
from tests.test_email_crash import _listening, _received
from tests.waiting import eventually


def _stop(daemons: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM every daemon, then wait for each (they stop in parallel)."""
    for proc in daemons:
        proc.send_signal(signal.SIGTERM)
    for proc in daemons:
        proc.wait(60)


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
        eventually(lambda: len(received(tmp_path)) >= 15, timeout=60, what="the first posts")
        daemons[0].send_signal(signal.SIGKILL)  # mid-run: it may hold a claimed post
        daemons[0].wait()
        time.sleep(1.0)
        daemons[0] = start(tmp_path)  # restarted later
        eventually(lambda: len(received(tmp_path)) >= len(expected), timeout=90, what="every slot to be posted")
        eventually(lambda: (tmp_path / "daemon.log").read_text().count("daemon.started") == 4, timeout=60,
                   what="the restarted daemon to start (a loaded machine may post every slot before it does)")
        time.sleep(1.5)  # room for a duplicate to show up, if the claims were wrong
    finally:
        _stop(daemons)
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


RECIPIENTS = 1500
IN_FLIGHT = 20


def _owner_pid(engine: Engine) -> int | None:
    with session(engine) as s:
        row = s.exec(select(Delivery).where(Delivery.status == S.SENDING)).first()
    return int(row.claimed_by.split(":")[-2]) if row is not None and row.claimed_by else None


def _fanout_done(engine: Engine) -> bool:
    return [f.status for f in fanouts(engine)] == ["done"]


@pytest.mark.slow
def test_three_daemons_share_one_email_fan_out_and_take_over_a_killed_owner(tmp_path: Path) -> None:
    port, sink_file = free_port(), tmp_path / "received.jsonl"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(REPO)}
    sink = subprocess.Popen([sys.executable, "-m", "tests.fakes.smtp", "--port", str(port), "--out", str(sink_file)],
                            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    daemons: list[subprocess.Popen[bytes]] = []
    log = open(tmp_path / "daemons.log", "ab")  # noqa: SIM115 - shared by the daemons, closed below

    def start_daemon() -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-m", "drainage", "run", "--config", str(config)], cwd=tmp_path,
                                env=env, stdout=log, stderr=log)

    try:
        eventually(lambda: _listening(port), timeout=20, what="the SMTP sink")
        config = write_email_project(tmp_path, port, connections=2, in_flight=IN_FLIGHT,
                                     channel_extra="rate: 100/second\n", daemon_extra="lease: 2s\nsweep_every: 1s\n")
        engine = engine_for(tmp_path)
        with session(engine) as s:  # the daemons last looked before the slot: it is due when they start
            s.add(Cursor(campaign="spring", channel="news", until=SLOT - timedelta(minutes=10)))
            s.commit()
        addresses = [f"user{i:04d}@example.com" for i in range(RECIPIENTS)]
        subscribe(engine, addresses)
        daemons = [start_daemon() for _ in range(3)]
        eventually(lambda: len(_received(sink_file)) >= RECIPIENTS // 4, timeout=90, what="a quarter of the fan-out")
        owner = _owner_pid(engine)
        assert owner is not None, "one daemon owns the delivery while its fan-out runs"
        [victim] = [i for i, proc in enumerate(daemons) if proc.pid == owner]
        daemons[victim].send_signal(signal.SIGKILL)  # the owner, mid fan-out: the others must take over
        daemons[victim].wait()
        killed_at = len(_received(sink_file))
        time.sleep(1.0)
        daemons[victim] = start_daemon()  # restarted later
        eventually(lambda: _fanout_done(engine), timeout=120, what="the fan-out to finish")
        time.sleep(1.5)  # room for a duplicate to show up, if the claims were wrong
    finally:
        _stop(daemons)
        log.close()
        sink.send_signal(signal.SIGINT)
        sink.wait(timeout=10)
    got = Counter(r["to"] for r in _received(sink_file))
    states = ledger(engine)
    unknown = {a for a, state in states.items() if state == "unknown"}
    assert [a for a, n in got.items() if n > 1] == []  # nobody got it twice
    assert killed_at < RECIPIENTS, "the kill must land mid fan-out"
    assert len(unknown) <= 2  # only the killed daemon's transactions at the relay: one per connection
    assert {a for a in addresses if got[a] == 0} <= unknown
    assert {a for a, state in states.items() if state == "sent"} == set(got) - unknown
    assert set(states.values()) <= {"sent", "unknown"}
    with engine.connect() as conn:  # the chunks were claimed by several daemons, not by the owner alone
        senders = Counter(lease.split(":")[-3] for (lease,) in conn.execute(text(
            "SELECT lease FROM email_recipients WHERE status = 'sent'")))
    assert len(senders) >= 3, senders  # at least two of the first three and the daemon that took over
    with session(engine) as s:
        statuses = Counter(r.status for r in s.exec(select(Delivery)).all())
    engine.dispose()
    assert statuses == {S.SENT: 1}
    output = (tmp_path / "daemons.log").read_text()
    assert "email.fanout_assist" in output and "unknown.taken_over" in output


def test_a_live_senders_recipients_are_left_alone_until_its_lease_expires(tmp_path: Path) -> None:
    config = write_email_project(tmp_path, free_port(), daemon_extra="lease: 2m\n")
    assert config.exists()
    engine = engine_for(tmp_path)
    subscribe(engine, [f"u{i}@example.com" for i in range(6)])
    fanout = open_fanout(engine, "spring|news|scarf|warm|slot", "spring", "news", ["newsletter"])
    assert fanout.id is not None
    other = Ledger(engine, fanout.id, "spring", owner="other-host:4242:abcdef")
    claimed, _ = other.step([], [], 3)  # another host's daemon has three in flight
    assert len(claimed) == 3
    assert other.write([], [c.row_id for c in claimed[:2]]) == {c.row_id for c in claimed[:2]}  # two at the relay
    mine = Ledger(engine, fanout.id, "spring", lease=timedelta(minutes=2))
    assert mine.settle_orphans(resend=False) == 0  # its lease runs: not ours to settle
    assert mine.others_sending() == 3
    mine_claimed, _ = mine.step([], [], 10)  # the rest can be claimed beside it
    assert sorted(c.email for c in mine_claimed) == [f"u{i}@example.com" for i in (3, 4, 5)]
    other.step([], [], 0, check=True)  # renewing keeps them alive
    assert Ledger(engine, fanout.id, "spring", lease=timedelta(seconds=30)).settle_orphans(False) == 0
    time.sleep(0.05)
    late = Ledger(engine, fanout.id, "spring", lease=timedelta(milliseconds=10))
    assert late.settle_orphans(resend=False) == 2  # not renewed within the lease: its sender is gone
    assert mine.others_sending() == 0
    states = ledger(engine)
    engine.dispose()
    # the two at the relay are unknown; the one only claimed goes back to the queue; mine are still claimed
    assert Counter(states.values()) == {"unknown": 2, "queued": 1, "claimed": 3}
