"""Talking to the SMTP relay (aiosmtplib): connections with STARTTLS/TLS and auth, one message a transaction,
and what each reply means for the recipient.

| what happened                                   | outcome   | the fan-out then                          |
|-------------------------------------------------|-----------|-------------------------------------------|
| 250 after DATA                                  | `sent`    | records it                                |
| 4xx at RCPT or DATA (450, 451, 452: one mailbox)| `retry`   | re-queues the recipient with its backoff  |
| 421 anywhere, 454, any 4xx at MAIL FROM         | `retry`   | re-queues it and slows the relay (session)|
| 5xx at RCPT or DATA                             | `bounce`  | records a hard bounce, suppresses address |
| 5xx at MAIL FROM (our sender refused)           | `failed`  | records the failure (counts to auto-pause)|
| connection lost before DATA                     | `retry`   | re-queues it and slows the relay (session)|
| connection lost during DATA (no reply)          | `unknown` | reports it, never resends it silently     |
| cannot connect / greet / log in                 | relay-level error: the whole fan-out waits      |

A transaction is opened only on a ready session; `send(..., gate=...)` calls `gate` once the session is open
and awaits its answer before DATA, so the caller can record "its bytes may now reach the relay" (and withdraw
the message when the answer is False).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

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

from drainage.errors import AuthError, TransientError


@dataclass(frozen=True)
class RelaySettings:
    """How to reach one relay (from an email channel's options)."""

    host: str
    port: int
    security: str = "starttls"  # starttls | tls | none
    username: str | None = None
    password: str | None = None
    timeout: float = 30.0
    validate_certs: bool = True


@dataclass(frozen=True)
class Outcome:
    """What the relay said about one recipient."""

    kind: str  # sent | retry | bounce | failed | unknown | withdrawn (the gate said no: nothing was sent)
    code: int | None = None
    message: str = ""
    session: bool = False
    """A session- or relay-level signal (421, 454, a 4xx at MAIL FROM, a lost connection): slows the relay.
    A 4xx at RCPT or after DATA concerns one mailbox (greylisting, a full mailbox): only that recipient waits."""

    @property
    def throttled(self) -> bool:
        return self.kind == "retry" and self.session

SESSION_CODES = frozenset({421, 454})
"""4xx replies that concern the session or the relay wherever they come (421 closing, 454 TLS/auth/throttling)."""


class RelayDown(TransientError):
    """The relay cannot be reached (or dropped every attempt): the fan-out waits and resumes later."""


class Connection:
    """One reusable SMTP session; reconnects when the relay closed it."""

    def __init__(self, settings: RelaySettings) -> None:
        self.settings = settings
        self.client: aiosmtplib.SMTP | None = None

    async def _ensure(self) -> aiosmtplib.SMTP:
        if self.client is not None and self.client.is_connected:
            return self.client
        s = self.settings
        client = aiosmtplib.SMTP(hostname=s.host, port=s.port, use_tls=s.security == "tls",
                                 start_tls=True if s.security == "starttls" else False if s.security == "none"
                                 else None, validate_certs=s.validate_certs, timeout=s.timeout)
        try:
            await client.connect()
            if client.last_ehlo_response is None and client.last_helo_response is None:
                await client.ehlo()  # MAIL goes through execute_command, which does not greet by itself
            if s.username:
                await client.login(s.username, s.password or "")
        except SMTPAuthenticationError as exc:
            await _quietly_close(client)
            raise AuthError(f"the relay {s.host}:{s.port} refused the login ({exc.code})") from None
        except (SMTPConnectError, SMTPTimeoutError, SMTPServerDisconnected, SMTPResponseException, OSError) as exc:
            await _quietly_close(client)
            raise RelayDown(f"cannot reach the relay {s.host}:{s.port}: {exc.__class__.__name__}") from None
        self.client = client
        return client

    async def send(self, sender: str, recipient: str, message: bytes,
                   gate: Callable[[], Awaitable[bool]] | None = None) -> Outcome:
        """One SMTP transaction (MAIL, RCPT, DATA) for one recipient. Raises RelayDown / AuthError only when
        no session can be opened (then `gate` was not called). `gate` is called once the session is ready; DATA
        waits for its answer (False: the transaction is reset and the outcome is `withdrawn`)."""
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
                return Outcome("withdrawn", None, "not sent: this sender no longer holds the recipient")
            phase = "DATA"
            await client.data(message)
        except SMTPResponseException as exc:
            await self._reset(exc.code)
            text = f"{exc.code} at {phase}: {_short(exc.message)}"
            if 400 <= exc.code < 500:
                return Outcome("retry", exc.code, text, session=phase == "MAIL" or exc.code in SESSION_CODES)
            return Outcome("failed" if phase == "MAIL" else "bounce", exc.code, text)
        except (SMTPServerDisconnected, SMTPTimeoutError, OSError) as exc:
            await self.close()
            if phase == "DATA":
                return Outcome("unknown", None, f"connection lost during DATA ({exc.__class__.__name__}): the relay "
                                                "may have accepted the message")
            return Outcome("retry", None, f"connection lost at {phase} ({exc.__class__.__name__})", session=True)
        return Outcome("sent", 250)

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
