"""Helpers for daemon tests: a scripted platform channel and a small project written to a temp folder."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import ClassVar, Literal

from sqlmodel import select

from drainage.channel import Channel, ChannelOptions, Limits, Post, Receipt
from drainage.clock import FakeClock
from drainage.dispatch import Dispatcher
from drainage.pacing import Backoff
from drainage.project import Project, load_project
from drainage.registry import channel_types
from drainage.store.db import make_engine, session
from drainage.store.migrate import ensure_schema
from drainage.store.models import Delivery
from tests.project_files import RETRIES, block, config_yaml
from tests.project_files import write_project as write_project_files


class ScriptedOptions(ChannelOptions):
    type: Literal["scripted"] = "scripted"
    lookup: bool = False


class ScriptedChannel(Channel):
    """A platform double: each send pops the next scripted outcome (an exception to raise, or None to accept)."""

    type = "scripted"
    Options: ClassVar[type[ChannelOptions]] = ScriptedOptions
    limits = Limits(max_length=500)
    script: ClassVar[list[BaseException | None]] = []
    received: ClassVar[list[Post]] = []
    published: ClassVar[set[str]] = set()

    async def send(self, post: Post) -> Receipt:
        outcome = ScriptedChannel.script.pop(0) if ScriptedChannel.script else None
        if outcome is not None:
            raise outcome
        ScriptedChannel.received.append(post)
        ScriptedChannel.published.add(post.key)
        return Receipt(remote_id=f"r{len(ScriptedChannel.received)}", url=None)

    async def lookup(self, post: Post) -> Receipt | None:
        return Receipt(remote_id="found") if post.key in ScriptedChannel.published else None

    @property
    def can_lookup(self) -> bool:
        return bool(getattr(self.options, "lookup", False))


@contextmanager
def scripted_plugin() -> Iterator[type[ScriptedChannel]]:
    """Register the scripted channel type for the duration of a test."""
    types = channel_types()
    types["scripted"] = ScriptedChannel
    ScriptedChannel.script, ScriptedChannel.received, ScriptedChannel.published = [], [], set()
    try:
        yield ScriptedChannel
    finally:
        types.pop("scripted", None)


CAMPAIGN = """\
title: Test campaign
status: {status}
timezone: {tz}
misfire_grace: 1h
on_unknown: {on_unknown}
items:
{items}
rotation: {rotation}
schedule:
{schedule}
channels:
  - channel: {channel}
    template: post.j2
"""


def write_project(root: Path, *, schedule: str = "  - every: 1h", items: int = 1, rotation: str = "round-robin",
                  status: str = "active", tz: str = "UTC", on_unknown: str = "skip", channel: str = "plat",
                  extra_channel: str = "", rate_limit: str | None = None) -> Path:
    """Write config.yaml, campaigns/c.yaml and templates/post.j2; return the config path."""
    plat = {"type": "scripted", **({"rate_limit": rate_limit} if rate_limit else {})}
    config = config_yaml(root, daemon=RETRIES,
                         channels={"plat": plat, **block(extra_channel)})
    lines = "\n".join(f"  - id: i{n}\n    name: Item {n}\n    url: /products/{n}" for n in range(items))
    return write_project_files(root, config, campaigns={"c.yaml": CAMPAIGN.format(
        status=status, tz=tz, on_unknown=on_unknown, items=lines, rotation=rotation, schedule=schedule,
        channel=channel)}, templates={"post.j2": "{{ item.name }} {{ link(item) }}\n"})


def make_dispatcher(config: Path, clock: FakeClock) -> tuple[Project, Dispatcher]:
    project = load_project(config)
    engine = make_engine(project.config.database_url)
    ensure_schema(engine)
    dispatcher = Dispatcher(project, engine, clock, backoff=Backoff(30, 600))
    return project, dispatcher


def rows(dispatcher: Dispatcher) -> list[Delivery]:
    with session(dispatcher.engine) as s:
        return list(s.exec(select(Delivery).order_by(Delivery.slot_at, Delivery.id)).all())


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)
