"""Polling store feeds: fetch the due ones, record every entry seen, queue new entries (and repost events).

Polling is a job of its own, not a step of the dispatcher's per-channel pass: a feed may feed several channels
and must be fetched once for all of them, and a slow or dead feed (up to its `timeout`) must never hold up the
sends of a channel. Like the journal for posts, the database decides what is due (`feed_states.next_poll_at`),
so a restart, a reload or a doubled firing neither skips a poll nor polls twice, and backoff survives restarts.

One poll of one campaign's feed is one transaction: the entries it saw, the entries it queued and the feed's
new ETag / Last-Modified are written together, so a crash in the middle re-fetches the whole document (no
validators were stored) and decides the same again. A poll that fails (network, HTTP status, a malformed
document) changes nothing but the feed's error count, error and next poll: the last good state is kept.

Decisions for each entry (`assess`, also what `drainage feeds check` shows):

- first good poll of a campaign's feed: every entry is recorded, none is posted, except the newest `backfill`
  ones that pass the filters;
- later polls: an entry not seen before is posted if it passes the filters (a filtered one is recorded and
  never posted); an entry seen before is never posted again, whatever changed in it, unless the change is one
  the feed's `repost_on` names (price_drop: a lower price than last seen; price_change: any other price),
  which is posted once per new price;
- an entry that would be posted but cannot make a good post is skipped: recorded with the reason (shown by
  `feeds check` and `feeds status`), never posted. That is an entry without a title or without an http(s)
  link (`entries.defect`), or one whose templates would print a missing value as 'None' or make an empty post
  (`trial.template_defect`).

Queued entries wait in `feed_queue`, one row per channel, for `drainage.feeds.release`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import Engine, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from drainage.campaigns import FeedSource, LoadedCampaign
from drainage.clock import Clock
from drainage.feeds.entries import FeedEntry, defect, fields_to_json
from drainage.feeds.fetch import FeedError, fetch, new_client
from drainage.feeds.filters import rejection
from drainage.feeds.sandbox import ParserPool, close_shared_pool, shared_pool
from drainage.feeds.trial import template_defect
from drainage.logs import event
from drainage.posts import feed_delivery_key, poll_rule
from drainage.project import Project
from drainage.schedule import parse_duration
from drainage.store.db import session
from drainage.store.models import Delivery, FeedState, QueuedEntry, SeenEntry

MAX_POLLS = 8
"""Feeds fetched and parsed at the same time; the others wait their turn (their `timeout` starts then). Eight
feeds that are all slow at once can delay a ninth, never one alone."""
BACKOFF_MAX = timedelta(hours=24)
"""Longest wait between polls of a failing feed (longer only if the feed's Retry-After asks for it)."""


@dataclass(frozen=True)
class Verdict:
    """What a poll does with one entry: `post` it (as `event`), or only `record` it, and why."""

    entry: FeedEntry
    action: str  # post | record | skip (recorded, never posted: it cannot make a good post)
    reason: str
    event: str = "new"
    previous_price: float | None = None

    @property
    def posts(self) -> bool:
        return self.action == "post"


POLL_LEASE = timedelta(minutes=5)
"""How long a daemon's claim on one poll of a feed holds (a daemon dying mid-poll delays the feed this much)."""


@dataclass
class PollResult:
    """The outcome of polling one campaign's feed."""

    campaign: str
    url: str
    status: str  # fetched | not modified | failed | skipped (another daemon is polling it)
    verdicts: list[Verdict] = field(default_factory=list)
    error: str | None = None
    first: bool = False
    channels: set[str] = field(default_factory=set)  # channels that got queued entries


def repost_event(fingerprint: dict[str, Any], entry: FeedEntry, repost_on: list[str]) -> tuple[str, float] | None:
    """The repost event a change calls for, as ('price_drop:39.00', previous price), or None."""
    before, now = fingerprint.get("price"), entry.price
    if not repost_on or before is None or now is None or float(before) == now:
        return None
    currency = fingerprint.get("currency")
    if currency and entry.currency and currency != entry.currency:
        return None  # a different currency is not a price change anyone can announce
    if "price_drop" in repost_on and now < float(before):
        return f"price_drop:{now:.2f}", float(before)
    if "price_change" in repost_on:
        return f"price_change:{now:.2f}", float(before)
    return None


def assess(entries: list[FeedEntry], seen: dict[str, SeenEntry], feed: FeedSource, first: bool) -> list[Verdict]:
    """What a poll does with each entry of a good document (see the module docstring)."""
    backfill: set[str] = set()
    if first and feed.backfill:
        newest = sorted((e for e in entries if e.digest not in seen), key=lambda e: e.order, reverse=True)
        backfill = {e.digest for e in [e for e in newest if rejection(e, feed.filters) is None][:feed.backfill]}
    out: list[Verdict] = []
    for entry in entries:
        old = seen.get(entry.digest)
        reason = rejection(entry, feed.filters)
        if old is None and first:
            flaw = defect(entry) if entry.digest in backfill else None
            if flaw:
                out.append(Verdict(entry, "skip", f"skipped: {flaw}"))
            elif entry.digest in backfill:
                out.append(Verdict(entry, "post", f"first poll: one of the newest {feed.backfill} (backfill)"))
            elif reason:
                out.append(Verdict(entry, "record", f"filtered out: {reason}"))
            else:
                out.append(Verdict(entry, "record", "first poll: recorded, not posted "
                                                    f"(backfill: {feed.backfill})"))
        elif old is None:
            flaw = defect(entry)
            out.append(Verdict(entry, "record", f"filtered out: {reason}") if reason else
                       Verdict(entry, "skip", f"skipped: {flaw}") if flaw else Verdict(entry, "post", "new entry"))
        else:
            out.append(_seen_verdict(entry, old, reason, feed))
    return out


def _seen_verdict(entry: FeedEntry, old: SeenEntry, reason: str | None, feed: FeedSource) -> Verdict:
    fingerprint = json.loads(old.fingerprint or "{}")
    found = repost_event(fingerprint, entry, list(feed.repost_on))
    if found is not None:
        name, before = found[0].partition(":")[0], found[1]
        what = f"{name.replace('_', ' ')} from {before:g} to {entry.price:g}"
        if reason:
            return Verdict(entry, "record", f"{what}, but filtered out: {reason}")
        flaw = defect(entry)
        if flaw:
            return Verdict(entry, "skip", f"{what}, but skipped: {flaw}")
        return Verdict(entry, "post", f"{what} (repost_on: {name})", found[0], before)
    changes = [name for name, was, now in (("title", old.title, entry.title), ("link", old.link, entry.url))
               if was != now]
    if fingerprint.get("price") is not None and entry.price is not None and float(fingerprint["price"]) != entry.price:
        changes.append("price")
    note = f" (changed: {', '.join(changes)}; not posted again)" if changes else ""
    return Verdict(entry, "record", f"already seen{note}")


SKIPPED = "skipped"
"""The key of a skipped entry's reason in its seen row's fingerprint (JSON)."""


def screened(project: Project, campaign: LoadedCampaign, feed: FeedSource, verdicts: list[Verdict],
             now: datetime) -> list[Verdict]:
    """`verdicts` with the posts an entry's templates cannot make well (see `drainage.feeds.trial`) skipped."""
    index = next(i for i, f in enumerate(campaign.model.feeds) if f is feed)
    out = []
    for verdict in verdicts:
        why = template_defect(project, campaign, index, verdict.entry, verdict.event, verdict.previous_price,
                              now) if verdict.posts else None
        out.append(replace(verdict, action="skip", reason=f"skipped: {why}") if why else verdict)
    return out


def next_poll(campaign: LoadedCampaign, feed: FeedSource, now: datetime) -> datetime:
    """The feed's next regular poll after `now`."""
    after = now + timedelta(seconds=1)
    slots = list(poll_rule(campaign, feed).slots(after, after + feed.interval + timedelta(days=1)))
    return slots[0] if slots else now + feed.interval


def backoff(feed: FeedSource, errors: int, retry_after: float | None) -> timedelta:
    """Wait after `errors` consecutive failures: the poll interval doubled per failure, at most a day."""
    wait = min(feed.interval * (2 ** min(errors, 20)), max(BACKOFF_MAX, feed.interval))
    if retry_after is not None:
        wait = max(wait, timedelta(seconds=retry_after))
    return wait


def load_seen(s: Session, campaign: str, url: str, digests: list[str]) -> dict[str, SeenEntry]:
    rows: dict[str, SeenEntry] = {}
    for start in range(0, len(digests), 500):
        chunk = digests[start:start + 500]
        rows.update((r.digest, r) for r in s.exec(select(SeenEntry).where(
            SeenEntry.campaign == campaign, SeenEntry.url == url, col(SeenEntry.digest).in_(chunk))).all())
    return rows


class FeedPoller:
    """Polls the feeds of active campaigns when they are due. One per daemon.

    Each feed is polled by a task of its own (`start_due`): a slow, huge or hostile feed (bounded by its
    `timeout`, then by the parser's time limit) never delays another feed, nor the posts of any channel.
    """

    def __init__(self, engine: Engine, clock: Clock, parser: ParserPool | None = None) -> None:
        self.engine = engine
        self.clock = clock
        self._parser = parser
        self._running: set[tuple[str, str]] = set()
        self._tasks: set[asyncio.Task[PollResult]] = set()
        self._gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = \
            weakref.WeakKeyDictionary()

    @property
    def parser(self) -> ParserPool:
        """The parser pool given, else this process's (a new one after the shared one was closed)."""
        return self._parser if self._parser is not None else shared_pool()

    def due(self, project: Project, now: datetime) -> list[tuple[LoadedCampaign, FeedSource]]:
        """Feeds of active, not yet ended campaigns whose next poll has come."""
        found = []
        with session(self.engine) as s:
            for campaign in project.campaigns.values():
                _, end = campaign.window()
                if campaign.model.status != "active" or (end is not None and now >= end):
                    continue
                for feed in campaign.model.feeds:
                    state = s.get(FeedState, (campaign.id, feed.url))
                    if state is None or state.next_poll_at is None or _aware(state.next_poll_at) <= now:
                        found.append((campaign, feed))
        return found

    def start_due(self, project: Project, done: Callable[[PollResult], None]) -> int:
        """Start a task for each due feed not being polled already; `done` gets each result. Returns how many."""
        due = [(c, f) for c, f in self.due(project, self.clock.now()) if (c.id, f.url) not in self._running]
        for campaign, feed in due:
            self._running.add((campaign.id, feed.url))  # now, so that the next sweep does not start it again
            task = asyncio.ensure_future(self.poll(project, campaign, feed))
            self._tasks.add(task)
            task.add_done_callback(lambda t: self._finished(t, done))
        return len(due)

    def _finished(self, task: asyncio.Task[PollResult], done: Callable[[PollResult], None]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        if task.exception() is not None:  # poll() reports a feed's failure as a result; this is a bug
            event("feeds.error", logging.ERROR, error=f"{task.exception().__class__.__name__}: {task.exception()}")
            return
        done(task.result())

    def close(self) -> None:
        """Stop the parser workers (at the daemon's stop; a parse still running fails at once)."""
        if self._parser is not None:
            self._parser.close()
        else:
            close_shared_pool()

    def in_flight(self) -> list[asyncio.Task[PollResult]]:
        """Polls still running (the daemon's shutdown waits for them)."""
        return [t for t in self._tasks if not t.done()]

    async def poll_due(self, project: Project) -> list[PollResult]:
        """Poll every due feed (concurrently) and wait for all of them; never raises for a feed's failure."""
        due = [(c, f) for c, f in self.due(project, self.clock.now()) if (c.id, f.url) not in self._running]
        if not due:
            return []
        return list(await asyncio.gather(*(self.poll(project, c, f) for c, f in due)))

    async def poll(self, project: Project, campaign: LoadedCampaign, feed: FeedSource) -> PollResult:
        """Fetch one campaign's feed and record what it holds (at most MAX_POLLS at once)."""
        key = (campaign.id, feed.url)
        self._running.add(key)
        try:
            async with self._gate(), new_client() as client:
                return await self._poll(client, project, campaign, feed)
        finally:
            self._running.discard(key)

    def _gate(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()  # a semaphore belongs to one event loop
        if loop not in self._gates:
            self._gates[loop] = asyncio.Semaphore(MAX_POLLS)
        return self._gates[loop]

    async def _poll(self, client: httpx.AsyncClient, project: Project, campaign: LoadedCampaign,
                    feed: FeedSource) -> PollResult:
        now = self.clock.now()
        with session(self.engine) as s:
            state = s.get(FeedState, (campaign.id, feed.url))
        # validators only once a good document was recorded: the first poll must see every entry
        etag, modified = (state.etag, state.last_modified) if state is not None and state.ok_at else (None, None)
        # entries found by a poll count as found when the poll was due, so they can make a slot at that time
        queued_at = min(now, _aware(state.next_poll_at)) if state is not None and state.next_poll_at else now
        if not self._claim(campaign.id, feed.url, now):
            event("feed.polled_elsewhere", campaign=campaign.id, url=feed.url)
            return PollResult(campaign.id, feed.url, "skipped")
        try:
            fetched = await fetch(client, feed.url, timeout=parse_duration(feed.timeout).total_seconds(),
                                  etag=etag, last_modified=modified)
            if fetched.not_modified:
                return self._not_modified(campaign, feed, now)
            document = await self.parser.read(fetched.content, fetched.url, fetched.content_type)
        except FeedError as exc:
            return self._failed(campaign, feed, now, str(exc), exc.retry_after)
        except Exception as exc:  # a bug reading one feed must not stop the others, nor the daemon
            return self._failed(campaign, feed, now, f"internal error: {exc.__class__.__name__}: {exc}", None)
        try:
            return self._record(project, campaign, feed, document.entries, document.title, fetched.etag,
                                fetched.last_modified, now, queued_at)
        except IntegrityError:  # another process recorded the same poll first
            event("feed.poll_raced", campaign=campaign.id, url=feed.url)
            return PollResult(campaign.id, feed.url, "fetched")

    def _claim(self, campaign: str, url: str, now: datetime) -> bool:
        """Take this poll for this daemon: moves `next_poll_at` past the poll, only if it was due.

        With several daemons on one database exactly one of them wins the conditional update; if it dies
        mid-poll, the feed falls due again after POLL_LEASE and another daemon polls it.
        """
        with session(self.engine) as s:
            if s.get(FeedState, (campaign, url)) is None:
                s.add(FeedState(campaign=campaign, url=url, next_poll_at=now + POLL_LEASE))
                try:
                    s.commit()
                    return True
                except IntegrityError:  # another daemon created it first
                    s.rollback()
            due = col(FeedState.next_poll_at)
            claimed = s.execute(update(FeedState).where(
                FeedState.campaign == campaign, FeedState.url == url, due.is_(None) | (due <= now))
                .values(next_poll_at=now + POLL_LEASE))
            s.commit()
        return bool(claimed.rowcount == 1)  # type: ignore[attr-defined]

    def _record(self, project: Project, campaign: LoadedCampaign, feed: FeedSource, entries: list[FeedEntry],
                title: str, etag: str | None, last_modified: str | None, now: datetime,
                queued_at: datetime) -> PollResult:
        with session(self.engine) as s:
            state = s.get(FeedState, (campaign.id, feed.url)) or FeedState(campaign=campaign.id, url=feed.url)
            first = state.ok_at is None
            seen = load_seen(s, campaign.id, feed.url, [e.digest for e in entries])
            verdicts = screened(project, campaign, feed, assess(entries, seen, feed, first), now)
            result = PollResult(campaign.id, feed.url, "fetched", verdicts, first=first)
            for verdict in verdicts:
                self._remember(s, campaign.id, feed.url, verdict, seen.get(verdict.entry.digest), now)
                if verdict.posts:
                    for use in feed.channels:
                        if queue(s, campaign.id, feed.url, use.channel, verdict, queued_at, feed.market or ""):
                            result.channels.add(use.channel)
            state.etag, state.last_modified, state.title = etag, last_modified, title or state.title
            state.polled_at = state.ok_at = now
            state.errors, state.error, state.entries = 0, None, len(entries)
            state.next_poll_at = next_poll(campaign, feed, now)
            s.add(state)
            s.commit()
        posted = [v for v in verdicts if v.posts]
        filtered = [v for v in verdicts if v.reason.startswith("filtered out")]
        skipped = [v for v in verdicts if v.action == "skip"]
        event("feed.polled", campaign=campaign.id, url=feed.url, entries=len(entries),
              first_poll=first or None, queued=len(posted), filtered=len(filtered) or None,
              skipped=len(skipped) or None, next_poll=state.next_poll_at)
        for verdict in posted:
            event("feed.entry_queued", campaign=campaign.id, url=feed.url, entry=verdict.entry.identity,
                  title=verdict.entry.title, event=verdict.event, reason=verdict.reason)
        for verdict in filtered:
            event("feed.entry_filtered", campaign=campaign.id, url=feed.url, entry=verdict.entry.identity,
                  reason=verdict.reason)
        for verdict in skipped:
            event("feed.entry_skipped", logging.WARNING, campaign=campaign.id, url=feed.url,
                  entry=verdict.entry.identity, title=verdict.entry.title or None, reason=verdict.reason)
        return result

    @staticmethod
    def _remember(s: Session, campaign: str, url: str, verdict: Verdict, row: SeenEntry | None,
                  now: datetime) -> None:
        entry = verdict.entry
        # a skipped entry's reason stays with it (for `feeds status`): a seen entry is never posted later
        skipped = verdict.reason if verdict.action == "skip" else json.loads(row.fingerprint or "{}").get(SKIPPED) \
            if row is not None else None
        fingerprint = json.dumps({**entry.fingerprint(), **({SKIPPED: skipped} if skipped else {})})
        if row is None:
            s.add(SeenEntry(campaign=campaign, url=url, digest=entry.digest, identity=entry.identity,
                            title=entry.title, link=entry.url, fingerprint=fingerprint, first_seen_at=now,
                            last_seen_at=now))
            return
        row.title, row.link, row.fingerprint, row.last_seen_at = entry.title, entry.url, fingerprint, now
        s.add(row)

    def _not_modified(self, campaign: LoadedCampaign, feed: FeedSource, now: datetime) -> PollResult:
        with session(self.engine) as s:
            state = s.get(FeedState, (campaign.id, feed.url)) or FeedState(campaign=campaign.id, url=feed.url)
            state.polled_at = state.ok_at = now
            state.errors, state.error = 0, None
            state.next_poll_at = next_poll(campaign, feed, now)
            s.add(state)
            s.commit()
        event("feed.not_modified", campaign=campaign.id, url=feed.url, next_poll=state.next_poll_at)
        return PollResult(campaign.id, feed.url, "not modified")

    def _failed(self, campaign: LoadedCampaign, feed: FeedSource, now: datetime, reason: str,
                retry_after: float | None) -> PollResult:
        with session(self.engine) as s:
            state = s.get(FeedState, (campaign.id, feed.url)) or FeedState(campaign=campaign.id, url=feed.url)
            state.polled_at = now
            state.errors += 1
            state.error = reason
            state.next_poll_at = now + backoff(feed, state.errors, retry_after)
            s.add(state)
            s.commit()
        event("feed.failed", logging.WARNING, campaign=campaign.id, url=feed.url, error=reason,
              failures=state.errors, next_poll=state.next_poll_at,
              note="the last good state is kept; nothing from this poll is posted")
        return PollResult(campaign.id, feed.url, "failed", error=reason)


def queue(s: Session, campaign: str, url: str, channel: str, verdict: Verdict, queued_at: datetime,
          market: str = "") -> bool:
    """Queue an entry (or repost event) for one channel, unless it is queued or in the journal already."""
    entry = verdict.entry
    key = feed_delivery_key(campaign, channel, entry.digest, verdict.event, market)
    if s.exec(select(QueuedEntry.id).where(QueuedEntry.key == key)).first() is not None:
        return False
    if s.exec(select(Delivery.id).where(Delivery.key == key)).first() is not None:
        return False
    s.add(QueuedEntry(key=key, campaign=campaign, url=url, channel=channel, digest=entry.digest,
                      event=verdict.event, entry=fields_to_json(entry.fields(verdict.previous_price)),
                      position=entry.order, queued_at=queued_at))
    s.flush()  # a second queue() of the same key in this transaction must see this one
    return True


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
