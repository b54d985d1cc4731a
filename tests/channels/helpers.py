"""A one-campaign project posting to one real channel plugin, driven through the dispatcher on a fake clock."""

from __future__ import annotations

import asyncio
import contextlib
import io
import textwrap
from datetime import datetime
from pathlib import Path

from sqlmodel import select

from drainage.clock import FakeClock
from drainage.dispatch import post_from_json
from drainage.logs import setup
from drainage.store.db import session
from drainage.store.models import ChannelState, Delivery
from drainage.store.models import DeliveryStatus as S
from tests.daemon_helpers import make_dispatcher
from tests.databases import database_url
from tests.fake_platform import FakePlatform
from tests.waiting import eventually_async

START = datetime.fromisoformat("2026-03-01T10:30:00+00:00")
SLOT = datetime.fromisoformat("2026-03-01T11:00:00+00:00")
ITEM_NAME = "Socks & <Scarves>"

CONFIG = """\
database:
  url: {database_url}
store:
  name: Test store
  base_url: https://shop.example.com
tracker:
  public_url: https://go.example.com
timezone: UTC
daemon:
  max_attempts: 3
  backoff: 30s
  backoff_max: 10m
channels:
  {name}:
{options}
"""

CAMPAIGN = """\
title: Winter sale
status: active
timezone: UTC
misfire_grace: 1h
on_unknown: {on_unknown}
items:
  - id: scarf
    name: "{item_name}"
    url: /products/scarf
{image}
schedule:
  - cron: "0 11 * * *"
channels:
  - channel: {name}
    template: post.j2
    subject: "New in the shop: {{{{ item.name }}}}"
"""

TEMPLATE = "{{ item.name }}: 10% off this week with code WARM10. {{ link(item) }}\n"


class ChannelRun:
    """A project with one channel instance `name`, a dispatcher on a fake clock, and its log lines."""

    def __init__(self, root: Path, fake: FakePlatform, name: str, options: str, *, image: bool = False,
                 on_unknown: str = "skip", template: str = TEMPLATE, item_name: str = ITEM_NAME,
                 item_lines: str = "", config_extra: str = "") -> None:
        (root / "campaigns").mkdir(parents=True, exist_ok=True)
        (root / "templates").mkdir(exist_ok=True)
        config = root / "config.yaml"
        options = textwrap.indent(textwrap.dedent(options).strip(), "    ")
        config.write_text(CONFIG.format(name=name, database_url=database_url(root), options=options) + config_extra)
        image_line = f"    image: {fake.image_url('scarf.png')}" if image else ""
        image_line += f"\n    {item_lines}" if item_lines else ""
        (root / "campaigns" / "c.yaml").write_text(CAMPAIGN.format(name=name, on_unknown=on_unknown,
                                                                   image=image_line, item_name=item_name))
        (root / "templates" / "post.j2").write_text(template)
        self.name = name
        self.clock = FakeClock(START)
        fake.now = lambda: self.clock.now().timestamp()
        self.log = io.StringIO()
        setup("plain", secrets=(), stream=self.log)  # no redaction: the plugin itself must keep secrets out
        self.project, self.dispatcher = make_dispatcher(config, self.clock)
        self.run()  # first sight: the cursor starts at 10:30
        self.clock.set(SLOT)

    @property
    def channel(self):  # type: ignore[no-untyped-def]
        return self.project.channel(self.name)

    def run(self) -> None:
        asyncio.run(self.dispatcher.run_all())

    def rows(self) -> list[Delivery]:
        with session(self.dispatcher.engine) as s:
            return list(s.exec(select(Delivery).order_by(Delivery.slot_at, Delivery.id)).all())

    def row(self) -> Delivery:
        (row,) = self.rows()
        return row

    def wait_seconds(self) -> float:
        """How long the single row waits before its next attempt."""
        row = self.row()
        assert row.next_attempt_at is not None
        return (row.next_attempt_at.replace(tzinfo=self.clock.now().tzinfo) - self.clock.now()).total_seconds()

    def retry_when_due(self) -> None:
        self.clock.advance(self.wait_seconds())
        self.run()

    def paused(self) -> ChannelState | None:
        with session(self.dispatcher.engine) as s:
            state = s.get(ChannelState, self.name)
            return state if state is not None and state.paused else None

    def crash_after_claim(self, published: bool) -> str:
        """Plan the slot and leave its row `sending`, as a crash would; with `published`, the platform got it."""
        self.dispatcher.plan_due(self.name)
        with session(self.dispatcher.engine) as s:
            row = s.exec(select(Delivery)).one()
            if published:
                post = post_from_json(row.payload or "")
                post.key = row.key
                asyncio.run(self.channel.send(post))
            row.status, row.attempts = S.SENDING, 1
            s.add(row)
            s.commit()
            return row.key

    def everything_written(self) -> str:
        """Log lines and every text column of the journal: where a secret must never appear."""
        parts = [self.log.getvalue()]
        for row in self.rows():
            parts += [row.error or "", row.remote_url or "", row.remote_id or "", row.payload or ""]
        state = self.paused()
        if state is not None:
            parts.append(state.reason or "")
        return "\n".join(parts)


def crash_during(run: ChannelRun, fake: FakePlatform, call: str) -> None:
    """Hold the platform's answer to `call` ("telegram:getMe"), cancel the dispatcher's pass while it waits (the
    process dies there), release the platform, and let the dead worker's lease run out."""
    platform, method = call.split(":")

    async def main() -> None:
        fake.set_delay(call, 60)
        task = asyncio.ensure_future(run.dispatcher.run_all())
        await eventually_async(lambda: fake.received(platform, "/" + method), timeout=30,
                               what=f"the daemon to call {call}")
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(main())
    fake.set_delay(call, 0)
    run.dispatcher.in_flight.clear()  # a new process: it knows nothing of the dead one's sends
    run.dispatcher.worker = "another-host:1:abc123"
    run.clock.advance(minutes=5)  # past the lease (2m)
