"""The fan-out: one campaign email post, rendered for and sent to each recipient, driven by the ledger.

The daemon sees one delivery; this sends it to the whole audience and returns when every recipient is final:

    open the fan-out (frozen audience)  ->  settle rows a dead sender left `sending`  ->  loop:
        one ledger transaction: record finished outcomes, store the tracked links of the messages rendered
        since the last one, claim recipients (at most `in_flight` outstanding)  ->  hand the rendered messages
        to `connections` SMTP sessions, paced by the relay  ->  render the claimed recipients

- A recipient is claimed, rendered and waits for a ready SMTP session; it becomes `sending` only right before
  its transaction (see `recorder`), so a hard kill leaves at most `connections` recipients unknown.
- 4xx replies re-queue the recipient with its own exponential backoff; only session-level signals (421, 454,
  4xx at MAIL FROM, a lost connection) also halve the relay's rate. After `max_attempts` it fails.
  5xx at RCPT/DATA is a hard bounce: recorded and suppressed.
- When failures and bounces pass `pause_failure_rate` (after `pause_min_sample` messages), the fan-out stops
  claiming, is marked paused with the reason, and raises `Paused` (the daemon waits for `drainage resume`).
- A relay that cannot be reached raises `RelayDown` (transient: the daemon retries the delivery later; claimed
  recipients go back to the queue). A host shutting down stops claiming, lets in-flight messages finish,
  releases the rest and raises `RateLimited(retry_after=0)`, so the next start resumes at once.
- A hard kill leaves at most `connections` recipients `sending` (the unknown window) and up to `in_flight`
  `claimed`, which go back to the queue (see `ledger`).

Several daemons share a fan-out: the one that owns the delivery runs `run`; the others `assist` (claim chunks
of queued recipients, send them, record them, return when none is ready). The owner finishes once no recipient
is queued or in flight anywhere, settling the rows of senders that are gone.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from jinja2 import TemplateError
from sqlalchemy import Engine

from drainage.channel import Channel, MailOutcome, MailSession, Post, Receipt
from drainage.email import ledger as ledgers
from drainage.email import mime
from drainage.email.compose import Composer, Subscriber, audience_of, planned_for
from drainage.email.ledger import Claimed, Ledger, Result
from drainage.email.recorder import Recorder
from drainage.email.throttle import RelayPace
from drainage.email.tokens import Tokens, token_key
from drainage.errors import AuthError, ChannelError, Paused, RateLimited, RelayDown
from drainage.links import LinkError, TrackedLink
from drainage.logs import event
from drainage.posts import PlannedPost
from drainage.project import Project
from drainage.schedule import parse_duration
from drainage.store.email_models import FanoutStatus
from drainage.store.email_models import RecipientStatus as R

BATCH_WAIT = 0.02
"""After the first finished message, how long the loop waits for more before writing them (group commit)."""
RENDER_SLICE = 4
"""Recipients rendered between two looks at the SMTP sessions (about 1 ms of work)."""
CHECK_EVERY = 0.5
"""Seconds between two lease renewals / reads of the fan-out's status (in the step's transaction)."""
OTHERS_POLL = 0.5
"""Seconds between two looks at the recipients other daemons have in flight, once this sender has none."""


@dataclass(frozen=True)
class FanoutSettings:
    """An email channel's fan-out behaviour (from its options)."""

    sender: str
    envelope: mime.Envelope
    message_id_domain: str
    lists: tuple[str, ...]
    in_flight: int = 100
    max_attempts: int = 5
    retry_backoff: float = 30.0
    retry_backoff_max: float = 600.0
    pause_failure_rate: float = 0.1
    pause_min_sample: int = 100


@dataclass
class Job:
    claimed: Claimed
    message: bytes
    links: list[TrackedLink]


class Relay:
    """One relay's sessions (opened by the email plugin) and pace, kept for the life of the channel instance
    (across fan-outs)."""

    def __init__(self, sessions: list[MailSession], pace: RelayPace) -> None:
        self.connections = sessions
        self.pace = pace
        self.window_loaded = False

    async def close(self) -> None:
        await asyncio.gather(*(c.close() for c in self.connections))


@dataclass
class FanoutHost:
    """What a fan-out works with: the database, the project, and whether the host process is shutting down."""

    engine: Engine
    project: Project
    stopping: Callable[[], bool] = lambda: False


def message_id(delivery_key: str, ref: str, domain: str) -> str:
    """Stable per (campaign slot, recipient): a resend after a crash carries the same Message-ID."""
    digest = hashlib.sha256(f"{delivery_key}\x1f{ref}".encode()).hexdigest()[:32]
    return f"<{digest}@{domain}>"


class Fanout:
    """Sends one post to its audience. Create one per send; `relay` is shared."""

    def __init__(self, host: FanoutHost, channel: Channel, relay: Relay, settings: FanoutSettings,
                 window: timedelta | None = None) -> None:
        self.host, self.channel, self.relay, self.settings, self.window = host, channel, relay, settings, window
        self.stats: Counter[str] = Counter()
        self._results: list[tuple[Job, MailOutcome | None]] = []
        self._wake = asyncio.Event()
        self._relay_error: ChannelError | None = None
        self._rng = random.Random()
        self._resend = False

    # -- entry points --------------------------------------------------------------------------------------------
    async def run(self, post: Post) -> Receipt:
        """Send `post` to its whole audience (or resume it); returns when every recipient is final."""
        engine, project = self.host.engine, self.host.project
        planned = planned_for(project, post)
        lists = tuple(planned.use.lists or self.settings.lists)
        fanout = await asyncio.to_thread(ledgers.open_fanout, engine, post.key, post.campaign, self.channel.name,
                                         lists, (), audience_of(project, planned, self.channel))
        assert fanout.id is not None
        if fanout.status == FanoutStatus.DONE:
            return _receipt(await asyncio.to_thread(ledgers.counts, engine, fanout.id))
        if fanout.status == FanoutStatus.PAUSED:
            raise Paused(fanout.pause_reason or "paused")
        ledger = Ledger(engine, fanout.id, post.campaign, lease=self._lease())
        self._resend = planned.campaign.model.on_unknown == "resend"
        await self._settle_orphans(ledger, post.key)
        composer = await self._composer(post, planned)
        event("email.fanout_started", campaign=post.campaign, channel=self.channel.name, key=post.key,
              audience=fanout.total, lists=",".join(lists))
        await self._loop(ledger, composer, post.key)
        found = await asyncio.to_thread(ledgers.counts, engine, fanout.id)
        await asyncio.to_thread(ledger.set_status, FanoutStatus.DONE)
        event("email.fanout_done", campaign=post.campaign, channel=self.channel.name, key=post.key,
              result=ledgers.summary(found), retried=self.stats["retried"], relay_slowed=self.relay.pace.slowed)
        return _receipt(found)

    async def assist(self, post: Post) -> int:
        """Help another daemon's running fan-out of `post`: claim chunks of its queued recipients and send them
        until none is ready (the owner of the delivery waits for retries and marks it done). Returns the number
        of messages this call sent."""
        engine = self.host.engine
        fanout = await asyncio.to_thread(ledgers.find, engine, post.key)
        if fanout is None or fanout.id is None or fanout.status != FanoutStatus.RUNNING:
            return 0
        planned = planned_for(self.host.project, post)
        ledger = Ledger(engine, fanout.id, post.campaign, lease=self._lease())
        self._resend = planned.campaign.model.on_unknown == "resend"
        composer = await self._composer(post, planned)
        event("email.fanout_assist", campaign=post.campaign, channel=self.channel.name, key=post.key)
        try:
            await self._loop(ledger, composer, post.key, assisting=True)
        except (ChannelError, Paused) as exc:
            event("email.fanout_assist_stopped", logging.WARNING, key=post.key, reason=str(exc))
        event("email.fanout_assisted", campaign=post.campaign, channel=self.channel.name, key=post.key,
              sent=self.stats[R.SENT])
        return self.stats[R.SENT]

    def _lease(self) -> timedelta:
        return parse_duration(self.host.project.config.config.daemon.lease)

    async def _settle_orphans(self, ledger: Ledger, delivery_key: str) -> None:
        """Settle the rows of senders that are gone (see `Ledger.settle_orphans`) and say so."""
        orphans = await asyncio.to_thread(ledger.settle_orphans, self._resend)
        if orphans:
            event("email.unknown_after_crash", logging.WARNING, campaign=ledger.campaign, channel=self.channel.name,
                  key=delivery_key, recipients=orphans, policy="resend" if self._resend else "skip")

    async def _composer(self, post: Post, planned: PlannedPost) -> Composer:
        engine, project = self.host.engine, self.host.project
        if self.window is not None and not self.relay.window_loaded:
            self.relay.pace.preload(await asyncio.to_thread(ledgers.sent_since, engine, self.channel.name,
                                                            self.window))
            self.relay.window_loaded = True
        email_cfg = project.config.config.email
        configured = email_cfg.token_secret.get_secret_value() if email_cfg.token_secret else None
        tokens = Tokens(await asyncio.to_thread(token_key, engine, configured))
        public = project.config.config.tracker.public_url.rstrip("/")
        return Composer(project, planned, self.channel, slotted=True,
                        unsubscribe_url=lambda ref: f"{public}/u/{tokens.unsubscribe(ref, post.campaign)}")

    async def lookup(self, post: Post) -> Receipt | None:
        """Done fan-outs are found; an unfinished one is not, so the daemon sends it again (which resumes it)."""
        fanout = await asyncio.to_thread(ledgers.find, self.host.engine, post.key)
        if fanout is None or fanout.status != FanoutStatus.DONE or fanout.id is None:
            return None
        return _receipt(await asyncio.to_thread(ledgers.counts, self.host.engine, fanout.id))

    # -- rendering (on the event loop, a slice at a time between SMTP replies) ------------------------------------
    def _renderer(self, composer: Composer, delivery_key: str) -> Callable[[Claimed], Job | Result]:
        settings = self.settings

        def render(c: Claimed) -> Job | Result:
            subscriber = Subscriber.from_row(c.ref, c.email, c.name, c.locale, c.attributes)
            try:
                rendered = composer.render(subscriber)
            except (TemplateError, LinkError, ValueError, TypeError, ArithmeticError, LookupError) as exc:
                return Result(c.row_id, R.FAILED, c.email, error=f"render: {exc.__class__.__name__}: {exc}"[:500])
            message = mime.build(settings.envelope, to=mime.address(subscriber.name, subscriber.email),
                                 subject=rendered.subject, text=rendered.text, html=rendered.html,
                                 message_id=message_id(delivery_key, c.ref, settings.message_id_domain),
                                 date=datetime.now(UTC), unsubscribe_url=rendered.unsubscribe_url)
            return Job(c, message, rendered.links)

        return render

    # -- the send loop -------------------------------------------------------------------------------------------
    async def _worker(self, connection: MailSession, queue: asyncio.Queue[Job | None], recorder: Recorder) -> None:
        """One SMTP session: paced, connected, then the recipient is marked `sending` (with this session's
        previous outcome, in one transaction) before DATA; the outcome goes to the recorder."""
        while True:
            job = await queue.get()
            if job is None:
                return
            marked: list[asyncio.Future[bool]] = []

            def gate(row_id: int = job.claimed.row_id, marked: list[asyncio.Future[bool]] = marked
                     ) -> asyncio.Future[bool]:
                marked.append(recorder.mark(row_id))
                return marked[-1]

            outcome: MailOutcome | None
            try:
                await self.relay.pace.acquire()
                outcome = await connection.send(self.settings.sender, job.claimed.email, job.message, gate=gate)
            except (RelayDown, AuthError) as exc:
                self._relay_error = self._relay_error or exc
                outcome = None  # never reached the relay: back to the queue
            except Exception as exc:  # a bug must not lose track of the recipient: report it, never resend it
                outcome = MailOutcome("unknown", None, f"internal error while sending: {exc.__class__.__name__}")
            if marked:
                await marked[0]  # the mark is written before this outcome is
            if outcome is not None and outcome.kind == "withdrawn":
                outcome = None  # taken over by another sender (released only if still this sender's)
            result = self._outcome(job, outcome)
            if result is not None:
                recorder.record(result)
            self._results.append((job, outcome))
            self._wake.set()

    async def _loop(self, ledger: Ledger, composer: Composer, delivery_key: str, *, assisting: bool = False) -> None:
        """Claim -> render (loop thread, in slices) -> store links, in the next step's transaction -> send.

        Rendering on the event loop (not in a worker thread) keeps the SMTP sessions' replies from waiting for
        the GIL; the database step runs in a thread, mostly inside SQLite. Every CHECK_EVERY the step also
        renews this sender's leases and reads the fan-out's status (another sender may have paused it).
        The owner returns once no recipient is queued or in flight anywhere; an assisting sender returns once
        none is ready now.
        """
        settings = self.settings
        render = self._renderer(composer, delivery_key)
        queue: asyncio.Queue[Job | None] = asyncio.Queue()
        recorder = Recorder(ledger)
        recorder.start()
        workers = [asyncio.create_task(self._worker(c, queue, recorder)) for c in self.relay.connections]
        claimed: deque[Claimed] = deque()  # claimed, not rendered yet
        ready: list[Job] = []  # rendered, links not stored yet
        failed: list[Result] = []  # could not be rendered
        outstanding = 0  # claimed rows whose outcome is not recorded yet
        paused: str | None = None
        loop = asyncio.get_running_loop()
        checked = loop.time()
        try:
            while True:
                while claimed:  # render a slice, then let the sessions read their replies
                    for _ in range(min(RENDER_SLICE, len(claimed))):
                        out = render(claimed.popleft())
                        (failed if isinstance(out, Result) else ready).append(out)  # type: ignore[arg-type]
                    await asyncio.sleep(0)
                    if queue.qsize() < len(workers) and len(ready) >= len(workers):
                        break  # the sessions are running dry: store these links and hand them over now
                starving = bool(ready) and queue.qsize() < 2 * len(workers)
                if outstanding > len(ready) + len(failed) + len(claimed) and not starving:
                    await self._wait_for_results(max(1, min(settings.in_flight // 4, outstanding // 2)))
                done, self._results = self._results, []
                records = failed  # the sessions' outcomes go through the recorder
                released = [job.claimed.row_id for job, outcome in done if outcome is None]
                self.stats[R.FAILED] += len(failed)
                outstanding -= len(done) + len(failed)
                failed = []
                paused = paused or self._failure_rate_exceeded()
                stop = (self.host.stopping() or self._relay_error is not None or paused is not None
                        or ledger.status != FanoutStatus.RUNNING)
                if stop:  # messages not yet handed to the relay go back to the queue
                    drained = _drain(queue) + [job.claimed.row_id for job in ready] + [c.row_id for c in claimed]
                    ready, claimed = [], deque()
                    outstanding -= len(drained)
                    released += drained
                want = 0 if stop else settings.in_flight - outstanding
                batch, ready = ready, []
                check = loop.time() - checked >= CHECK_EVERY
                if check:
                    checked = loop.time()
                fresh, skipped = await asyncio.to_thread(ledger.step, records, [k for j in batch for k in j.links],
                                                         want, check=check)
                if released:
                    await asyncio.to_thread(ledger.release, released)
                for job in batch:
                    queue.put_nowait(job)
                for result in skipped:
                    self.stats[result.status] += 1
                claimed.extend(fresh)
                outstanding += len(fresh)
                if outstanding > 0:
                    continue
                await recorder.flush()
                if self._relay_error is not None:
                    raise self._relay_error
                if paused is not None:
                    await asyncio.to_thread(ledger.set_status, FanoutStatus.PAUSED, paused)
                    event("email.fanout_paused", logging.ERROR, key=delivery_key, reason=paused)
                    raise Paused(paused)
                if ledger.status == FanoutStatus.PAUSED:  # by another sender
                    found = await asyncio.to_thread(ledgers.find, self.host.engine, delivery_key)
                    raise Paused((found.pause_reason if found else None) or "paused by another sender")
                if self.host.stopping() or ledger.status != FanoutStatus.RUNNING:
                    raise RateLimited("the daemon is stopping; the fan-out resumes at the next start", 0)
                due = await asyncio.to_thread(ledger.next_due)
                if assisting and (due is None or due > datetime.now(UTC)):
                    return  # nothing ready now: the owner waits for retries and finishes the fan-out
                if due is None:
                    # other daemons may still have recipients in flight (or die with them): wait for them
                    if await asyncio.to_thread(ledger.others_sending) == 0:
                        return
                    await self._settle_orphans(ledger, delivery_key)
                    await asyncio.sleep(OTHERS_POLL)
                    checked = 0.0  # check (and renew) at the next step
                    continue
                await asyncio.sleep(min(1.0, max(0.0, (due - datetime.now(UTC)).total_seconds())))
        except asyncio.CancelledError:
            # cut off: record what finished, release what never started; in-flight rows stay `sending` (unknown)
            for task in workers:
                task.cancel()
            recorder.cancel()
            done, self._results = self._results, []
            released = [job.claimed.row_id for job, outcome in done if outcome is None]
            await asyncio.to_thread(ledger.step, recorder.unwritten() + failed, [], 0)
            unsent = _drain(queue) + [job.claimed.row_id for job in ready] + [c.row_id for c in claimed]
            await asyncio.to_thread(ledger.release, released + unsent)
            raise
        finally:
            for _ in workers:
                queue.put_nowait(None)
            await asyncio.gather(*workers, return_exceptions=True)
            await recorder.stop()

    async def _wait_for_results(self, target: int) -> None:
        """Until one message finished, then up to BATCH_WAIT more for `target` (one transaction for many)."""
        if not self._results:
            self._wake.clear()
            await self._wake.wait()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + BATCH_WAIT
        while len(self._results) < target:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), remaining)
            except TimeoutError:
                return

    def _outcome(self, job: Job, outcome: MailOutcome | None) -> Result | None:
        """The ledger result of a finished message (None: it never reached the relay), paced and counted.

        A retry waits with the recipient's own backoff; only a session-level signal slows the relay."""
        c, pace = job.claimed, self.relay.pace
        if outcome is None:
            return None
        if outcome.kind == "sent":
            pace.accepted()
            result = Result(c.row_id, R.SENT, c.email, code=outcome.code)
        elif outcome.kind == "retry":
            if outcome.throttled:
                pace.slow_down()
            if c.attempts >= self.settings.max_attempts:
                result = Result(c.row_id, R.FAILED, c.email, outcome.code,
                                f"gave up after {c.attempts} attempts: {outcome.message}")
            else:
                delay = min(self.settings.retry_backoff_max, self.settings.retry_backoff * 2 ** (c.attempts - 1))
                later = datetime.now(UTC) + timedelta(seconds=self._rng.uniform(delay / 2, delay))
                self.stats["retried"] += 1
                return Result(c.row_id, R.QUEUED, c.email, outcome.code, outcome.message, later)
        elif outcome.kind == "bounce":
            result = Result(c.row_id, R.BOUNCED, c.email, outcome.code, outcome.message)
        elif outcome.kind == "unknown":
            result = Result(c.row_id, R.UNKNOWN, c.email, outcome.code, outcome.message)
        else:
            result = Result(c.row_id, R.FAILED, c.email, outcome.code, outcome.message)
        self.stats[result.status] += 1
        return result

    def _failure_rate_exceeded(self) -> str | None:
        bad = self.stats[R.FAILED] + self.stats[R.BOUNCED]
        attempted = bad + self.stats[R.SENT]
        limit = self.settings.pause_failure_rate
        if attempted < self.settings.pause_min_sample or bad <= limit * attempted:
            return None
        return (f"auto-paused: {bad} of {attempted} messages failed or bounced ({bad / attempted:.0%}), over "
                f"pause_failure_rate {limit:.0%}; check the relay and the list, then `drainage resume CAMPAIGN`")


def _drain(queue: asyncio.Queue[Job | None]) -> list[int]:
    ids = []
    while not queue.empty():
        job = queue.get_nowait()
        if job is not None:
            ids.append(job.claimed.row_id)
    return ids


def _receipt(found: Counter[str]) -> Receipt:
    """A finished fan-out's receipt: its summary, and the recipients it reached (the CTR denominator of reports)."""
    return Receipt(ledgers.summary(found), recipients=found.get(R.SENT, 0))
