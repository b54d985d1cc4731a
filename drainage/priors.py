"""How many slots of a campaign's channel the journal already holds: where an item rotation goes on from.

A plain SQLAlchemy Core query on the `deliveries` table, declared here with the column types of
`drainage.store.models.Delivery` (so values bind exactly as the model binds them): `plan` and `preview` read it
without importing SQLModel or the table models.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, Engine, String, column, distinct, func, select, table

from drainage.posts import FEED_ITEM_PREFIX, PriorCount

DELIVERIES = table("deliveries", column("campaign", String), column("channel", String), column("item", String),
                   column("market", String), column("slot_at", DateTime), column("forced", Boolean))


def prior_counter(engine: Engine) -> PriorCount:
    """How many distinct slots of (campaign, channel) the journal holds before a slot (for rotation).

    Posts of feed entries are not slots of the campaign's schedule, and forced re-sends are not slots of their
    own, so neither counts. A market's rotation counts that market's slots only.
    """
    c = DELIVERIES.c

    def count(campaign: str, channel: str, slot: datetime, market: str | None = None) -> int:
        stmt = select(func.count(distinct(c.slot_at))).where(
            c.campaign == campaign, c.channel == channel, c.slot_at < slot, c.forced.is_(False),
            ~c.item.startswith(FEED_ITEM_PREFIX))
        if market is not None:
            stmt = stmt.where(c.market == market)
        with engine.connect() as conn:
            return int(conn.execute(stmt).scalar_one())

    return count
