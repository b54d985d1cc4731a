"""Helpers for daemon tests: a scripted platform channel and a small project written to a temp folder."""

from __future__ import annotations

import textwrap
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
from tests.databases import database_url


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


CONFIG = """\
store:
  name: Test store
  base_url: https://shop.example.com
database:
  url: {database_url}
tracker:
  public_url: https://go.example.com
timezone: UTC
daemon:
  max_attempts: 3
  backoff: 30s
  backoff_max: 10m
channels:
  plat:
    type: scripted
{extra_channel}
"""

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
    (root / "campaigns").mkdir(parents=True, exist_ok=True)
    (root / "templates").mkdir(exist_ok=True)
    config = CONFIG.format(extra_channel=textwrap.indent(extra_channel, "  ") if extra_channel else "",
                           database_url=database_url(root))
    if rate_limit:
        config = config.replace("    type: scripted\n", f"    type: scripted\n    rate_limit: {rate_limit}\n")
    (root / "config.yaml").write_text(config)
    lines = "\n".join(f"  - id: i{n}\n    name: Item {n}\n    url: /products/{n}" for n in range(items))
    (root / "campaigns" / "c.yaml").write_text(CAMPAIGN.format(
        status=status, tz=tz, on_unknown=on_unknown, items=lines, rotation=rotation, schedule=schedule,
        channel=channel))
    (root / "templates" / "post.j2").write_text("{{ item.name }} {{ link(item) }}\n")
    return root / "config.yaml"


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
