"""What `drainage feeds check` and `drainage feeds status` show. Read-only: nothing is posted or written.

`check_feed` fetches a feed now (unconditionally), decides for each entry exactly what the daemon's next poll
would (`poller.assess` and `poller.screened`, against what the campaign has seen so far), and renders each
post that would be queued, for each channel, at the slot it would get: oldest entry first, at most `cap` per
slot, after the entries already waiting, so that the entries beyond the cap show the later slot they wait for.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Engine, func
from sqlmodel import col, select

from drainage.campaigns import FeedSource, LoadedCampaign
from drainage.errors import DrainageError, Problem, ProblemsFound
from drainage.feeds.entries import Document, defect
from drainage.feeds.fetch import FeedError, fetch, new_client
from drainage.feeds.filters import rejection
from drainage.feeds.poller import SKIPPED, Verdict, assess, load_seen, screened
from drainage.feeds.sandbox import ParserPool
from drainage.posts import FeedRef, PlannedPost, feed_post, feed_slots
from drainage.project import Project
from drainage.schedule import parse_duration
from drainage.store.db import session
from drainage.store.models import FeedState, QueuedEntry, SeenEntry

HORIZONS = (timedelta(days=1), timedelta(days=32), timedelta(days=400))
SKIPPED_SHOWN = 5
"""How many of a feed's skipped entries `feeds status` lists (the newest)."""


@dataclass
class Checked:
    """One entry: what the next poll would do with it, and the posts it would make (one per channel)."""

    verdict: Verdict
    posts: list[PlannedPost] = field(default_factory=list)
    waits: list[bool] = field(default_factory=list)  # per post: True when the cap puts it after the next slot


@dataclass
class CheckReport:
    url: str
    fetched_from: str
    title: str
    etag: str | None
    last_modified: str | None
    campaign: LoadedCampaign | None
    feed: FeedSource | None
    first: bool
    entries: list[Checked]
    borrowed: bool = False  # the campaign does not poll this URL: its first feed's settings were used
    sample: Checked | None = None  # when nothing would be posted: how the newest passing entry would look


def find_feed(project: Project, url: str, campaign_id: str | None) -> tuple[LoadedCampaign | None, int | None]:
    """The campaign and feed index that poll `url` (ProblemsFound when ambiguous or when --campaign does not fit).

    With a campaign that does not list `url`, its first feed's settings are used, as if `url` were that feed
    (to try a feed out before adding it).
    """
    if campaign_id is not None:
        campaign = project.campaign(campaign_id)
        feeds = campaign.model.feeds
        for index, feed in enumerate(feeds):
            if feed.url == url:
                return campaign, index
        if feeds:
            return campaign, 0
        raise ProblemsFound([Problem(campaign.shown_as, 0, 0, f"campaign '{campaign.id}' has no feeds",
                                     "add a 'feeds:' list to it, see the README's Store feeds")])
    users = [(c, i) for c in project.campaigns.values() for i, f in enumerate(c.model.feeds) if f.url == url]
    if len(users) > 1:
        names = ", ".join(sorted(c.id for c, _ in users))
        raise ProblemsFound([Problem("--campaign", 0, 0, f"{url} is polled by several campaigns ({names})",
                                     "pass --campaign ID to choose one")])
    return users[0] if users else (None, None)


async def check_feed(project: Project, engine: Engine | None, url: str, campaign_id: str | None,
                     now: datetime) -> CheckReport:
    """Fetch `url` now and say what the daemon's next poll would post, rendered (see the module docstring)."""
    campaign, feed_index = find_feed(project, url, campaign_id)
    feed = campaign.model.feeds[feed_index] if campaign is not None and feed_index is not None else None
    timeout = parse_duration(feed.timeout).total_seconds() if feed else 20.0
    parser = ParserPool(workers=1)
    try:
        async with new_client() as client:
            fetched = await fetch(client, url, timeout=timeout)
        document: Document = await parser.read(fetched.content, fetched.url, fetched.content_type)
    except FeedError as exc:
        raise DrainageError(f"{url}: {exc}") from None
    finally:
        parser.close()
    report = CheckReport(url, fetched.url, document.title, fetched.etag, fetched.last_modified, campaign, feed,
                         True, [], borrowed=feed is not None and feed.url != url)
    if campaign is None or feed is None or feed_index is None:
        report.entries = [Checked(Verdict(e, "record", "not polled by any campaign")) for e in document.entries]
        return report
    seen: dict[str, SeenEntry] = {}
    waiting = [0] * len(feed.channels)
    if engine is not None and not report.borrowed:
        with session(engine) as s:
            state = s.get(FeedState, (campaign.id, feed.url))
            report.first = state is None or state.ok_at is None
            seen = load_seen(s, campaign.id, feed.url, [e.digest for e in document.entries])
            waiting = [int(s.exec(select(func.count()).select_from(QueuedEntry).where(
                QueuedEntry.campaign == campaign.id, QueuedEntry.url == feed.url, QueuedEntry.channel == use.channel,
                col(QueuedEntry.released_at).is_(None))).one()) for use in feed.channels]
    verdicts = screened(project, campaign, feed, assess(document.entries, seen, feed, report.first), now)
    report.entries = [Checked(verdict) for verdict in verdicts]
    posting = sorted((c for c in report.entries if c.verdict.posts), key=lambda c: c.verdict.entry.order)
    for use_index in range(len(feed.channels)):
        slots = upcoming_slots(campaign, feed_index, use_index, now, waiting[use_index] + len(posting), feed.cap)
        for place, checked in enumerate(posting, start=waiting[use_index]):
            slot = slots[min(place // feed.cap, len(slots) - 1)] if slots else now
            checked.posts.append(_post(campaign, feed_index, use_index, checked.verdict, slot))
            checked.waits.append(place >= feed.cap)
    if not posting:
        passing = sorted((e for e in document.entries if rejection(e, feed.filters) is None and defect(e) is None),
                         key=lambda e: e.order, reverse=True)
        if passing:
            verdict = Verdict(passing[0], "sample", "sample: the newest entry that passes the filters")
            report.sample = Checked(verdict, [_post(campaign, feed_index, i, verdict,
                                                    next_slot(campaign, feed_index, i, now) or now)
                                              for i in range(len(feed.channels))])
    return report


def _post(campaign: LoadedCampaign, feed_index: int, use_index: int, verdict: Verdict, slot: datetime) -> PlannedPost:
    ref = FeedRef(feed_index, verdict.entry.digest, verdict.event, verdict.entry.fields(verdict.previous_price))
    return feed_post(campaign, feed_index, use_index, slot, ref)


def upcoming_slots(campaign: LoadedCampaign, feed_index: int, use_index: int, now: datetime, entries: int,
                   cap: int) -> list[datetime]:
    """The channel's next slots from `now`, enough for `entries` at `cap` per slot (fewer if the window ends)."""
    wanted = max(1, -(-entries // cap))
    found: list[datetime] = []
    for horizon in HORIZONS:
        found = feed_slots(campaign, feed_index, use_index, now, now + horizon)
        if len(found) >= wanted:
            break
    return found[:wanted]


def next_slot(campaign: LoadedCampaign, feed_index: int, use_index: int, now: datetime) -> datetime | None:
    """The channel's next posting slot at or after `now`, within about a year."""
    for horizon in HORIZONS:
        slots = feed_slots(campaign, feed_index, use_index, now, now + horizon)
        if slots:
            return slots[0]
    return None


@dataclass
class FeedStatus:
    """One campaign's feed, as `drainage feeds status` shows it."""

    campaign: str
    url: str
    active: bool
    state: FeedState | None
    seen: int = 0
    waiting: int = 0
    skipped: int = 0
    latest_skipped: list[tuple[str, str]] = field(default_factory=list)  # (title or identity, reason), newest first


def feed_statuses(project: Project, engine: Engine | None) -> list[FeedStatus]:
    """Every feed of every campaign with its last poll, validators, failures, seen and waiting entries."""
    out = []
    for campaign in sorted(project.campaigns.values(), key=lambda c: c.id):
        for feed in campaign.model.feeds:
            status = FeedStatus(campaign.id, feed.url, campaign.model.status == "active", None)
            if engine is not None:
                with session(engine) as s:
                    status.state = s.get(FeedState, (campaign.id, feed.url))
                    status.seen = int(s.exec(select(func.count()).select_from(SeenEntry).where(
                        SeenEntry.campaign == campaign.id, SeenEntry.url == feed.url)).one())
                    status.waiting = int(s.exec(select(func.count()).select_from(QueuedEntry).where(
                        QueuedEntry.campaign == campaign.id, QueuedEntry.url == feed.url,
                        col(QueuedEntry.released_at).is_(None))).one())
                    skipped = (SeenEntry.campaign == campaign.id, SeenEntry.url == feed.url,
                               col(SeenEntry.fingerprint).contains(f'"{SKIPPED}": '))
                    status.skipped = int(s.exec(select(func.count()).select_from(SeenEntry).where(*skipped)).one())
                    rows = s.exec(select(SeenEntry).where(*skipped).order_by(
                        col(SeenEntry.first_seen_at).desc()).limit(SKIPPED_SHOWN)).all()
                    status.latest_skipped = [(r.title or r.identity, str(json.loads(r.fingerprint).get(SKIPPED)))
                                             for r in rows]
            out.append(status)
    return out

