"""The `email` channel: a campaign's email post, sent over SMTP to every opted-in subscriber of its lists.

The plugin declares the options and wires the fan-out (`drainage.email.fanout`), which renders per recipient,
keeps the per-recipient ledger and talks to the relay. It sets `fans_out`, so the daemon (or `drainage send`)
binds it to the database before the first send.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from email.utils import parseaddr
from pathlib import Path
from typing import ClassVar, Literal, cast

from pydantic import Field, SecretStr, field_validator

from drainage.channel import Channel, ChannelHost, ChannelOptions, Duration, Limits, Post, Receipt, post_from_json
from drainage.email import ledger as ledgers
from drainage.email import mime
from drainage.email.fanout import Fanout, FanoutSettings, Relay, message_id
from drainage.email.smtp import Connection, RelaySettings
from drainage.email.throttle import RelayPace
from drainage.errors import ChannelError, PermanentError
from drainage.pacing import SharedLimit, parse_rate
from drainage.schedule import parse_duration
from drainage.workers import worker_id


class EmailOptions(ChannelOptions):
    """Options of an email channel instance: the SMTP relay, the sender, pacing and the audience."""

    type: Literal["email"] = Field(default="email", description="Sends email over SMTP to subscriber lists.")
    host: str = Field(description="SMTP relay host name, e.g. 'email-smtp.eu-west-1.amazonaws.com'.")
    port: int = Field(default=587, ge=1, le=65535, description="SMTP port (587 STARTTLS, 465 TLS, 25 plain).")
    security: Literal["starttls", "tls", "none"] = Field(
        default="starttls", description="starttls (required upgrade), tls (implicit TLS, port 465) or none.")
    username: str | None = Field(default=None, description="SMTP login (from the environment, e.g. ${SMTP_USER}).")
    password: SecretStr | None = Field(default=None, description="SMTP password (from the environment).")
    validate_certs: bool = Field(default=True, description="Check the relay's TLS certificate.")
    from_address: str = Field(description="Sender, e.g. 'Northwind Knits <news@shop.example.com>'.")
    reply_to: str | None = Field(default=None, description="Reply-To address.")
    lists: list[str] = Field(default_factory=list, description="Subscriber lists mailed by default (a campaign's "
                                                               "`lists` overrides).")
    connections: int = Field(default=4, ge=1, le=64, description="SMTP sessions kept open to the relay; each "
                                                                  "sends one message at a time.")
    in_flight: int = Field(default=100, ge=1, le=10_000,
                           description="Most recipients claimed (rendered ahead) at once; a hard kill puts them "
                                       "back in the queue, except at most `connections` whose outcome is unknown.")
    rate: str | None = Field(default=None, description="Messages per relay, e.g. '14/second' (token bucket; "
                                                       "halved on session-level 4xx replies, then recovers).")
    window: str | None = Field(default=None, description="Optional quota over a sliding window, e.g. '10000/hour' "
                                                         "(counts what earlier runs sent).")
    timeout: Duration = Field(default="30s", description="SMTP command timeout.")
    max_attempts: int = Field(default=5, ge=1, le=50, description="Tries per recipient on 4xx replies.")
    retry_backoff: Duration = Field(default="30s", description="First retry delay of a recipient after a 4xx reply; "
                                                               "doubles each try, with jitter.")
    retry_backoff_max: Duration = Field(default="10m", description="Longest retry delay of a recipient.")
    pause_failure_rate: float = Field(default=0.1, gt=0, le=1, description="Pause the campaign when this share "
                                                                          "of messages fail or bounce.")
    pause_min_sample: int = Field(default=100, ge=1, description="Messages sent before the failure rate counts.")
    message_id_domain: str | None = Field(default=None, description="Domain of Message-IDs (default: the "
                                                                    "sender's).")

    @field_validator("rate", "window")
    @classmethod
    def _rate(cls, v: str | None) -> str | None:
        if v is not None:
            parse_rate(v)
        return v

    @field_validator("from_address")
    @classmethod
    def _sender(cls, v: str) -> str:
        if "@" not in parseaddr(v)[1]:
            raise ValueError(f"'{v}' is not an address such as 'Store <news@shop.example.com>'")
        return v


class EmailChannel(Channel):
    """Fans a post out to opted-in subscribers through one SMTP relay."""

    type = "email"
    kind = "email"
    Options: ClassVar[type[ChannelOptions]] = EmailOptions
    limits = Limits(max_length=None, counting="chars", media=True)
    fans_out = True

    def __init__(self, name: str, options: ChannelOptions, *, base_dir: Path | None = None) -> None:
        super().__init__(name, options, base_dir=base_dir)
        self._opts = o = cast(EmailOptions, options)
        self.host: ChannelHost | None = None
        rate = parse_rate(o.rate) if o.rate else None
        window = parse_rate(o.window) if o.window else None
        self.window = window[1] if window else None  # the quota's period
        self.relay = Relay(RelaySettings(o.host, o.port, o.security, o.username,
                                         o.password.get_secret_value() if o.password else None,
                                         parse_duration(o.timeout).total_seconds(), o.validate_certs),
                           o.connections,
                           RelayPace(rate[0] / rate[1].total_seconds() if rate else None,
                                     (window[0], window[1].total_seconds()) if window else None))
        header, sender = mime.from_header(o.from_address)
        self.settings = FanoutSettings(
            sender=sender, envelope=mime.Envelope(header, o.reply_to), lists=tuple(o.lists),
            message_id_domain=o.message_id_domain or sender.rpartition("@")[2], in_flight=max(o.in_flight,
                                                                                              o.connections),
            max_attempts=o.max_attempts, retry_backoff=parse_duration(o.retry_backoff).total_seconds(),
            retry_backoff_max=parse_duration(o.retry_backoff_max).total_seconds(),
            pause_failure_rate=o.pause_failure_rate, pause_min_sample=o.pause_min_sample)

    def bind(self, host: ChannelHost) -> None:
        self.host = host
        limits = [SharedLimit(host.engine, f"relay:{self.name}:{what}", *parse_rate(rate))
                  for what, rate in (("rate", self._opts.rate), ("window", self._opts.window)) if rate]
        if limits:  # the relay's rate and window hold across every daemon on the database

            async def shared() -> None:
                for limit in limits:
                    await limit.acquire()

            self.relay.pace.shared = shared

    def _fanout(self) -> Fanout:
        if self.host is None:
            raise PermanentError("the email channel was not bound to a database (a drainage bug)")
        return Fanout(self.host, self, self.relay, self.settings, self.window)

    async def send(self, post: Post) -> Receipt:
        return await self._fanout().run(post)

    async def lookup(self, post: Post) -> Receipt | None:
        return await self._fanout().lookup(post)

    async def assist(self) -> int:
        """Claim chunks of the fan-outs other daemons are sending on this channel, until none is ready now."""
        if self.host is None:
            return 0
        sent = 0
        for key, payload in await asyncio.to_thread(ledgers.assistable, self.host.engine, self.name, worker_id()):
            if self.host.stopping():
                break
            post = post_from_json(payload)
            post.key = key
            sent += await self._fanout().assist(post)
        return sent

    async def send_single(self, to: str, name: str, subject: str, text: str, unsubscribe_url: str) -> str:
        """One plain-text message outside any campaign (a sign-up confirmation); returns the outcome's kind."""
        message = mime.build(self.settings.envelope, to=mime.address(name, to), subject=subject, text=text, html=None,
                             message_id=message_id(f"single:{datetime.now(UTC).isoformat()}", to,
                                                   self.settings.message_id_domain),
                             date=datetime.now(UTC), unsubscribe_url=unsubscribe_url)
        connection = Connection(self.relay.settings)
        try:
            return (await connection.send(self.settings.sender, to, message)).kind
        except ChannelError as exc:
            return f"not sent: {exc}"
        finally:
            await connection.close()

    async def close(self) -> None:
        await self.relay.close()
