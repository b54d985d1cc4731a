"""The delivery journal: one row per (campaign, channel, item, variant, slot), written before anything is sent.

The row's unique key is what makes each post happen once: a second claim of the same slot fails on the
key, in this process or another. A row is `preparing` while the plugin gets ready (nothing can have reached
the platform), and `sending` from the moment just before the publishing call until its outcome is recorded,
so after a crash the rows still `sending` are exactly the posts whose fate is unknown.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Engine, func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from drainage.channel import Receipt
from drainage.errors import AlreadySent, ChannelError, OutcomeUnknown
from drainage.links import TrackedLink
from drainage.posts import PlannedPost
from drainage.store.db import session
from drainage.store.models import Delivery, DeliveryStatus, Link, utcnow


def find(s: Session, key: str) -> Delivery | None:
    return s.exec(select(Delivery).where(Delivery.key == key)).first()


def save_links(s: Session, links: Iterable[TrackedLink]) -> None:
    """Store tracked links that are not stored yet (a code always means the same link)."""
    for link in links:
        if s.get(Link, link.code) is None:
            s.add(Link(code=link.code, target=link.target, campaign=link.campaign, channel=link.channel,
                       item=link.item, variant=link.variant, recipient=link.recipient, market=link.market))


def new_delivery(planned: PlannedPost, key: str | None = None, *, forced: bool = False,
                 status: str = DeliveryStatus.PENDING) -> Delivery:
    return Delivery(key=key or planned.key, campaign=planned.campaign.id, channel=planned.channel,
                    item=planned.item.key, variant=planned.variant_name, slot_at=planned.slot, status=status,
                    forced=forced, market=planned.market_id)


def claim(engine: Engine, planned: PlannedPost, text: str, links: Iterable[TrackedLink], *,
          force: bool = False, payload: str | None = None, status: str = DeliveryStatus.SENDING,
          worker: str | None = None, lease_until: datetime | None = None) -> Delivery:
    """Mark a slot's post as `status` (`sending`, or `preparing` until `mark_sending`), creating its journal
    row, and store its links, in one transaction.

    Raises AlreadySent when the slot was sent, or is being sent, and OutcomeUnknown when a crash left its
    outcome unknown, unless `force` (which records a separate, forced delivery and leaves the earlier row as it
    is). A failed or missed delivery may be claimed again.
    """
    with session(engine) as s:
        row = find(s, planned.key)
        where = f"{planned.campaign.id} -> {planned.channel} at {planned.slot:%Y-%m-%d %H:%M} UTC"
        if row is not None and not force and row.status == DeliveryStatus.UNKNOWN:
            raise OutcomeUnknown(where, row)
        if row is not None and not force and row.status in (DeliveryStatus.SENT, DeliveryStatus.SENDING,
                                                            DeliveryStatus.PREPARING):
            state = "was already sent" if row.status == DeliveryStatus.SENT else "is being sent"
            raise AlreadySent(f"{where} {state}")
        if row is None or force:
            key = planned.key
            if force and row is not None:
                forced_count = s.exec(select(func.count()).where(
                    Delivery.key.startswith(planned.key + "#forced-"))).one()  # type: ignore[attr-defined]
                key = f"{planned.key}#forced-{int(forced_count) + 1}"
            row = new_delivery(planned, key, forced=force and row is not None)
            s.add(row)
        row.status = status
        row.attempts += 1
        row.claimed_by, row.lease_until = worker, lease_until
        row.text = text
        if payload is not None:  # the rendered post, so that the daemon can retry or resume it
            row.payload = payload
        row.updated_at = utcnow()
        save_links(s, links)
        try:
            s.commit()
        except IntegrityError as exc:
            s.rollback()
            raise AlreadySent(f"{planned.campaign.id} -> {planned.channel} at {planned.slot:%Y-%m-%d %H:%M} "
                              "UTC was claimed by another process") from exc
        s.refresh(row)
        return row


def mark_sending(engine: Engine, delivery_id: int) -> bool:
    """A `preparing` row's post is ready: from now on its bytes may reach the platform (False: not preparing
    any more, e.g. released by a daemon that took it for a crash leftover)."""
    with session(engine) as s:
        marked = s.execute(update(Delivery).where(col(Delivery.id) == delivery_id,
                                                  Delivery.status == DeliveryStatus.PREPARING)
                           .values(status=DeliveryStatus.SENDING, updated_at=utcnow()))
        s.commit()
    return marked.rowcount == 1  # type: ignore[attr-defined]


def record_sent(engine: Engine, delivery_id: int, receipt: Receipt, note: str | None = None) -> None:
    with session(engine) as s:
        row = s.get(Delivery, delivery_id)
        if row is None:
            return
        row.status = DeliveryStatus.SENT
        row.remote_id, row.remote_url = receipt.remote_id, receipt.url
        row.recipients, row.impressions = receipt.recipients, receipt.impressions
        row.error = note
        row.sent_at = row.updated_at = utcnow()
        s.commit()


def record_reach(engine: Engine, delivery_id: int, *, recipients: int | None = None,
                 impressions: int | None = None) -> None:
    """Store how many people a sent post reached (the denominators of click-through rates in reports)."""
    with session(engine) as s:
        row = s.get(Delivery, delivery_id)
        if row is None:
            return
        if recipients is not None:
            row.recipients = recipients
        if impressions is not None:
            row.impressions = impressions
        row.updated_at = utcnow()
        s.commit()


def record_failed(engine: Engine, delivery_id: int, error: ChannelError | str,
                  status: str = DeliveryStatus.FAILED, next_attempt_at: datetime | None = None) -> None:
    with session(engine) as s:
        row = s.get(Delivery, delivery_id)
        if row is None:
            return
        row.status = status
        row.error = error if isinstance(error, str) else f"{error.kind}: {error}"
        row.next_attempt_at = next_attempt_at
        row.updated_at = utcnow()
        s.commit()
