"""Search submissions: new and changed store URLs, handed in batches to each `search` channel (IndexNow).

The store URLs are the items of the active campaigns (or of the campaigns a channel names) and the entries
their store feeds have shown, each with a digest of what it is: an item's fields, a feed entry's title and
the fields its feed compares. `search_submissions` remembers the digest each URL was last submitted with; a
URL is submitted when it is new or its digest changed, never when it is unchanged.

Each batch becomes one journal row once its outcome is known (`sent`, or `failed` with the error), so that
reports count a search channel's submissions per day like any channel's posts. A refused key pauses the
channel (as an auth error pauses any channel); a rate limit or an outage waits, growing, before the next try;
the URLs of a failed batch stay pending.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import Engine
from sqlmodel import col, select

from drainage.channel import Channel, Post
from drainage.dispatch import is_paused, pause_channel
from drainage.errors import AuthError, ChannelError, PermanentError, RateLimited
from drainage.links import LinkError, resolve_target
from drainage.logs import event
from drainage.project import Project
from drainage.registry import channel_types
from drainage.store.db import session
from drainage.store.models import Delivery, DeliveryStatus, SearchSubmission, SeenEntry, utcnow

CAMPAIGN = "indexnow"
"""The campaign name of a search channel's journal rows (they belong to no campaign)."""
FIRST_WAIT = timedelta(minutes=1)
LONGEST_WAIT = timedelta(hours=6)


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def store_urls(project: Project, engine: Engine, campaigns: list[str] | None = None) -> dict[str, str]:
    """Every store URL with the digest of what it shows now, from campaigns' items and feeds' entries."""
    store = project.config.config.store
    hosts = store.allowed_hosts()
    chosen = [c for c in project.campaigns.values()
              if (c.id in campaigns if campaigns is not None else c.model.status == "active")]
    found: dict[str, str] = {}
    for campaign in chosen:
        for item in campaign.model.items:
            try:
                url = resolve_target(item.url, store.base_url, hosts)
            except LinkError:
                continue  # validate reports it
            found[url] = digest(item.model_dump_json())
    feeds = {(c.id, feed.url) for c in chosen for feed in c.model.feeds}
    if feeds:
        with session(engine) as s:
            rows = s.exec(select(SeenEntry).where(col(SeenEntry.campaign).in_({c for c, _ in feeds}))).all()
        for row in sorted(rows, key=lambda r: r.last_seen_at):
            if (row.campaign, row.url) not in feeds or not row.link:
                continue
            try:
                url = resolve_target(row.link, store.base_url, hosts)
            except LinkError:
                continue  # an entry linking off the store: not the store's to submit
            found[url] = digest(json.dumps([row.title, row.fingerprint]))
    return found


@dataclass
class Submitted:
    """What one pass did for one search channel."""

    channel: str
    urls: int = 0
    batches: int = 0
    errors: list[str] = field(default_factory=list)


class SearchSubmitter:
    """Submits pending store URLs to every search channel of a project; waits after failures (in memory)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.not_before: dict[str, datetime] = {}
        self.waits: dict[str, timedelta] = {}

    def channels(self, project: Project) -> list[str]:
        types = channel_types()
        return [name for name, options in project.config.channels.items()
                if getattr(types.get(options.type), "kind", None) == "search"]

    async def run(self, project: Project, now: datetime) -> list[Submitted]:
        """One pass over every search channel that is not paused or waiting."""
        done = []
        for name in self.channels(project):
            with session(self.engine) as s:
                if is_paused(s, name) is not None:
                    continue
            if name in self.not_before and now < self.not_before[name]:
                continue
            done.append(await self.submit(project, project.channel(name), now))
        return done

    def pending(self, project: Project, channel: Channel) -> dict[str, str]:
        """URLs new to this channel or changed since their last submission, with their digests."""
        urls = store_urls(project, self.engine, getattr(channel, "campaigns", None))
        with session(self.engine) as s:
            rows = s.exec(select(SearchSubmission.url_digest, SearchSubmission.digest)
                          .where(SearchSubmission.channel == channel.name)).all()
        known = dict(rows)
        return {url: d for url, d in sorted(urls.items()) if known.get(digest(url)) != d}

    async def submit(self, project: Project, channel: Channel, now: datetime) -> Submitted:
        result = Submitted(channel.name)
        by_host: dict[str, list[str]] = defaultdict(list)
        pending = self.pending(project, channel)
        for url in pending:
            by_host[urlsplit(url).hostname or ""].append(url)
        size = int(getattr(channel, "batch_size", 10_000))
        for host, urls in sorted(by_host.items()):
            for start in range(0, len(urls), size):
                batch = urls[start:start + size]
                error = await self._batch(channel, host, batch, pending, now)
                if error is not None:
                    result.errors.append(error)
                    if not error.startswith(PermanentError.kind):
                        return result  # rate limit, outage, key refused: no more now
                    break  # this host's URLs were refused: the other hosts may still be taken
                result.urls += len(batch)
                result.batches += 1
        if not result.errors:
            self.waits.pop(channel.name, None)
            self.not_before.pop(channel.name, None)
        return result

    async def _batch(self, channel: Channel, host: str, urls: list[str], digests: dict[str, str],
                     now: datetime) -> str | None:
        """Submit one batch; journal it; remember its URLs (None) or back off / pause (the error)."""
        key = f"{CAMPAIGN}:{channel.name}:{now.isoformat()}:{digest(' '.join(urls))[:16]}"
        post = Post(key=key, campaign=CAMPAIGN, channel=channel.name, item=host, variant="", slot=now,
                    text="\n".join(urls), links=urls)
        row = Delivery(key=key, campaign=CAMPAIGN, channel=channel.name, item=host, slot_at=now, attempts=1,
                       text=post.text)
        try:
            receipt = await channel.send(post)
        except ChannelError as exc:
            error = f"{exc.kind}: {exc}"
            with session(self.engine) as s:
                row.status, row.error = DeliveryStatus.FAILED, error
                s.add(row)
                s.commit()
            if isinstance(exc, AuthError):
                pause_channel(self.engine, channel.name, error, now)
                event("channel.paused", logging.WARNING, channel=channel.name, reason=error)
            else:
                self._wait(channel.name, now, exc.retry_after if isinstance(exc, RateLimited) else None)
                event("search.failed", logging.WARNING, channel=channel.name, urls=len(urls), error=error)
            return error
        with session(self.engine) as s:
            row.status, row.remote_id, row.sent_at = DeliveryStatus.SENT, receipt.remote_id, utcnow()
            s.add(row)
            for url in urls:
                known = s.get(SearchSubmission, (channel.name, digest(url)))
                if known is None:
                    known = SearchSubmission(channel=channel.name, url_digest=digest(url), url=url, digest="",
                                             submitted_at=now)
                known.digest, known.submitted_at = digests[url], now
                s.add(known)
            s.commit()
        event("search.submitted", channel=channel.name, host=host, urls=len(urls))
        return None

    def _wait(self, channel: str, now: datetime, retry_after: float | None) -> None:
        wait = min(self.waits.get(channel, FIRST_WAIT / 2) * 2, LONGEST_WAIT)
        if retry_after is not None:
            wait = max(timedelta(seconds=retry_after), FIRST_WAIT)
        self.waits[channel] = wait
        self.not_before[channel] = now + wait
