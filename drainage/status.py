"""What `drainage status` shows: next runs, recent deliveries, failures with reasons, paused channels."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Engine, func
from sqlmodel import col, select

from drainage.dispatch import paused_channels
from drainage.email.ledger import FanoutReport, recent_fanouts
from drainage.posts import slots_for
from drainage.project import Project
from drainage.store.db import session
from drainage.store.models import ChannelState, Delivery, DeliveryStatus

PROBLEM_STATES = (DeliveryStatus.FAILED, DeliveryStatus.MISSED, DeliveryStatus.UNKNOWN, DeliveryStatus.RETRYING)


@dataclass
class NextRun:
    campaign: str
    channel: str
    at: datetime | None
    local: str
    market: str | None = None


@dataclass
class Status:
    next_runs: list[NextRun] = field(default_factory=list)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    recent: list[Delivery] = field(default_factory=list)
    problems: list[Delivery] = field(default_factory=list)
    paused: list[ChannelState] = field(default_factory=list)
    email: list[FanoutReport] = field(default_factory=list)


def collect(project: Project, engine: Engine | None, now: datetime, *, recent: int = 15,
            since: timedelta = timedelta(days=7)) -> Status:
    """Gather the status as of `now`; `engine` None means no database yet (nothing sent)."""
    status = Status()
    for campaign in sorted(project.campaigns.values(), key=lambda c: c.id):
        for use in campaign.model.channels:
            for market in campaign.markets_for(use) if campaign.markets else (None,):  # each in its own zone
                nxt = None
                if campaign.model.status == "active":
                    for days in (1, 32, 400):
                        slots = slots_for(campaign, use, now, now + timedelta(days=days), market=market)
                        if slots:
                            nxt = slots[0]
                            break
                local = nxt.astimezone(campaign.tz_of(market)).strftime("%a %Y-%m-%d %H:%M %Z") if nxt else (
                    campaign.model.status if campaign.model.status != "active" else "no upcoming slot")
                status.next_runs.append(NextRun(campaign.id, use.channel, nxt, local,
                                                market.id if market else None))
    if engine is None:
        return status
    with session(engine) as s:
        rows = s.exec(select(Delivery.channel, Delivery.status, func.count()).where(
            col(Delivery.slot_at) >= now - since).group_by(Delivery.channel, Delivery.status)).all()
        for channel, state, count in rows:
            status.counts.setdefault(channel, {})[state] = int(count)
        status.recent = list(s.exec(select(Delivery).order_by(col(Delivery.updated_at).desc()).limit(recent)).all())
        status.problems = list(s.exec(select(Delivery).where(
            col(Delivery.status).in_(PROBLEM_STATES), col(Delivery.slot_at) >= now - since)
            .order_by(col(Delivery.slot_at).desc()).limit(50)).all())
    status.paused = paused_channels(engine)
    status.email = recent_fanouts(engine, now - since)
    return status
