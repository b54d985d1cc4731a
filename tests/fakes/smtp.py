"""A real SMTP server (aiosmtpd) for tests: records what it accepted, and answers scripted replies.

`SmtpRecorder.rcpt_replies[address]` / `data_replies[address]` hold replies to give, in order, the next times
that address is sent to at RCPT / at the end of DATA (e.g. "451 4.7.1 try later", "550 5.1.1 no such user");
when none is left the message is accepted. Run as a module, it is a separate sink process that appends one
JSON line per accepted message to a file (for crash tests, where the sender is killed, not the server).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Received:
    sender: str
    recipient: str
    data: bytes

    @property
    def message(self) -> EmailMessage:
        return message_from_bytes(self.data, policy=policy.default)  # type: ignore[return-value]


@dataclass
class SmtpRecorder:
    """The aiosmtpd handler."""

    received: list[Received] = field(default_factory=list)
    rcpt_replies: dict[str, list[str]] = field(default_factory=dict)
    data_replies: dict[str, list[str]] = field(default_factory=dict)
    attempts: list[tuple[str, str]] = field(default_factory=list)  # (address, reply) of every scripted reply
    sink: Any = None
    delay: float = 0.0
    """Seconds each DATA waits before its reply (a slow relay: widens the window a crash can land in)."""

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: Any) -> str:
        replies = self.rcpt_replies.get(address)
        if replies:
            reply = replies.pop(0)
            self.attempts.append((address, reply))
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        recipient = envelope.rcpt_tos[0]
        replies = self.data_replies.get(recipient)
        if replies:
            reply = replies.pop(0)
            self.attempts.append((recipient, reply))
            return reply
        if self.delay:
            await asyncio.sleep(self.delay)
        data = envelope.original_content or envelope.content
        if self.sink is not None:
            message = message_from_bytes(data, policy=policy.default)
            self.sink.write(json.dumps({"to": recipient, "message_id": message["Message-ID"]}) + "\n")
            self.sink.flush()
        else:
            self.received.append(Received(envelope.mail_from, recipient, data))
        return "250 2.0.0 accepted"

    def to(self, address: str) -> list[Received]:
        return [r for r in self.received if r.recipient == address]


@contextmanager
def smtp_server(recorder: SmtpRecorder | None = None) -> Iterator[tuple[SmtpRecorder, int]]:
    """A real SMTP server on 127.0.0.1 (its own thread and loop) for the duration of the block."""
    recorder = recorder or SmtpRecorder()
    port = free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=port, ready_timeout=10)
    controller.start()
    try:
        yield recorder, port
    finally:
        controller.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="An SMTP sink that appends one JSON line per message.")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--delay", type=float, default=0.0, help="Seconds each DATA waits before its reply.")
    args = parser.parse_args()
    with args.out.open("a", encoding="utf-8") as sink:
        controller = Controller(SmtpRecorder(sink=sink, delay=args.delay), hostname="127.0.0.1", port=args.port,
                                ready_timeout=10)
        controller.start()
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
        finally:
            controller.stop()


if __name__ == "__main__":
    main()
