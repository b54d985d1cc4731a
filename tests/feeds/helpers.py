"""A small project whose campaign posts a feed's new entries to two outbox channels, and ways to inspect it."""

from __future__ import annotations

import asyncio
import json
import textwrap
from pathlib import Path
from typing import Any

from sqlmodel import col, select

from drainage.clock import FakeClock
from drainage.dispatch import Dispatcher
from drainage.pacing import Backoff
from drainage.project import load_project
from drainage.store.db import make_engine, session
from drainage.store.migrate import ensure_schema
from drainage.store.models import Delivery, FeedState, QueuedEntry
from tests.databases import database_url
from tests.project_files import config_yaml, write_project

STORE = {"name": "Northwind Knits", "link_hosts": ["shop.example.com", "blog.example.com"]}
CHANNELS = {"social": {"type": "outbox", "kind": "social", "max_length": 280},
            "forum": {"type": "outbox", "kind": "forum"}}

CAMPAIGN = """\
title: New in the shop
status: {status}
misfire_grace: 1h
feeds:
  - url: {url}
    every: 30m
{options}
    channels:
      - channel: social
        template: social.j2
      - channel: forum
        template: forum.j2
"""

SOCIAL = """\
{% if entry.event == 'price_drop' %}Price drop: {{ entry.title }} now {{ entry | price }} \
(was {{ entry.previous_price | price(entry.currency) }}){% else %}New: {{ entry.title }}\
{% if entry.price %} for {{ entry | price }}{% endif %}{% endif %} {{ entry.link }}
"""

FORUM = """\
**{{ entry.title }}**

{{ entry.summary | shorten(200) }}
{% if entry.image %}![]({{ entry.image }}){% endif %}

{{ entry.link }} ({{ entry.categories | join(', ') or 'no category' }})
"""


def write_feed_project(root: Path, url: str, options: str = "", status: str = "active") -> Path:
    """config.yaml, campaigns/shop.yaml (one feed at `url`, extra feed keys in `options`) and the templates."""
    campaign = CAMPAIGN.format(url=url, status=status,
                               options=textwrap.indent(textwrap.dedent(options).strip(), "    ") if options else "")
    return write_project(root, config_yaml(root, store=STORE, channels=CHANNELS), campaigns={"shop.yaml": campaign},
                         templates={"social.j2": SOCIAL, "forum.j2": FORUM})


def dispatcher_for(config: Path, clock: FakeClock) -> Dispatcher:
    """A fresh dispatcher (a fresh process, as far as drainage can tell) on the project's database file."""
    engine = make_engine(database_url(config.parent))
    ensure_schema(engine)
    return Dispatcher(load_project(config), engine, clock, backoff=Backoff(30, 600))


def run(dispatcher: Dispatcher) -> None:
    asyncio.run(dispatcher.run_all())


def deliveries(dispatcher: Dispatcher) -> list[Delivery]:
    with session(dispatcher.engine) as s:
        return list(s.exec(select(Delivery).order_by(col(Delivery.slot_at), col(Delivery.id))).all())


def queued(dispatcher: Dispatcher) -> list[QueuedEntry]:
    with session(dispatcher.engine) as s:
        return list(s.exec(select(QueuedEntry).order_by(col(QueuedEntry.id))).all())


def feed_state(dispatcher: Dispatcher, url: str, campaign: str = "shop") -> FeedState | None:
    with session(dispatcher.engine) as s:
        return s.get(FeedState, (campaign, url))


def outbox(root: Path, channel: str) -> list[dict[str, Any]]:
    """What the outbox channel wrote, one record per post, in order."""
    path = root / "outbox" / f"{channel}.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def texts(root: Path, channel: str) -> list[str]:
    return [r["text"] for r in outbox(root, channel)]
