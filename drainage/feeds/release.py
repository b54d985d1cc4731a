"""Releasing queued feed entries into the journal at the feed's posting slots.

The dispatcher calls `release_due` in its planning step for each channel, inside the transaction that writes
the journal rows, so an entry leaves the queue exactly when its delivery row exists. Rules:

- a slot is one of the channel's posting times (its `schedule`, else the feed's), within the campaign's window,
  outside quiet hours, and not older than `misfire_grace`: after an outage, entries wait for the next slot
  instead of going out in a burst; without a schedule, the slot is the feed's latest poll (each poll posts
  what it found, up to `cap`, and the next polls post the rest);
- an entry can take a slot at or after the moment it was found (its poll's due time), oldest entry first;
- at most `cap` entries per slot; the rest wait for the next slots.

Nothing here needs a cursor: the entries already given a slot are the count, so a second pass at the same
moment (or another process) finds the slot full.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func
from sqlmodel import Session, col, select

from drainage.campaigns import ChannelUse, LoadedCampaign
from drainage.feeds.entries import fields_from_json
from drainage.posts import FeedRef, PlannedPost, feed_post, feed_slots
from drainage.store.models import FeedState, QueuedEntry


def release_due(s: Session, campaign: LoadedCampaign, feed_index: int, use_index: int,
                now: datetime) -> list[PlannedPost]:
    """Give waiting entries of one feed channel their slots up to `now`; return their posts (not yet written)."""
    feed = campaign.model.feeds[feed_index]
    use = feed.channels[use_index]
    channel = use.channel
    start, end = now - campaign.grace, now + timedelta(microseconds=1)
    if use.schedule or feed.schedule:
        slots = feed_slots(campaign, feed_index, use_index, start, end)
    else:
        state = s.get(FeedState, (campaign.id, feed.url))
        polled = state.polled_at if state is not None else None
        slots = [polled] if polled is not None and start <= polled < end and _open(campaign, use, polled) else []
    mine = (QueuedEntry.campaign == campaign.id, QueuedEntry.url == feed.url, QueuedEntry.channel == channel)
    planned: list[PlannedPost] = []
    for slot in slots:
        taken = int(s.exec(select(func.count()).select_from(QueuedEntry).where(
            *mine, QueuedEntry.released_at == slot)).one())
        room = feed.cap - taken
        if room <= 0:
            continue
        waiting = s.exec(select(QueuedEntry).where(
            *mine, col(QueuedEntry.released_at).is_(None), col(QueuedEntry.queued_at) <= slot)
            .order_by(col(QueuedEntry.position), col(QueuedEntry.id)).limit(room)).all()
        for row in waiting:
            row.released_at = slot
            s.add(row)
            ref = FeedRef(feed_index, row.digest, row.event, fields_from_json(row.entry))
            planned.append(feed_post(campaign, feed_index, use_index, slot, ref))
    return planned



def _open(campaign: LoadedCampaign, use: ChannelUse, moment: datetime) -> bool:
    """True when the campaign's window and the channel's quiet hours allow a post at `moment`."""
    market = next((campaign.feed_market(f) for f in campaign.model.feeds if any(u is use for u in f.channels)), None)
    first, last = campaign.window(market)
    inside = (first is None or moment >= first) and (last is None or moment < last)
    return inside and not use.in_quiet_hours(moment.astimezone(campaign.tz_of(market)))
