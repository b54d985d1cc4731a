"""The email fan-out service: what the dispatcher (the daemon, or `drainage send`) runs around an email plugin.

An email plugin (`drainage.channel.MailChannel`) only connects to its relay: it opens sessions that send one
message each time they are asked. Everything else is here, on the host's side of the wall: the frozen audience
and the per-recipient ledger, rendering per recipient, the relay's pace (its `rate` and `window` shared with
every daemon on the database), retries, the crash windows, and helping the fan-outs of other daemons.

The dispatcher keeps one `EmailService` per email channel instance (`EmailServices`); it stands in for the plugin
where the dispatcher would call it: `prepare` (the fan-out is the publishing call), `lookup` after a crash, and
`assist` when the channel has nothing of its own to send.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from sqlalchemy import Engine

from drainage.channel import Channel, MailChannel, Post, Publish, Receipt, post_from_json
from drainage.email import ledger as ledgers
from drainage.email import mime
from drainage.email.fanout import Fanout, FanoutHost, FanoutSettings, Relay, message_id
from drainage.email.throttle import RelayPace
from drainage.errors import ChannelError
from drainage.pacing import SharedLimit
from drainage.project import Project
from drainage.units import parse_rate
from drainage.workers import worker_id


def fanout_settings(channel: MailChannel) -> FanoutSettings:
    """The fan-out behaviour an email channel's settings ask for."""
    s = channel.mail_settings()
    header, sender = mime.from_header(s.from_address)
    return FanoutSettings(
        sender=sender, envelope=mime.Envelope(header, s.reply_to), lists=tuple(s.lists),
        message_id_domain=s.message_id_domain or sender.rpartition("@")[2],
        in_flight=max(s.in_flight, s.connections), max_attempts=s.max_attempts, retry_backoff=s.retry_backoff,
        retry_backoff_max=s.retry_backoff_max, pause_failure_rate=s.pause_failure_rate,
        pause_min_sample=s.pause_min_sample)


class EmailService:
    """The fan-out of one email channel instance in one host process: its relay's sessions and pace live as long
    as the channel instance does (across fan-outs)."""

    can_lookup = True
    """A finished fan-out is found in the ledger; an unfinished one is resumed by sending it again."""

    def __init__(self, channel: MailChannel, engine: Engine, project: Project,
                 stopping: Callable[[], bool] = lambda: False) -> None:
        self.channel = channel
        self.host = FanoutHost(engine, project, stopping)
        s = channel.mail_settings()
        rate = parse_rate(s.rate) if s.rate else None
        window = parse_rate(s.window) if s.window else None
        self.window = window[1] if window else None  # the quota's period
        self.settings = fanout_settings(channel)
        self.relay = Relay([channel.open_session() for _ in range(s.connections)],
                           RelayPace(rate[0] / rate[1].total_seconds() if rate else None,
                                     (window[0], window[1].total_seconds()) if window else None))
        limits = [SharedLimit(engine, f"relay:{channel.name}:{what}", *parse_rate(text))
                  for what, text in (("rate", s.rate), ("window", s.window)) if text]
        if limits:  # the relay's rate and window hold across every daemon on the database

            async def shared() -> None:
                for limit in limits:
                    await limit.acquire()

            self.relay.pace.shared = shared

    def _fanout(self) -> Fanout:
        return Fanout(self.host, self.channel, self.relay, self.settings, self.window)

    async def send(self, post: Post) -> Receipt:
        """Send `post` to its whole audience (or resume its fan-out); returns once every recipient is final."""
        return await self._fanout().run(post)

    @asynccontextmanager
    async def prepare(self, post: Post) -> AsyncIterator[Publish]:
        """As `Channel.prepare`: nothing to prepare, the whole fan-out is the publishing call (its own ledger
        keeps the crash windows of each recipient)."""

        async def publish() -> Receipt:
            return await self.send(post)

        yield publish

    async def lookup(self, post: Post) -> Receipt | None:
        """After a crash: a finished fan-out's receipt; None for an unfinished one (sending it again resumes it)."""
        return await self._fanout().lookup(post)

    async def assist(self) -> int:
        """Claim chunks of the fan-outs other daemons are sending on this channel, until none is ready now; returns
        the messages sent."""
        sent = 0
        engine = self.host.engine
        for key, payload in await asyncio.to_thread(ledgers.assistable, engine, self.channel.name, worker_id()):
            if self.host.stopping():
                break
            post = post_from_json(payload)
            post.key = key
            sent += await self._fanout().assist(post)
        return sent

    async def close(self) -> None:
        await self.relay.close()


class EmailServices:
    """The fan-out services of one host process, one per email channel instance, made on first use (a reloaded
    project brings new channel instances, and with them new services; the plugin closes its sessions)."""

    def __init__(self, engine: Engine, stopping: Callable[[], bool] = lambda: False) -> None:
        self.engine = engine
        self.stopping = stopping
        self._by_name: dict[str, EmailService] = {}

    def get(self, project: Project, channel: Channel) -> EmailService | None:
        """The service of `channel` when it sends email, else None (the plugin sends by itself)."""
        if not isinstance(channel, MailChannel):
            return None
        found = self._by_name.get(channel.name)
        if found is None or found.channel is not channel:
            found = self._by_name[channel.name] = EmailService(channel, self.engine, project, self.stopping)
        return found


async def send_single(channel: MailChannel, to: str, name: str, subject: str, text: str,
                      unsubscribe_url: str) -> str:
    """One plain-text message outside any campaign (a sign-up confirmation), through one new session of the
    channel's relay; returns the outcome's kind (or why it was not sent)."""
    settings = fanout_settings(channel)
    now = datetime.now(UTC)
    message = mime.build(settings.envelope, to=mime.address(name, to), subject=subject, text=text, html=None,
                         message_id=message_id(f"single:{now.isoformat()}", to, settings.message_id_domain),
                         date=now, unsubscribe_url=unsubscribe_url)
    session = channel.open_session()
    try:
        return (await session.send(settings.sender, to, message)).kind
    except ChannelError as exc:
        return f"not sent: {exc}"
    finally:
        await session.close()
