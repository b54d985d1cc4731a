"""The tables: tracked links, the delivery journal, clicks and their rollups, orders, store feeds."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from sqlalchemy import BigInteger, Index, UniqueConstraint
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


class DeliveryStatus:
    """States of a delivery: pending -> preparing -> sending -> sent | retrying | failed | missed (and unknown).

    `preparing`: claimed, the plugin is getting ready (client, token check, media upload); nothing has reached
    the platform, so a crash here releases the row for sending. `sending`: its bytes may reach the platform.
    """

    PENDING = "pending"
    PREPARING = "preparing"
    SENDING = "sending"
    SENT = "sent"
    RETRYING = "retrying"
    FAILED = "failed"
    MISSED = "missed"
    UNKNOWN = "unknown"  # crashed mid-send, the platform cannot be asked, and on_unknown is 'skip'
    FINAL = frozenset({SENT, FAILED, MISSED, UNKNOWN})


class Link(SQLModel, table=True):
    """A tracked link: the code in the posted URL and the UTM-tagged target it redirects to."""

    __tablename__ = "links"

    code: str = Field(primary_key=True, max_length=32)
    target: str
    campaign: str = Field(index=True, max_length=200)
    channel: str = Field(index=True, max_length=200)
    item: str = Field(max_length=200)
    variant: str = Field(default="", max_length=200)
    recipient: str = Field(default="", max_length=64)
    market: str = Field(default="", max_length=32, description="The market the link was posted for ('' for a "
                                                                "campaign without markets).")
    created_at: datetime = Field(default_factory=utcnow)


class Delivery(SQLModel, table=True):
    """One post of one slot to one channel: the journal row that makes each post happen once."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("key", name="uq_deliveries_key"),
        Index("ix_deliveries_campaign_channel_slot", "campaign", "channel", "slot_at"),
        Index("ix_deliveries_status_next", "status", "next_attempt_at"),
        Index("ix_deliveries_slot_at", "slot_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=600)
    campaign: str = Field(max_length=200)
    channel: str = Field(max_length=200)
    item: str = Field(max_length=200)
    variant: str = Field(default="", max_length=200)
    market: str = Field(default="", max_length=32, description="The market of the post ('' without markets).")
    slot_at: datetime
    status: str = Field(default=DeliveryStatus.PENDING, max_length=16)
    attempts: int = 0
    next_attempt_at: datetime | None = None
    remote_id: str | None = None
    remote_url: str | None = None
    error: str | None = None
    text: str | None = None
    payload: str | None = Field(default=None, description="The rendered post as JSON, resent as is on retry.")
    forced: bool = False
    claimed_by: str | None = Field(default=None, max_length=300,
                                   description="Worker (host:pid:nonce) sending it, while status is sending.")
    lease_until: datetime | None = Field(default=None, description="Until when that worker's claim holds.")
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    sent_at: datetime | None = None
    recipients: int | None = Field(default=None, description="Addresses the post was delivered to (email).")
    impressions: int | None = Field(default=None, description="Views of the post, where the platform reports them.")


class AgentClass:
    """Who clicked: a person, a link-preview fetch (TelegramBot, facebookexternalhit...) or another bot."""

    HUMAN = "human"
    PREVIEW = "preview"
    BOT = "bot"
    ALL = (HUMAN, PREVIEW, BOT)


class Click(SQLModel, table=True):
    """One click-through on a tracked link (written by the tracker in batches). No IP address is ever stored."""

    __tablename__ = "clicks"
    __table_args__ = (UniqueConstraint("click_id", name="uq_clicks_click_id"),)

    id: int | None = Field(default=None, primary_key=True)
    click_id: str = Field(max_length=32, description="Handed to the store in the redirect; comes back with orders.")
    code: str = Field(max_length=32, description="Not indexed: reports read the rollups; drill-downs go by time.")
    clicked_at: datetime = Field(default_factory=utcnow, index=True)
    visitor: str = Field(default="", max_length=64, description="Keyed hash of (IP, user agent, day).")
    agent_class: str = Field(default=AgentClass.HUMAN, max_length=16)
    device: str = Field(default="", max_length=16)
    referer_host: str = Field(default="", max_length=255)


class ClickRollup(SQLModel, table=True):
    """Clicks per hour, link and agent class, kept exact by the tracker in the same transaction as the clicks."""

    __tablename__ = "click_rollups"

    hour: datetime = Field(primary_key=True)
    code: str = Field(primary_key=True, max_length=32)
    agent_class: str = Field(primary_key=True, max_length=16)
    clicks: int = 0


class LinkDay(SQLModel, table=True):
    """Clicks per UTC day and link by agent class, and the day's unique human visitors of the link.

    Written by the tracker in the same transaction as the clicks (like `click_rollups`), so reports never scan
    raw clicks: a report over N days reads at most N rows per link. Clustered by day (SQLite: WITHOUT ROWID) for
    the period scans; indexed by link for crediting clicks to posts.
    """

    __tablename__ = "link_days"
    __table_args__ = (Index("ix_link_days_code_day", "code", "day"), {"sqlite_with_rowid": False})

    day: date = Field(primary_key=True)
    code: str = Field(primary_key=True, max_length=32)
    human: int = 0
    preview: int = 0
    bot: int = 0
    visitors: int = Field(default=0, description="Distinct human visitors of this link on this day.")


class VisitorDay(SQLModel, table=True):
    """Each human visitor once per link and day: unique visitors without scanning raw clicks."""

    __tablename__ = "visitor_days"
    __table_args__ = (Index("ix_visitor_days_visitor", "visitor"),)

    day: date = Field(primary_key=True)
    code: str = Field(primary_key=True, max_length=32)
    visitor: str = Field(primary_key=True, max_length=64)


class UniqueDay(SQLModel, table=True):
    """Distinct human visitors per UTC day of each grouping key (see `drainage.store.uniques`), kept exact by
    the tracker in the same transaction as the clicks."""

    __tablename__ = "unique_days"
    __table_args__ = {"sqlite_with_rowid": False}

    day: date = Field(primary_key=True)
    scope: str = Field(primary_key=True, max_length=100, description="Link columns, e.g. 'campaign,channel'.")
    key: str = Field(primary_key=True, max_length=1000, description="Their values, joined by \\x1f.")
    visitors: int = 0


class Order(SQLModel, table=True):
    """An order reported by the store, attributed to a click (exact) or to UTM tags (campaign level)."""

    __tablename__ = "orders"

    order_id: str = Field(primary_key=True, max_length=200)
    source: str = Field(default="generic", max_length=32)
    amount: Decimal = Field(default=Decimal(0), max_digits=14, decimal_places=2)
    currency: str = Field(default="", max_length=8)
    click_id: str | None = Field(default=None, max_length=32, index=True)
    code: str | None = Field(default=None, max_length=32)
    campaign: str | None = Field(default=None, max_length=200, index=True)
    channel: str | None = Field(default=None, max_length=200)
    item: str | None = Field(default=None, max_length=200)
    variant: str | None = Field(default=None, max_length=200)
    attributed_by: str = Field(default="none", max_length=16, description="click, utm or none.")
    ordered_at: datetime = Field(default_factory=utcnow)
    received_at: datetime = Field(default_factory=utcnow)


class OrderDay(SQLModel, table=True):
    """Orders and revenue per UTC day, attribution and currency, kept with each order stored (what reports read)."""

    __tablename__ = "order_days"

    day: date = Field(primary_key=True)
    key: str = Field(primary_key=True, max_length=32, description="Hash of (campaign, channel, item, variant, "
                                                                    "currency), None kept apart from ''.")
    campaign: str | None = Field(default=None, max_length=200)
    channel: str | None = Field(default=None, max_length=200)
    item: str | None = Field(default=None, max_length=200)
    variant: str | None = Field(default=None, max_length=200)
    currency: str = Field(default="", max_length=8)
    orders: int = 0
    revenue_cents: int = Field(default=0, sa_type=BigInteger)


class Setting(SQLModel, table=True):
    """Installation-wide values shared by every process on the database (e.g. the visitor hash key)."""

    __tablename__ = "settings"

    name: str = Field(primary_key=True, max_length=100)
    value: str


class ChannelState(SQLModel, table=True):
    """A channel instance paused after an auth error, until `drainage resume` or a config reload."""

    __tablename__ = "channel_states"

    channel: str = Field(primary_key=True, max_length=200)
    paused: bool = False
    reason: str | None = None
    paused_at: datetime | None = None


class Pace(SQLModel, table=True):
    """One rate limit shared by every daemon on the database: a channel instance's `rate_limit` or an email
    relay's `rate` (see `drainage.pacing.SharedLimit`). Read and written under a row lock."""

    __tablename__ = "pacing"

    key: str = Field(primary_key=True, max_length=300, description="'channel:NAME' or 'relay:NAME'.")
    sent: str = Field(default="[]", description="JSON list of the send times (epoch seconds) inside the period.")
    blocked_until: float = Field(default=0.0, description="Epoch seconds before which nothing may go (Retry-After).")


class Cursor(SQLModel, table=True):
    """How far the daemon has turned a campaign's schedule for one channel into deliveries."""

    __tablename__ = "cursors"

    campaign: str = Field(primary_key=True, max_length=200)
    channel: str = Field(primary_key=True, max_length=200)
    until: datetime


class FeedState(SQLModel, table=True):
    """How one campaign's feed was last fetched: conditional-GET validators, health, and the next poll.

    Kept per (campaign, feed URL): a campaign that adds a feed another campaign already polls must see the
    whole document once (to record what is there without posting it), which a shared 304 would hide.
    """

    __tablename__ = "feed_states"

    campaign: str = Field(primary_key=True, max_length=200)
    url: str = Field(primary_key=True, max_length=1000)
    etag: str | None = None
    last_modified: str | None = None
    title: str | None = None
    polled_at: datetime | None = None
    ok_at: datetime | None = None  # None until the first good poll, which records the entries without posting
    next_poll_at: datetime | None = None
    errors: int = 0  # consecutive failed polls (backoff grows with them)
    error: str | None = None
    entries: int = 0  # entries in the last good document


class SeenEntry(SQLModel, table=True):
    """A feed entry a campaign has seen, with the fields a repost event compares (e.g. its price)."""

    __tablename__ = "feed_entries"

    campaign: str = Field(primary_key=True, max_length=200)
    url: str = Field(primary_key=True, max_length=1000)
    digest: str = Field(primary_key=True, max_length=64)
    identity: str
    title: str = ""
    link: str | None = None
    fingerprint: str = Field(default="{}", description="JSON of the fields repost_on compares.")
    first_seen_at: datetime = Field(default_factory=utcnow)
    last_seen_at: datetime = Field(default_factory=utcnow)


class SearchSubmission(SQLModel, table=True):
    """A store URL a search channel (IndexNow) told search engines about, with the digest of what it was then:
    an unchanged URL is never submitted again, a changed one is."""

    __tablename__ = "search_submissions"

    channel: str = Field(primary_key=True, max_length=200)
    url_digest: str = Field(primary_key=True, max_length=64, description="sha256 of the URL (URLs can be long).")
    url: str
    digest: str = Field(max_length=64, description="sha256 of the item's or feed entry's fields when submitted.")
    submitted_at: datetime


class QueuedEntry(SQLModel, table=True):
    """A feed entry waiting for a posting slot on one channel; `released_at` is the slot it was given."""

    __tablename__ = "feed_queue"
    __table_args__ = (
        UniqueConstraint("key", name="uq_feed_queue_key"),
        Index("ix_feed_queue_waiting", "campaign", "url", "channel", "released_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=600, description="The delivery key this entry will have in the journal.")
    campaign: str = Field(max_length=200)
    url: str = Field(max_length=1000)
    channel: str = Field(max_length=200)
    digest: str = Field(max_length=64)
    event: str = Field(default="new", max_length=100)
    entry: str = Field(description="The entry's fields as JSON, as they were when it was queued.")
    position: float = Field(default=0, description="Posting order: the entry's publication time (epoch s).")
    queued_at: datetime
    released_at: datetime | None = None
