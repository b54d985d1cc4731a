"""A known history for report tests: links, posts (sent, failed, missed), clicks written by the tracker's own
batch writer at chosen times, and orders; plus an oracle that computes what a report must show straight from
that history (the raw facts), independently of the rollups the report reads."""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

from sqlalchemy import Engine

from drainage.links import TrackedLink, tracked_link
from drainage.store.db import make_engine, session
from drainage.store.migrate import ensure_schema
from drainage.store.models import Delivery, Link, Order
from drainage.tracker.metrics import TrackerMetrics
from drainage.tracker.orders import store
from drainage.tracker.recorder import ClickRecorder, PendingClick
from tests.databases import database_url

PUBLIC = "https://go.example.com"
AGENTS = {
    "human": "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "preview": "TelegramBot (like TwitterBot)",
    "bot": "curl/8.5.0",
}
D0, D1, D2, D3, D4 = (date(2026, 11, d) for d in (1, 2, 3, 4, 5))
"""D1..D3 is the reported period; D0 and D4 lie outside it."""


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


@dataclass(frozen=True)
class L:
    """A link: its attribution and whether it is a personal (email recipient) link."""

    name: str
    campaign: str
    channel: str
    item: str
    variant: str = ""
    recipient: str = ""

    @property
    def tracked(self) -> TrackedLink:
        return tracked_link(PUBLIC, f"https://shop.example.com/p/{self.item}?n={self.name}", self.campaign,
                            self.channel, self.item, self.variant, self.recipient)


LINKS = {link.name: link for link in (
    L("scarf_a", "spring", "social", "scarf", "a"),
    L("scarf_b", "spring", "social", "scarf", "b"),
    L("hat_a", "spring", "social", "hat", "a"),
    L("sale_a", "spring", "social", "scarf", "a"),        # a second link in the scarf posts of variant a
    L("news_r1", "spring", "newsletter", "scarf", "", "r1"),
    L("news_r2", "spring", "newsletter", "scarf", "", "r2"),
    L("mittens", "autumn", "forum", "mittens"),
)}


@dataclass(frozen=True)
class P:
    """A journal row: a post of a series with the links in its text."""

    name: str
    campaign: str
    channel: str
    item: str
    variant: str
    slot: datetime
    status: str
    links: tuple[str, ...] = ()
    error: str | None = None
    recipients: int | None = None
    impressions: int | None = None
    in_payload: bool = True


POSTS = (
    P("p1", "spring", "social", "scarf", "a", at(D1, 8), "sent", ("scarf_a", "sale_a"), impressions=400),
    P("p2", "spring", "social", "scarf", "b", at(D2, 8), "sent", ("scarf_b",), impressions=250),
    P("p3", "spring", "social", "scarf", "a", at(D3, 9), "sent", ("scarf_a",), impressions=300, in_payload=False),
    P("p4", "spring", "newsletter", "scarf", "", at(D1, 7), "sent", (), recipients=200),
    P("p5", "autumn", "forum", "mittens", "", at(D2, 10), "sent", ("mittens",)),
    P("p6", "autumn", "forum", "mittens", "", at(D3, 10), "failed", ("mittens",),
      error="transient: HTTP 503 from forum.example.com (gave up after 5 attempts)"),
    P("p7", "autumn", "forum", "mittens", "", at(D3, 16), "failed", ("mittens",),
      error="transient: HTTP 502 from forum.example.com (gave up after 5 attempts)"),
    P("p8", "spring", "social", "hat", "a", at(D2, 12), "missed",
      error="not sent: 3h10m late, beyond misfire_grace 1h (the daemon was not running)"),
    P("p9", "spring", "social", "scarf", "b", at(D3, 12), "failed", ("scarf_b",), error="permanent: text too long"),
    P("p0", "spring", "social", "scarf", "a", at(D0, 8), "sent", ("scarf_a",), impressions=999),  # before the period
    P("px", "autumn", "forum", "mittens", "", at(D4, 10), "sent", ("mittens",)),                  # after the period
)


@dataclass(frozen=True)
class C:
    """`count` clicks on a link at a time, by one class of agent and one visitor."""

    link: str
    when: datetime
    agent: str
    visitor: str
    count: int = 1


CLICKS = (
    C("scarf_a", at(D0, 20), "human", "v0", 2),       # before the period (credited to p0, outside the report)
    C("scarf_a", at(D1, 10), "human", "v1", 2),       # one visitor, two clicks
    C("scarf_a", at(D1, 11), "human", "v2"),
    C("scarf_a", at(D1, 11, 30), "preview", "t1", 3),
    C("sale_a", at(D1, 12), "human", "v1"),           # the same person on another link the same day
    C("hat_a", at(D1, 13), "human", "v1"),            # a link no post of the period carries
    C("scarf_a", at(D2, 23, 59), "human", "v1"),      # v1 the next day: a new unique visitor
    C("scarf_b", at(D2, 9), "human", "w1"),
    C("scarf_b", at(D2, 9, 5), "human", "w2"),
    C("scarf_b", at(D2, 9, 10), "human", "w3"),
    C("scarf_b", at(D2, 9, 15), "human", "w4"),
    C("scarf_b", at(D2, 9, 20), "preview", "t2"),
    C("scarf_a", at(D3, 12), "human", "v3"),          # after p3 (the repost of scarf/a): credited to p3
    C("scarf_a", at(D3, 12, 5), "bot", "b1"),
    C("news_r1", at(D1, 9), "human", "r1"),
    C("news_r2", at(D2, 9), "human", "r2", 2),
    C("mittens", at(D2, 11), "human", "m1"),
    C("mittens", at(D2, 11), "human", "m2"),
    C("mittens", at(D2, 12), "human", "m3"),
    C("mittens", at(D2, 12), "bot", "b2", 2),
    C("mittens", at(D4, 11), "human", "m4", 5),       # after the period
)


@dataclass(frozen=True)
class Ord:
    order_id: str
    amount: str
    when: datetime
    campaign: str | None = None
    channel: str | None = None
    item: str | None = None
    variant: str | None = None
    attributed_by: str = "click"
    currency: str = "EUR"


ORDERS = (
    Ord("o1", "50.00", at(D1, 14), "spring", "social", "scarf", "a"),
    Ord("o2", "30.00", at(D2, 10), "spring", "social", "scarf", "b"),
    Ord("o3", "20.00", at(D2, 18), "spring", "social", None, None, "utm"),
    Ord("o4", "10.00", at(D3, 9), attributed_by="none"),
    Ord("o5", "15.50", at(D3, 20), "autumn", "forum", "mittens", ""),
    Ord("o6", "99.00", at(D4, 9), "autumn", "forum", "mittens", ""),        # after the period
    Ord("o7", "12.34", at(D1, 15), "spring", "newsletter", "scarf", ""),
)


def build_history(root: Path) -> Engine:
    """A database holding LINKS, POSTS, CLICKS (through the tracker's writer) and ORDERS."""
    engine = make_engine(database_url(root))
    ensure_schema(engine)
    with session(engine) as s:
        for link in LINKS.values():
            t = link.tracked
            s.add(Link(code=t.code, target=t.target, campaign=t.campaign, channel=t.channel, item=t.item,
                       variant=t.variant, recipient=t.recipient))
        for post in POSTS:
            urls = [LINKS[name].tracked.url for name in post.links]
            text = f"{post.item} {post.variant}\n" + "\n".join(urls)
            payload = json.dumps({"text": text, "links": urls}) if post.in_payload else None
            s.add(Delivery(key=post.name, campaign=post.campaign, channel=post.channel, item=post.item,
                           variant=post.variant, slot_at=post.slot, status=post.status, text=text, payload=payload,
                           error=post.error, recipients=post.recipients, impressions=post.impressions,
                           remote_url=f"https://social.example.com/{post.name}" if post.status == "sent" else None,
                           sent_at=post.slot.replace(minute=1) if post.status == "sent" else None))
        s.commit()
    for o in ORDERS:  # through the tracker's own store, which keeps the daily order rollup
        assert store(engine, Order(order_id=o.order_id, amount=Decimal(o.amount), currency=o.currency,
                                   campaign=o.campaign, channel=o.channel, item=o.item, variant=o.variant,
                                   attributed_by=o.attributed_by, ordered_at=o.when))
    write_clicks(engine, CLICKS)
    return engine


def write_clicks(engine: Engine, clicks: tuple[C, ...] | list[C]) -> None:
    """Write clicks with the tracker's own batch writer (clicks, hourly and daily rollups, visitors)."""

    async def scenario() -> None:
        recorder = ClickRecorder(engine, TrackerMetrics())
        n = 0
        for c in clicks:
            for _ in range(c.count):
                n += 1
                recorder.add(PendingClick(f"click{n:06d}", LINKS[c.link].tracked.code, c.when.timestamp(), c.visitor,
                                          AGENTS[c.agent], "GET", ""))
                if n % 7 == 0:  # several batches, so that the rollups are built up across writes
                    assert await recorder.flush()
        assert await recorder.flush()

    asyncio.run(scenario())


# -- the oracle --------------------------------------------------------------------------------------------------
KEYS = {"channel": ("channel",), "campaign": ("campaign",), "variant": ("campaign", "channel", "variant"),
        "item": ("campaign", "item"), "day": ("day",)}


@dataclass
class Expected:
    sent: int = 0
    failed: int = 0
    missed: int = 0
    human: int = 0
    preview: int = 0
    bot: int = 0
    uniques: set[tuple[object, ...]] = field(default_factory=set)
    orders: int = 0
    revenue: Decimal = Decimal("0.00")


def expected(by: str, first: date = D1, last: date = D3) -> dict[tuple[object, ...], Expected]:
    """What each row of a report grouped `by` must show, from the raw history."""

    def key(day: date, campaign: str | None, channel: str | None, item: str | None,
            variant: str | None) -> tuple[object, ...]:
        values = {"day": day, "campaign": campaign, "channel": channel, "item": item, "variant": variant}
        return tuple("(unattributed)" if values[k] is None else values[k] for k in KEYS[by])

    rows: dict[tuple[object, ...], Expected] = defaultdict(Expected)
    for post in POSTS:
        day = post.slot.date()
        if first <= day <= last and post.status in ("sent", "failed", "missed"):
            row = rows[key(day, post.campaign, post.channel, post.item, post.variant)]
            setattr(row, post.status, getattr(row, post.status) + 1)
    for c in CLICKS:
        day = c.when.date()
        if first <= day <= last:
            link = LINKS[c.link]
            row = rows[key(day, link.campaign, link.channel, link.item, link.variant)]
            setattr(row, c.agent, getattr(row, c.agent) + c.count)
            if c.agent == "human":
                row.uniques.add((day, c.visitor))  # visitor ids are daily: one per person and day
    for o in ORDERS:
        day = o.when.date()
        if first <= day <= last:
            row = rows[key(day, o.campaign, o.channel, o.item, o.variant)]
            row.orders += 1
            row.revenue += Decimal(o.amount)
    return dict(rows)
