"""Retention of raw clicks: delete clicks (and the daily visitor hashes) older than a limit, keep every rollup.

Reports read the rollups (`link_days`, `click_rollups`), which are never pruned, so they stay the same after a
prune. What goes: the raw clicks (drill-down, and attribution of an order by click id: an order whose click was
pruned is attributed by its UTM tags instead) and the per-day visitor hashes. Deletes run in chunks, each in its
own short transaction, so the tracker keeps writing meanwhile.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, delete, select

from drainage.store.models import Click, VisitorDay

MIN_KEEP = timedelta(days=2)
"""Visitor hashes of yesterday are still needed: a late write may add to yesterday's unique visitors."""
CHUNK = 20_000


@dataclass(frozen=True)
class Pruned:
    """What a prune deleted, and the time before which it deleted."""

    clicks: int
    visitor_days: int
    before: datetime


def prune_raw_clicks(engine: Engine, keep: timedelta, now: datetime | None = None, chunk: int = CHUNK) -> Pruned:
    """Delete raw clicks older than `keep` (at least 2 days) and the visitor hashes of those days."""
    if keep < MIN_KEEP:
        raise ValueError(f"keep raw clicks at least {MIN_KEEP.days} days, not {keep}")
    cutoff = (now or datetime.now(UTC)) - keep
    clicks = _delete_in_chunks(engine, cutoff, chunk)
    with engine.begin() as conn:
        days = conn.execute(delete(VisitorDay).where(VisitorDay.day < cutoff.date())  # type: ignore[arg-type]
                            ).rowcount or 0
    return Pruned(clicks, days, cutoff)


def _delete_in_chunks(engine: Engine, cutoff: datetime, chunk: int) -> int:
    total = 0
    while True:
        oldest = (select(Click.id).where(Click.clicked_at < cutoff)  # type: ignore[arg-type]
                  .order_by(Click.id).limit(chunk))  # type: ignore[arg-type]
        with engine.begin() as conn:
            count = conn.execute(delete(Click).where(Click.id.in_(oldest.scalar_subquery()))  # type: ignore[union-attr]
                                 ).rowcount or 0
        total += count
        if count < chunk:
            return total
