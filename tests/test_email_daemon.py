"""The email channel inside the daemon: a shutdown mid fan-out stops cleanly and the next pass resumes it."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from sqlmodel import select

from drainage.clock import RealClock
from drainage.dispatch import Dispatcher
from drainage.project import load_project
from drainage.store.db import session
from drainage.store.models import Cursor, Delivery
from tests.email_helpers import SLOT, engine_for, ledger, subscribe, write_project
from tests.fakes.smtp import smtp_server
from tests.waiting import eventually_async


def test_a_shutdown_mid_fan_out_releases_the_queue_and_the_next_pass_resumes_without_resending(
        tmp_path: Path) -> None:
    with smtp_server() as (smtp, port):
        config = write_project(tmp_path, port, connections=2, in_flight=10, channel_extra="rate: 50/second\n")
        engine = engine_for(tmp_path)
        addresses = [f"user{i:03d}@example.com" for i in range(60)]
        subscribe(engine, addresses)
        with session(engine) as s:  # the daemon has seen the campaign before its slot
            s.add(Cursor(campaign="spring", channel="news", until=SLOT - timedelta(minutes=1)))
            s.commit()

        async def first_pass() -> None:
            dispatcher = Dispatcher(load_project(config), engine, RealClock())

            async def stop_soon() -> None:
                await eventually_async(lambda: len(smtp.received) >= 10, timeout=60, interval=0.01,
                                       what="the first ten messages")
                dispatcher.stopping = True  # what SIGTERM does

            await asyncio.gather(dispatcher.run_channel("news"), stop_soon())
            await dispatcher.project.close()

        asyncio.run(first_pass())
        states = ledger(engine)
        assert "sending" not in states.values() and "unknown" not in states.values()
        sent_first = sorted(a for a, state in states.items() if state == "sent")
        assert sorted(r.recipient for r in smtp.received) == sent_first
        assert 10 <= len(sent_first) < 60
        with session(engine) as s:
            row = s.exec(select(Delivery)).one()
        assert row.status == "retrying" and "stopping" in (row.error or "")

        async def second_pass() -> None:
            dispatcher = Dispatcher(load_project(config), engine, RealClock())
            await dispatcher.run_channel("news")
            await dispatcher.project.close()

        asyncio.run(second_pass())
        assert sorted(r.recipient for r in smtp.received) == addresses  # everyone, once
        with session(engine) as s:
            row = s.exec(select(Delivery)).one()
        assert row.status == "sent" and row.remote_id == "60 sent"
