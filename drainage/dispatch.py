"""The dispatcher: turns due slots into journal rows, sends them, retries, paces and pauses.

One pass over a channel instance does, in order:

1. settle rows left `sending` by a crash (ask the platform when the plugin can look a post up, else apply
   the campaign's `on_unknown` policy: `skip` records `unknown`, `resend` retries);
2. plan: every slot between the channel's cursor and now becomes a row, `pending` if it is within the
   campaign's `misfire_grace`, `missed` otherwise (never a burst of stale posts after an outage); the rows
   and the moved cursor are written in one transaction, so a crash re-plans the same slots, which the
   unique key turns into no-ops; queued store-feed entries whose posting slot has come become rows too
   (`drainage.feeds.release`, at most `cap` per slot);
3. send the ready rows in slot order, paced by the channel's rate limit (shared by every daemon on the database,
   `drainage.pacing.SharedLimit`): transient errors retry with
   exponential backoff and jitter up to `max_attempts`; a rate limit waits its retry-after (not counted as
   an attempt); a permanent error fails at once; an auth error pauses the channel until `drainage resume`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, update
from sqlalchemy import case as sa_case
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from drainage.campaigns import LoadedCampaign
from drainage.channel import Channel, Receipt, post_from_json, post_to_json
from drainage.clock import Clock
from drainage.email.service import EmailService, EmailServices
from drainage.errors import AuthError, ChannelError, Paused, PermanentError, RateLimited
from drainage.feeds.poller import FeedPoller, PollResult
from drainage.feeds.release import release_due
from drainage.journal import new_delivery, save_links
from drainage.logs import event
from drainage.metrics import Metrics
from drainage.pacing import Backoff, SharedLimit, parse_rate
from drainage.posts import PriorCount, posts_for_slots, slots_for
from drainage.priors import prior_counter
from drainage.project import Project
from drainage.schedule import parse_duration
from drainage.store.db import session
from drainage.store.models import ChannelState, Cursor, Delivery, utcnow
from drainage.store.models import DeliveryStatus as S
from drainage.workers import is_dead_here, worker_id

GIVE_UP_AFTER = timedelta(hours=24)
"""A post still not delivered this long after its slot fails instead of retrying (rate limits included)."""


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def is_paused(s: Session, channel: str) -> ChannelState | None:
    state = s.get(ChannelState, channel)
    return state if state is not None and state.paused else None


def paused_channels(engine: Engine) -> list[ChannelState]:
    """Channel instances paused after an auth error."""
    with session(engine) as s:
        return list(s.exec(select(ChannelState).where(col(ChannelState.paused).is_(True))).all())


def pause_channel(engine: Engine, channel: str, reason: str, now: datetime) -> None:
    with session(engine) as s:
        state = s.get(ChannelState, channel) or ChannelState(channel=channel)
        state.paused, state.reason, state.paused_at = True, reason, now
        s.add(state)
        s.commit()


def resume_channel(project: Project, engine: Engine, channel: str, now: datetime) -> tuple[int, int]:
    """Lift a pause; posts still within their campaign's grace go out, older ones are recorded as missed.

    Returns (rows released for sending, rows recorded as missed).
    """
    released = missed = 0
    with session(engine) as s:
        state = s.get(ChannelState, channel)
        if state is not None:
            state.paused, state.reason = False, None
            s.add(state)
        rows = s.exec(select(Delivery).where(
            Delivery.channel == channel,
            col(Delivery.status).in_([S.PENDING, S.RETRYING]),
            col(Delivery.next_attempt_at).is_(None))).all()
        for row in rows:
            campaign = project.campaigns.get(row.campaign)
            grace = campaign.grace if campaign else timedelta(0)
            if now - _aware(row.slot_at) > grace:
                row.status, row.error = S.MISSED, "channel was paused past the slot's misfire_grace"
                missed += 1
            else:
                row.status, row.next_attempt_at = S.RETRYING, now
                released += 1
            row.updated_at = now
            s.add(row)
        s.commit()
    return released, missed


class Dispatcher:
    """Sends what is due, once, through the journal. One instance per daemon process."""

    def __init__(self, project: Project, engine: Engine, clock: Clock, metrics: Metrics | None = None,
                 backoff: Backoff | None = None) -> None:
        self.engine = engine
        self.clock = clock
        self.metrics = metrics or Metrics()
        self.stopping = False
        self.in_flight: set[int] = set()
        self.worker = worker_id()
        self._limits: dict[str, SharedLimit] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._backoff = backoff
        self.feeds = FeedPoller(engine, clock)
        self.email = EmailServices(engine, lambda: self.stopping)
        self.set_project(project)

    def set_project(self, project: Project) -> None:
        """Use a (re)loaded project from the next pass on."""
        self.project = project
        cfg = project.config.config.daemon
        self.max_attempts = cfg.max_attempts
        self.lease = parse_duration(cfg.lease)
        if self._backoff is None or self._backoff.base != parse_duration(cfg.backoff).total_seconds():
            self._backoff = Backoff(parse_duration(cfg.backoff).total_seconds(),
                                    parse_duration(cfg.backoff_max).total_seconds())
        self._limits = {k: v for k, v in self._limits.items() if k in project.config.channels}

    @property
    def backoff(self) -> Backoff:
        assert self._backoff is not None  # set in set_project
        return self._backoff

    def sender(self, channel: Channel) -> Channel | EmailService:
        """Who sends for `channel`: the plugin itself, or for an email channel the fan-out service around it."""
        return self.email.get(self.project, channel) or channel

    def channels(self) -> list[str]:
        """Channel instances that any campaign posts to (its items or its feeds)."""
        used = {u.channel for c in self.project.campaigns.values() for u in c.model.channels}
        used |= {u.channel for c in self.project.campaigns.values() for f in c.model.feeds for u in f.channels}
        return sorted(used & set(self.project.config.channels))

    def limits(self, channel: Channel) -> list[SharedLimit]:
        """The channel's own rate limit and those it shares with other instances (`Channel.shared_rates`, e.g. a
        subreddit's minimum interval), each shared with every daemon on the database."""
        wanted: dict[str, str] = {}
        if rate := channel.options.rate_limit or channel.default_rate_limit:
            wanted[f"channel:{channel.name}"] = rate
        wanted |= {f"shared:{key}": shared for key, shared in channel.shared_rates().items()}
        found = []
        for key, text in wanted.items():
            count, period = parse_rate(text)
            known = self._limits.get(key)
            if known is None or (known.count, known.period) != (count, period.total_seconds()):
                self._limits[key] = known = SharedLimit(self.engine, key, count, period)
            found.append(known)
        return found

    @staticmethod
    def _take(limits: list[SharedLimit], now: datetime) -> float:
        """Take one send from every limit now and return 0, or return the seconds to wait (nothing taken)."""
        waits = [limit.take(now) for limit in limits]
        if max(waits, default=0.0) > 0:
            for limit, wait in zip(limits, waits, strict=True):
                if wait == 0:
                    limit.give_back(now)
        return max(waits, default=0.0)

    async def run_all(self) -> None:
        """Poll the due feeds, then one pass over every channel, channels in parallel."""
        await self.poll_feeds()
        await asyncio.gather(*(self.run_channel(name) for name in self.channels()))

    async def poll_feeds(self) -> list[PollResult]:
        """Poll the store feeds that are due (see `drainage.feeds.poller`); a failing feed only logs."""
        if self.stopping:
            return []
        try:
            return await self.feeds.poll_due(self.project)
        except Exception as exc:  # never let feeds stop the daemon: the next sweep tries again
            event("feeds.error", logging.ERROR, error=f"{exc.__class__.__name__}: {exc}")
            return []

    def start_feed_polls(self, done: Callable[[PollResult], None]) -> None:
        """Start a task per due feed (see `FeedPoller.start_due`); `done` gets each feed's result."""
        if self.stopping:
            return
        try:
            self.feeds.start_due(self.project, done)
        except Exception as exc:  # never let feeds stop the daemon: the next sweep tries again
            event("feeds.error", logging.ERROR, error=f"{exc.__class__.__name__}: {exc}")

    async def run_channel(self, name: str) -> None:
        """One pass over one channel instance: settle, plan, send."""
        lock = self._locks.setdefault(name, asyncio.Lock())
        async with lock:
            if self.stopping:
                return
            await self.settle_unknown(name)
            self.plan_due(name)
            await self.send_ready(name)
            await self.assist(name)
            self.metrics.queue_depth(self.engine)

    # -- 1. settle ---------------------------------------------------------------------------------------------
    async def settle_unknown(self, name: str) -> None:
        """Rows `sending` that no live worker owns: a crash left their outcome unknown. Rows `preparing` that no
        live worker owns never reached the platform: they are released for sending, nothing to settle.

        A row is another worker's while its lease runs, unless that worker is a dead process of this host.
        """
        now = self.clock.now()
        with session(self.engine) as s:
            rows = s.exec(select(Delivery).where(
                Delivery.channel == name, col(Delivery.status).in_([S.PREPARING, S.SENDING]))).all()
        for row in rows:
            if row.id in self.in_flight:
                continue
            lease_over = row.lease_until is None or _aware(row.lease_until) < now
            if row.claimed_by != self.worker and not lease_over and not is_dead_here(row.claimed_by):
                continue  # a live daemon is sending it
            if row.status == S.PREPARING:
                self._release(row, now)
            elif self._take_over(row, now):
                await self._settle(row)

    def _release(self, row: Delivery, now: datetime) -> None:
        """A crash interrupted the preparation of a post: it is claimable again (the attempt does not count)."""
        with session(self.engine) as s:
            owner = col(Delivery.claimed_by)
            released = s.execute(update(Delivery).where(
                col(Delivery.id) == row.id, Delivery.status == S.PREPARING,
                owner.is_(None) if row.claimed_by is None else owner == row.claimed_by)
                .values(status=S.RETRYING, next_attempt_at=now, claimed_by=None, lease_until=None,
                        attempts=sa_case((Delivery.attempts > 0, Delivery.attempts - 1), else_=0),
                        updated_at=utcnow()))
            s.commit()
        if released.rowcount == 1:  # type: ignore[attr-defined]
            event("delivery.released", **self._fields(row), previous_worker=row.claimed_by or "-",
                  note="interrupted before it could reach the platform")

    def _take_over(self, row: Delivery, now: datetime) -> bool:
        """Claim a leftover row for settling; False when another daemon claimed it first."""
        with session(self.engine) as s:
            owner = col(Delivery.claimed_by)
            taken = s.execute(update(Delivery).where(
                col(Delivery.id) == row.id, Delivery.status == S.SENDING,
                owner.is_(None) if row.claimed_by is None else owner == row.claimed_by)
                .values(claimed_by=self.worker, lease_until=now + self.lease))
            s.commit()
        if taken.rowcount == 1:  # type: ignore[attr-defined]
            event("unknown.taken_over", key=row.key, previous_worker=row.claimed_by or "-")
            return True
        return False

    async def _settle(self, row: Delivery) -> None:
        now = self.clock.now()
        channel = self.project.channel(row.channel)
        post = post_from_json(row.payload) if row.payload else None
        campaign = self.project.campaigns.get(row.campaign)
        cannot_ask = ""
        asked = self.sender(channel)
        if asked.can_lookup and post is not None:
            post.key = row.key
            try:
                receipt = await asked.lookup(post)
            except (PermanentError, AuthError) as exc:  # asking will never work (e.g. an API tier that cannot read)
                cannot_ask = f" ({exc.kind}: {exc})"
                event("unknown.lookup_impossible", logging.WARNING, **self._fields(row), error=str(exc))
            except ChannelError as exc:  # the next pass asks again
                event("unknown.lookup_failed", logging.WARNING, **self._fields(row), error=str(exc))
                return
            else:
                if receipt is not None:
                    self._finish(row.id or 0, S.SENT, receipt=receipt, note="found on the platform after a crash")
                    event("unknown.found_sent", **self._fields(row), remote_id=receipt.remote_id)
                else:
                    self._finish(row.id or 0, S.RETRYING, next_at=now, count_attempt=False,
                                 error="crashed before the platform received it; sending again")
                    event("unknown.not_found_resend", **self._fields(row))
                return
        policy = campaign.model.on_unknown if campaign else "skip"
        if policy == "resend" and post is not None:
            self._finish(row.id or 0, S.RETRYING, next_at=now, count_attempt=False,
                         error="outcome unknown after a crash; resent (on_unknown: resend)")
            event("unknown.resend", logging.WARNING, **self._fields(row))
        else:
            self._finish(row.id or 0, S.UNKNOWN,
                         error=f"outcome unknown after a crash and the platform cannot be asked{cannot_ask}; "
                               "not resent (on_unknown: skip)")
            event("unknown.skipped", logging.WARNING, **self._fields(row))

    # -- 2. plan -----------------------------------------------------------------------------------------------
    def plan_due(self, name: str) -> None:
        """Turn every slot of every campaign on this channel, up to now, into a journal row."""
        now = self.clock.now()
        until = now + timedelta(microseconds=1)
        prior = prior_counter(self.engine)
        for campaign in self.project.campaigns.values():
            uses = [i for i, u in enumerate(campaign.model.channels) if u.channel == name]
            if not uses:
                continue
            with session(self.engine) as s:
                try:
                    self._plan_campaign(s, campaign, name, uses, until, now, prior)
                except IntegrityError:  # another daemon planned the same slots first: its rows stand
                    s.rollback()
                    event("plan.raced", logging.DEBUG, campaign=campaign.id, channel=name,
                          note="another daemon planned these slots first")
        self.plan_feeds(name)

    def plan_feeds(self, name: str) -> None:
        """Queued feed entries for this channel whose posting slot has come become journal rows."""
        now = self.clock.now()
        for campaign in self.project.campaigns.values():
            if campaign.model.status != "active":
                continue  # a paused campaign's entries stay queued
            uses = [(f, u) for f, feed in enumerate(campaign.model.feeds)
                    for u, use in enumerate(feed.channels) if use.channel == name]
            if not uses:
                continue
            with session(self.engine) as s:
                try:
                    for feed_index, use_index in uses:
                        for planned in release_due(s, campaign, feed_index, use_index, now):
                            self._plan_row(s, planned, now)
                    s.commit()
                except IntegrityError:  # another daemon released the same entries first: its rows stand
                    s.rollback()
                    event("plan.raced", logging.DEBUG, campaign=campaign.id, channel=name,
                          note="another daemon released these feed entries first")

    def _plan_campaign(self, s: Session, campaign: LoadedCampaign, name: str, uses: list[int], until: datetime,
                       now: datetime, prior: PriorCount) -> None:
        """Plan one campaign's slots on one channel and move its cursor, in one transaction (IntegrityError
        when another daemon planned them first)."""
        cursor = s.get(Cursor, (campaign.id, name))
        if cursor is None:  # first sight: start from now, never backfill history
            s.add(Cursor(campaign=campaign.id, channel=name, until=until))
            s.commit()
            event("cursor.started", campaign=campaign.id, channel=name, at=until)
            return
        start = _aware(cursor.until)
        if start >= until:
            return
        if campaign.model.status == "active":
            for index in uses:
                slots = slots_for(campaign, campaign.model.channels[index], start, until)
                for planned in posts_for_slots(campaign, index, slots, prior):
                    self._plan_row(s, planned, now)
        cursor.until = until
        s.add(cursor)
        s.commit()

    def _plan_row(self, s: Session, planned, now: datetime) -> None:  # type: ignore[no-untyped-def]
        if s.exec(select(Delivery.id).where(Delivery.key == planned.key)).first() is not None:
            return
        late = now - planned.slot
        if late > planned.campaign.grace:
            row = new_delivery(planned, status=S.MISSED)
            row.error = (f"not sent: {_span(late)} late, beyond misfire_grace {planned.campaign.model.misfire_grace}"
                         " (the daemon was not running)")
            s.add(row)
            self.metrics.delivery(planned.channel, S.MISSED)
            event("delivery.missed", logging.WARNING, key=planned.key, late=_span(late))
            return
        row = new_delivery(planned)
        try:
            composed = self.project.compose(planned)
        except Exception as exc:  # a template that rendered in validate but not now (e.g. data changed)
            row.status, row.error = S.FAILED, f"render: {exc.__class__.__name__}: {exc}"
            s.add(row)
            self.metrics.delivery(planned.channel, S.FAILED)
            event("delivery.render_failed", logging.ERROR, key=planned.key, error=row.error)
            return
        row.text, row.payload = composed.post.text, post_to_json(composed.post)
        save_links(s, composed.links)
        s.add(row)
        event("delivery.planned", key=planned.key, slot=planned.slot)

    # -- 3. send -----------------------------------------------------------------------------------------------
    async def send_ready(self, name: str) -> None:
        """Send this channel's ready rows in slot order, paced; stop when paused or shutting down."""
        channel = self.project.channel(name)
        while not self.stopping:
            now = self.clock.now()
            with session(self.engine) as s:
                if is_paused(s, name):
                    return
                row = s.exec(select(Delivery).where(
                    Delivery.channel == name,
                    (Delivery.status == S.PENDING) | (
                        (Delivery.status == S.RETRYING) & (col(Delivery.next_attempt_at) <= now)))
                    .order_by(col(Delivery.slot_at), col(Delivery.id))).first()
            if row is None:
                return
            if self._expired(row, now):
                continue
            limits = self.limits(channel)
            wait = self._take(limits, now)
            if wait > 0:
                event("channel.throttled", channel=name, wait_seconds=round(wait, 3))
                await self.clock.sleep(wait)
                continue
            if not await self._send_one(channel, row, taken_at=now):
                for limit in limits:
                    limit.give_back(now)

    async def assist(self, name: str) -> None:
        """Email channels: with nothing of its own to send, help the fan-outs other daemons are sending."""
        service = self.email.get(self.project, self.project.channel(name))
        if service is None or self.stopping:
            return
        with session(self.engine) as s:
            if is_paused(s, name):
                return
        try:
            await service.assist()
        except Exception as exc:  # helping is optional: the owner sends whatever is left
            event("dispatch.assist_failed", logging.WARNING, channel=name, error=f"{exc.__class__.__name__}: {exc}")

    def _expired(self, row: Delivery, now: datetime) -> bool:
        late = now - _aware(row.slot_at)
        campaign = self.project.campaigns.get(row.campaign)
        if row.status == S.PENDING and campaign is not None and late > campaign.grace:
            self._finish(row.id or 0, S.MISSED, error=f"not sent: {_span(late)} late, beyond misfire_grace "
                                                      f"{campaign.model.misfire_grace}")
            event("delivery.missed", logging.WARNING, **self._fields(row), late=_span(late))
            return True
        if late > GIVE_UP_AFTER or row.payload is None:
            reason = "no rendered post in the journal" if row.payload is None else \
                f"gave up: still not delivered {_span(late)} after its slot"
            self._finish(row.id or 0, S.FAILED, error=f"{row.error + '; ' if row.error else ''}{reason}")
            event("delivery.failed", logging.ERROR, **self._fields(row), error=reason)
            return True
        return False

    async def _send_one(self, channel: Channel, row: Delivery, taken_at: datetime) -> bool:
        """Claim the row (`preparing`), let the plugin prepare, and only then mark it `sending` and publish.

        A crash while preparing leaves a `preparing` row that the next pass releases for sending (nothing can
        have reached the platform); only a crash while publishing leaves an outcome to settle. False when another
        process claimed the row first (nothing was sent). `taken_at`: when its rate limits were taken.
        """
        assert row.id is not None and row.payload is not None  # rows come from the journal with a payload
        with session(self.engine) as s:
            claimed = s.execute(update(Delivery).where(
                col(Delivery.id) == row.id, col(Delivery.status).in_([S.PENDING, S.RETRYING]))
                .values(status=S.PREPARING, attempts=Delivery.attempts + 1, updated_at=utcnow(),
                        claimed_by=self.worker, lease_until=self.clock.now() + self.lease))
            s.commit()
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            return False  # another process took it
        attempt = row.attempts + 1
        post = post_from_json(row.payload)
        post.key = row.key
        self.in_flight.add(row.id)
        renewal = asyncio.ensure_future(self._renew_lease(row.id))
        started = self.clock.now()
        receipt: Receipt | None = None
        try:
            async with self.sender(channel).prepare(post) as publish:
                if not self._mark_sending(row.id):
                    event("delivery.claim_lost", logging.WARNING, **self._fields(row))
                    return True
                receipt = await publish()
                self._finish(row.id, S.SENT, receipt=receipt)  # recorded before the plugin closes its client
                self.metrics.sent(channel.name, (self.clock.now() - started).total_seconds())
                event("delivery.sent", **self._fields(row), attempt=attempt, remote_id=receipt.remote_id)
        except Exception as exc:
            if receipt is None:
                self._failed(channel, row, attempt, exc, taken_at)
            else:  # sent and recorded; only releasing the plugin's client failed
                event("delivery.close_failed", logging.WARNING, **self._fields(row),
                      error=f"{exc.__class__.__name__}: {exc}")
        finally:
            renewal.cancel()
            self.in_flight.discard(row.id)
        return True

    def _failed(self, channel: Channel, row: Delivery, attempt: int, exc: Exception, taken_at: datetime) -> None:
        """Record what a failed send means: wait out a rate limit, pause, fail, or retry with backoff."""
        row_id = row.id or 0
        if isinstance(exc, RateLimited):
            wait = exc.retry_after if exc.retry_after is not None else self.backoff.delay(attempt)
            now = self.clock.now()
            for limit in self.limits(channel):
                limit.give_back(taken_at)  # nothing was posted: a subreddit's minimum interval does not restart
                limit.block(now + timedelta(seconds=wait))
            self._finish(row_id, S.RETRYING, next_at=now + timedelta(seconds=wait), count_attempt=False,
                         error=f"rate_limited: {exc}")
            event("delivery.rate_limited", logging.WARNING, **self._fields(row), retry_after=round(wait, 3))
        elif isinstance(exc, AuthError):
            self._finish(row_id, S.RETRYING, next_at=None, count_attempt=False, error=f"auth: {exc}")
            pause_channel(self.engine, channel.name, f"auth: {exc}", self.clock.now())
            self.metrics.paused(channel.name)
            event("channel.paused", logging.ERROR, channel=channel.name, reason=f"auth: {exc}",
                  action=f"fix the credentials, then run `drainage resume {channel.name}` or reload the config")
        elif isinstance(exc, Paused):  # e.g. an email campaign's failure rate: waits for `drainage resume CAMPAIGN`
            self._finish(row_id, S.RETRYING, next_at=None, count_attempt=False, error=f"paused: {exc}")
            event("delivery.paused", logging.ERROR, **self._fields(row), reason=str(exc))
        elif isinstance(exc, PermanentError):
            self._finish(row_id, S.FAILED, error=f"permanent: {exc}")
            event("delivery.failed", logging.ERROR, **self._fields(row), error=f"permanent: {exc}")
        else:  # transient, timeouts, OS errors, and plugin bugs (which must not kill the daemon): retried
            self._retry_or_fail(row, attempt, exc)

    async def _renew_lease(self, row_id: int) -> None:
        """Keep this worker's claim alive while a send lasts (every third of the lease)."""
        while True:
            await asyncio.sleep(max(self.lease.total_seconds() / 3, 0.05))
            with session(self.engine) as s:
                s.execute(update(Delivery).where(col(Delivery.id) == row_id, Delivery.claimed_by == self.worker,
                                                 col(Delivery.status).in_([S.PREPARING, S.SENDING]))
                          .values(lease_until=self.clock.now() + self.lease))
                s.commit()

    def _mark_sending(self, row_id: int) -> bool:
        """The post is prepared: from now on its bytes may reach the platform. False if the claim was lost."""
        with session(self.engine) as s:
            marked = s.execute(update(Delivery).where(
                col(Delivery.id) == row_id, Delivery.claimed_by == self.worker, Delivery.status == S.PREPARING)
                .values(status=S.SENDING, updated_at=utcnow()))
            s.commit()
        return marked.rowcount == 1  # type: ignore[attr-defined]

    def _retry_or_fail(self, row: Delivery, attempt: int, exc: Exception) -> None:
        kind = exc.kind if isinstance(exc, ChannelError) else "transient"
        reason = f"{kind}: {exc}" if isinstance(exc, ChannelError) else f"transient: {exc.__class__.__name__}: {exc}"
        if attempt >= self.max_attempts:
            self._finish(row.id or 0, S.FAILED, error=f"{reason} (gave up after {attempt} attempts)")
            event("delivery.failed", logging.ERROR, **self._fields(row), attempt=attempt, error=reason)
            return
        delay = self.backoff.delay(attempt)
        self._finish(row.id or 0, S.RETRYING, next_at=self.clock.now() + timedelta(seconds=delay), error=reason)
        event("delivery.retrying", logging.WARNING, **self._fields(row), attempt=attempt,
              retry_in=round(delay, 3), error=reason)

    def _finish(self, row_id: int, status: str, *, receipt: Receipt | None = None, next_at: datetime | None = None,
                error: str | None = None, count_attempt: bool = True, note: str | None = None) -> None:
        with session(self.engine) as s:
            row = s.get(Delivery, row_id)
            if row is None:
                return
            row.status = status
            row.next_attempt_at = next_at
            row.updated_at = utcnow()
            if not count_attempt and row.attempts > 0 and status == S.RETRYING:
                row.attempts -= 1
            if receipt is not None:
                row.remote_id, row.remote_url = receipt.remote_id, receipt.url
                row.recipients, row.impressions = receipt.recipients, receipt.impressions
                row.sent_at = self.clock.now()
                row.error = note
            else:
                row.error = error
            s.add(row)
            s.commit()
            channel = row.channel
        self.metrics.delivery(channel, status)

    @staticmethod
    def _fields(row: Delivery) -> dict[str, object]:
        return {"key": row.key, "campaign": row.campaign, "channel": row.channel}


def _span(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds >= 86400:
        return f"{seconds // 86400}d{(seconds % 86400) // 3600}h"
    if seconds >= 3600:
        return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"
