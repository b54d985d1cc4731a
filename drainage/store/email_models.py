"""The email tables: subscribers and their lists, the suppression list, and the per-recipient send ledger."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from drainage.store.models import utcnow


class SubscriberStatus:
    """`active` subscribers are mailed; `pending` ones signed up and have not confirmed (double opt-in) yet."""

    ACTIVE = "active"
    PENDING = "pending"


class Subscriber(SQLModel, table=True):
    """One address that gave consent, with the evidence of that consent."""

    __tablename__ = "subscribers"

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=320, unique=True, description="Normalised address (lower case, IDNA domain).")
    ref: str = Field(max_length=32, unique=True, description="Random pseudonymous id: in links and tokens, "
                                                            "never the address.")
    name: str = Field(default="", max_length=200)
    locale: str = Field(default="", max_length=35)
    attributes: str = Field(default="{}", description="Free attributes as a JSON object.")
    consent_source: str = Field(max_length=200, description="Where consent was given (form, checkout, import...).")
    consent_at: datetime
    status: str = Field(default=SubscriberStatus.ACTIVE, max_length=16)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class ListMember(SQLModel, table=True):
    """A subscriber on a named list (one subscriber may be on several)."""

    __tablename__ = "list_members"

    list_name: str = Field(primary_key=True, max_length=100)
    subscriber_id: int = Field(primary_key=True, foreign_key="subscribers.id", ondelete="CASCADE", index=True)
    added_at: datetime = Field(default_factory=utcnow)


class SuppressionReason:
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    COMPLAINED = "complained"


class Suppression(SQLModel, table=True):
    """An address that is never mailed again: unsubscribed, hard-bounced or complained."""

    __tablename__ = "suppressions"

    email: str = Field(primary_key=True, max_length=320)
    reason: str = Field(max_length=16)
    source: str = Field(default="", max_length=32, description="one-click, page, smtp, webhook, cli, import.")
    detail: str = Field(default="", max_length=500)
    campaign: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(default_factory=utcnow)


class FanoutStatus:
    RUNNING = "running"
    PAUSED = "paused"
    DONE = "done"


class Fanout(SQLModel, table=True):
    """One delivery (a campaign slot) to an email channel, fanned out to its audience."""

    __tablename__ = "email_fanouts"

    id: int | None = Field(default=None, primary_key=True)
    delivery_key: str = Field(max_length=600, unique=True)
    campaign: str = Field(max_length=200, index=True)
    channel: str = Field(max_length=200)
    lists: str = Field(default="", description="Comma-separated lists the audience was drawn from.")
    total: int = 0
    status: str = Field(default=FanoutStatus.RUNNING, max_length=16)
    pause_reason: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None


class RecipientStatus:
    """queued -> claimed -> sending -> sent | failed | bounced; suppressed (skipped); unknown (a crash mid-send).

    `claimed`: leased by a sender that renders it and opens a session; nothing reached the relay yet (a crash
    puts it back in the queue). `sending`: its bytes may be at the relay (a crash leaves the outcome unknown).
    """

    QUEUED = "queued"
    CLAIMED = "claimed"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    BOUNCED = "bounced"
    SUPPRESSED = "suppressed"
    UNKNOWN = "unknown"
    FINAL = frozenset({SENT, FAILED, BOUNCED, SUPPRESSED, UNKNOWN})


class Recipient(SQLModel, table=True):
    """The ledger: one row per (fan-out, subscriber), so that each recipient is sent to at most once.

    A row is `claimed` from its claim (a conditional UPDATE that stamps `lease` and `leased_at`), `sending` from
    just before its message is handed to the relay until its outcome is written; rows still `sending` when no
    live process holds their lease are the unknown window (at most one per SMTP session of the dead sender).
    """

    __tablename__ = "email_recipients"
    __table_args__ = (
        UniqueConstraint("fanout_id", "subscriber_id", name="uq_email_recipients_fanout_subscriber"),
        Index("ix_email_recipients_claim", "fanout_id", "status", "next_attempt_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    fanout_id: int = Field(foreign_key="email_fanouts.id")
    subscriber_id: int
    status: str = Field(default=RecipientStatus.QUEUED, max_length=16)
    attempts: int = 0
    next_attempt_at: datetime | None = None
    lease: str | None = Field(default=None, max_length=64)
    leased_at: datetime | None = None
    smtp_code: int | None = None
    error: str | None = None
    updated_at: datetime | None = None
