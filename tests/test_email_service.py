"""The fan-out service runs around any email plugin: a third-party `MailChannel` that only opens sessions (here one
that delivers into memory) gets the ledger, per-recipient rendering and retries from the dispatcher."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import ClassVar, Literal, cast

from pydantic import Field
from sqlmodel import select

from drainage.channel import ChannelOptions, Gate, MailChannel, MailOutcome, MailSession, MailSettings
from drainage.clock import RealClock
from drainage.dispatch import Dispatcher
from drainage.email.service import EmailService
from drainage.project import load_project
from drainage.registry import channel_types
from drainage.store.db import session
from drainage.store.models import Cursor, Delivery
from tests.email_helpers import SLOT, engine_for, ledger, subscribe, write_project


class MailbagOptions(ChannelOptions):
    type: Literal["mailbag"] = "mailbag"
    from_address: str
    lists: list[str] = Field(default_factory=list)
    connections: int = 2


class Mailbag(MailChannel):
    """Delivers into a list; the first try to each address in `greylisted` gets a 451, as a greylisting relay."""

    type = "mailbag"
    Options: ClassVar[type[ChannelOptions]] = MailbagOptions
    delivered: ClassVar[list[tuple[str, bytes]]] = []
    greylisted: ClassVar[set[str]] = set()

    def mail_settings(self) -> MailSettings:
        o = cast(MailbagOptions, self.options)
        return MailSettings(from_address=o.from_address, lists=tuple(o.lists), connections=o.connections,
                            retry_backoff=0.01, retry_backoff_max=0.05)

    def open_session(self) -> MailSession:
        return MailbagSession()


class MailbagSession(MailSession):
    async def send(self, sender: str, recipient: str, message: bytes, gate: Gate | None = None) -> MailOutcome:
        if recipient in Mailbag.greylisted:
            Mailbag.greylisted.discard(recipient)
            return MailOutcome("retry", 451, "451 at RCPT: greylisted, try again later")
        if gate is not None and not await gate():
            return MailOutcome("withdrawn")
        Mailbag.delivered.append((recipient, message))
        return MailOutcome("sent", 250)

    async def close(self) -> None:
        pass


@contextmanager
def mailbag_plugin() -> Iterator[type[Mailbag]]:
    types = channel_types()
    types["mailbag"] = Mailbag
    Mailbag.delivered, Mailbag.greylisted = [], set()
    try:
        yield Mailbag
    finally:
        types.pop("mailbag", None)


def mailbag_project(root: Path) -> Path:
    config = write_project(root, 0)
    text = config.read_text(encoding="utf-8")
    head = text[:text.index("channels:\n")]
    config.write_text(head + "channels:\n  news:\n    type: mailbag\n"
                             "    from_address: \"Shop <news@shop.example.com>\"\n    lists: [newsletter]\n",
                      encoding="utf-8")
    return config


def test_a_third_party_email_plugin_gets_the_whole_fan_out_from_the_dispatcher(tmp_path: Path) -> None:
    with mailbag_plugin() as bag:
        config = mailbag_project(tmp_path)
        engine = engine_for(tmp_path)
        addresses = [f"user{i:02d}@example.com" for i in range(12)]
        subscribe(engine, addresses)
        with session(engine) as s:  # the daemon has seen the campaign before its slot
            s.add(Cursor(campaign="spring", channel="news", until=SLOT - timedelta(minutes=1)))
            s.commit()
        bag.greylisted = {"user03@example.com", "user07@example.com"}

        async def run() -> None:
            dispatcher = Dispatcher(load_project(config), engine, RealClock())
            channel = dispatcher.project.channel("news")
            assert isinstance(dispatcher.sender(channel), EmailService)
            dispatcher.plan_due("news")
            async with asyncio.timeout(60):
                await dispatcher.send_ready("news")
            await dispatcher.project.close()

        asyncio.run(run())
        assert sorted(to for to, _ in bag.delivered) == addresses  # everyone once, the greylisted on their retry
        assert ledger(engine) == dict.fromkeys(addresses, "sent")
        message = dict(bag.delivered)["user03@example.com"].decode()
        assert "Hello User03" in message and "Message-ID: <" in message and "@shop.example.com>" in message
        with session(engine) as s:
            row = s.exec(select(Delivery)).one()
        assert (row.status, row.recipients) == ("sent", 12)
