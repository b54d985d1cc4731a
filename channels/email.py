"""The `email` channel: a campaign's email post, sent over SMTP to every opted-in subscriber of its lists.

The plugin declares the options and provides sessions with the relay (aiosmtplib). The dispatcher's fan-out
service (`drainage.email.service`) does the rest around it: the audience and its per-recipient ledger, rendering
per recipient, pacing, retries and as many sessions in parallel as `connections`.

What each reply means for the recipient (`MailOutcome.kind`):

| what happened                                   | outcome   | the fan-out then                          |
|-------------------------------------------------|-----------|-------------------------------------------|
| 250 after DATA                                  | `sent`    | records it                                |
| 4xx at RCPT or DATA (450, 451, 452: one mailbox)| `retry`   | re-queues the recipient with its backoff  |
| 421 anywhere, 454, any 4xx at MAIL FROM         | `retry`   | re-queues it and slows the relay (session)|
| 5xx at RCPT or DATA                             | `bounce`  | records a hard bounce, suppresses address |
| 5xx at MAIL FROM (our sender refused)           | `failed`  | records the failure (counts to auto-pause)|
| connection lost before DATA                     | `retry`   | re-queues it and slows the relay (session)|
| connection lost during DATA (no reply)          | `unknown` | reports it, never resends it silently     |
| cannot connect / greet / log in                 | `RelayDown` / `AuthError`: the whole fan-out waits |
"""

from __future__ import annotations

import asyncio
from email.utils import parseaddr
from pathlib import Path
from typing import ClassVar, Literal, cast

import aiosmtplib
from aiosmtplib import (
    SMTPAuthenticationError,
    SMTPConnectError,
    SMTPRecipientRefused,
    SMTPResponseException,
    SMTPSenderRefused,
    SMTPServerDisconnected,
    SMTPStatus,
    SMTPTimeoutError,
)
from pydantic import Field, SecretStr, field_validator

from drainage.channel import (
    ChannelOptions,
    Duration,
    Gate,
    Limits,
    MailChannel,
    MailOutcome,
    MailSession,
    MailSettings,
    parse_duration,
    parse_rate,
)
from drainage.errors import AuthError, RelayDown

SESSION_CODES = frozenset({421, 454})
"""4xx replies that concern the session or the relay wherever they come (421 closing, 454 TLS/auth/throttling)."""


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


class EmailChannel(MailChannel):
    """Mails a post to opted-in subscribers through one SMTP relay (the fan-out is the dispatcher's)."""

    type = "email"
    Options: ClassVar[type[ChannelOptions]] = EmailOptions
    limits = Limits(max_length=None, counting="chars", media=True)

    def __init__(self, name: str, options: ChannelOptions, *, base_dir: Path | None = None) -> None:
        super().__init__(name, options, base_dir=base_dir)
        self._opts = cast(EmailOptions, options)
        self._sessions: list[SmtpSession] = []

    def mail_settings(self) -> MailSettings:
        o = self._opts
        return MailSettings(
            from_address=o.from_address, reply_to=o.reply_to, lists=tuple(o.lists), connections=o.connections,
            in_flight=o.in_flight, rate=o.rate, window=o.window, max_attempts=o.max_attempts,
            retry_backoff=parse_duration(o.retry_backoff).total_seconds(),
            retry_backoff_max=parse_duration(o.retry_backoff_max).total_seconds(),
            pause_failure_rate=o.pause_failure_rate, pause_min_sample=o.pause_min_sample,
            message_id_domain=o.message_id_domain)

    def open_session(self) -> MailSession:
        session = SmtpSession(self._opts)
        self._sessions.append(session)
        return session

    async def close(self) -> None:
        await asyncio.gather(*(session.close() for session in self._sessions))


class SmtpSession(MailSession):
    """One reusable SMTP session; reconnects when the relay closed it."""

    def __init__(self, options: EmailOptions) -> None:
        self.options = options
        self.client: aiosmtplib.SMTP | None = None

    async def _ensure(self) -> aiosmtplib.SMTP:
        if self.client is not None and self.client.is_connected:
            return self.client
        s = self.options
        client = aiosmtplib.SMTP(hostname=s.host, port=s.port, use_tls=s.security == "tls",
                                 start_tls=True if s.security == "starttls" else False if s.security == "none"
                                 else None, validate_certs=s.validate_certs,
                                 timeout=parse_duration(s.timeout).total_seconds())
        try:
            await client.connect()
            if client.last_ehlo_response is None and client.last_helo_response is None:
                await client.ehlo()  # MAIL goes through execute_command, which does not greet by itself
            if s.username:
                await client.login(s.username, s.password.get_secret_value() if s.password else "")
        except SMTPAuthenticationError as exc:
            await _quietly_close(client)
            raise AuthError(f"the relay {s.host}:{s.port} refused the login ({exc.code})") from None
        except (SMTPConnectError, SMTPTimeoutError, SMTPServerDisconnected, SMTPResponseException, OSError) as exc:
            await _quietly_close(client)
            raise RelayDown(f"cannot reach the relay {s.host}:{s.port}: {exc.__class__.__name__}") from None
        self.client = client
        return client

    async def send(self, sender: str, recipient: str, message: bytes, gate: Gate | None = None) -> MailOutcome:
        """One SMTP transaction (MAIL, RCPT, DATA) for one recipient (see `MailSession.send`)."""
        client = await self._ensure()
        allowed = gate() if gate is not None else None
        phase = "MAIL"
        try:
            # MAIL and RCPT through execute_command: the addresses were validated and normalised at import, and
            # aiosmtplib's mail()/rcpt() would parse each one again with email.utils (a fifth of a message's cost)
            reply = await client.execute_command(b"MAIL", b"FROM:<" + sender.encode("ascii") + b">")
            if reply.code != SMTPStatus.completed:
                raise SMTPSenderRefused(reply.code, reply.message, sender)
            phase = "RCPT"
            reply = await client.execute_command(b"RCPT", b"TO:<" + recipient.encode("ascii") + b">")
            if reply.code not in (SMTPStatus.completed, SMTPStatus.will_forward):
                raise SMTPRecipientRefused(reply.code, reply.message, recipient)
            if allowed is not None and not await allowed:
                await self._reset(0)
                return MailOutcome("withdrawn", None, "not sent: this sender no longer holds the recipient")
            phase = "DATA"
            await client.data(message)
        except SMTPResponseException as exc:
            await self._reset(exc.code)
            text = f"{exc.code} at {phase}: {_short(exc.message)}"
            if 400 <= exc.code < 500:
                return MailOutcome("retry", exc.code, text, session=phase == "MAIL" or exc.code in SESSION_CODES)
            return MailOutcome("failed" if phase == "MAIL" else "bounce", exc.code, text)
        except (SMTPServerDisconnected, SMTPTimeoutError, OSError) as exc:
            await self.close()
            if phase == "DATA":
                return MailOutcome("unknown", None, f"connection lost during DATA ({exc.__class__.__name__}): "
                                                    "the relay may have accepted the message")
            return MailOutcome("retry", None, f"connection lost at {phase} ({exc.__class__.__name__})", session=True)
        return MailOutcome("sent", 250)

    async def _reset(self, code: int) -> None:
        if code == 421 or self.client is None:  # 421: the relay is closing the session
            await self.close()
            return
        try:
            await self.client.rset()
        except (SMTPResponseException, SMTPServerDisconnected, SMTPTimeoutError, OSError):
            await self.close()

    async def close(self) -> None:
        client, self.client = self.client, None
        if client is not None:
            await _quietly_close(client)


async def _quietly_close(client: aiosmtplib.SMTP) -> None:
    try:
        if client.is_connected:
            await client.quit()
    except (SMTPResponseException, SMTPServerDisconnected, SMTPTimeoutError, OSError):
        client.close()


def _short(message: str) -> str:
    return " ".join(str(message).split())[:300]
