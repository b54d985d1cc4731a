"""A one-campaign project posting to one real channel plugin, driven through the dispatcher on a fake clock."""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import Callable
from dataclasses import dataclass
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
from tests.fake_platform import FakePlatform, Fault
from tests.project_files import RETRIES, block, config_yaml, write_project
from tests.waiting import eventually_async

START = datetime.fromisoformat("2026-03-01T10:30:00+00:00")
SLOT = datetime.fromisoformat("2026-03-01T11:00:00+00:00")
ITEM_NAME = "Socks & <Scarves>"

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
        image_line = f"    image: {fake.image_url('scarf.png')}" if image else ""
        image_line += f"\n    {item_lines}" if item_lines else ""
        config = write_project(
            root, config_yaml(root, daemon=RETRIES, channels={name: block(options)}) + config_extra,
            campaigns={"c.yaml": CAMPAIGN.format(name=name, on_unknown=on_unknown, image=image_line,
                                                 item_name=item_name)},
            templates={"post.j2": template})
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


@dataclass(frozen=True)
class FaultCase:
    """One row of a channel's fault table: what the fake platform answers, and the error the post's row shows.

    The error's kind says what must happen: `rate_limited` waits (`wait` seconds, or a range where the platform
    rounds) without using an attempt, `transient` uses one, and both are then sent, once; `permanent` fails the
    post for good after one attempt.
    """

    fault: Fault | Callable[[], Fault]  # a callable builds it when injected (a reset time relative to now)
    error: str
    exact: bool = True  # False: the row's error starts with `error` (the rest is the library's wording)
    wait: float | tuple[float, float] | None = None
    queue: str | None = None  # where the fault is injected, when not the platform's create call
    times: int = 1


_OUTCOMES = {"rate_limited": (S.RETRYING, 0), "transient": (S.RETRYING, 1), "permanent": (S.FAILED, 1)}


def check_fault(run: ChannelRun, fake: FakePlatform, platform: str, case: FaultCase) -> None:
    """Post through `run` while the fake platform answers with `case.fault`; check what the row and the platform
    show, then the retry (sent once) or that a failed post stays failed."""
    fault = case.fault() if callable(case.fault) else case.fault
    fake.inject(case.queue or platform, fault, times=case.times)
    run.run()
    row = run.row()
    status, attempts = _OUTCOMES[case.error.split(":", 1)[0]]
    assert (row.status, row.attempts) == (status, attempts), row.error
    assert (row.error == case.error) if case.exact else row.error.startswith(case.error), row.error
    if case.wait is not None:
        low, high = case.wait if isinstance(case.wait, tuple) else (case.wait, case.wait)
        assert low <= run.wait_seconds() <= high
    if status == S.RETRYING:
        run.retry_when_due()
        assert run.row().status == S.SENT
        assert len(fake.posts(platform)) == 1
    else:
        run.clock.advance(hours=1)
        run.run()
        assert (run.row().status, run.row().attempts) == (S.FAILED, 1)  # never retried
