"""Rollups written beside the rows they sum, in the same transaction: here, orders per day and attribution."""

from __future__ import annotations

import hashlib
from datetime import UTC
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.dialects import postgresql, sqlite

from drainage.store.models import Order, OrderDay

_NONE = "\x00"


def order_key(campaign: str | None, channel: str | None, item: str | None, variant: str | None,
              currency: str) -> str:
    """The rollup key of an attribution and currency (a missing value differs from an empty one)."""
    parts = (_NONE if v is None else v for v in (campaign, channel, item, variant, currency))
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def cents(amount: Decimal) -> int:
    return int((Decimal(amount) * 100).to_integral_value())


def add_order(conn: Connection, order: Order) -> None:
    """Add one stored order to `order_days` (call in the transaction that inserts the order)."""
    values: dict[str, Any] = {
        "day": order.ordered_at.astimezone(UTC).date(), "campaign": order.campaign, "channel": order.channel,
        "item": order.item, "variant": order.variant, "currency": order.currency, "orders": 1,
        "revenue_cents": cents(order.amount),
        "key": order_key(order.campaign, order.channel, order.item, order.variant, order.currency)}
    table = OrderDay.__table__  # type: ignore[attr-defined]
    insert = (sqlite.insert if conn.dialect.name == "sqlite" else postgresql.insert)(table).values(values)
    conn.execute(insert.on_conflict_do_update(
        index_elements=[table.c.day, table.c.key],
        set_={"orders": table.c.orders + insert.excluded.orders,
              "revenue_cents": table.c.revenue_cents + insert.excluded.revenue_cents}))
