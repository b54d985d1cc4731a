"""Pseudonymous visitor ids: a keyed hash of (IP, user agent, day). The IP address itself is never stored.

The key comes from `tracker.visitor_key`, or is a random key created once in the database (so every tracker
sharing the database counts a visitor the same way). Including the day means the same person on two days gets
two unrelated ids: daily unique visitors, and nothing that follows someone across days.
"""

from __future__ import annotations

import hashlib
from datetime import date

from sqlalchemy import Engine

from drainage.store.secrets import stored_secret

KEY_SETTING = "tracker.visitor_key"


def visitor_key(engine: Engine, configured: str | None) -> bytes:
    """The configured key, else the database's (created at first use, race-free across processes)."""
    if configured:
        return configured.encode()
    return bytes.fromhex(stored_secret(engine, KEY_SETTING))


def visitor_id(key: bytes, ip: str, user_agent: str, day: date) -> str:
    """32 hex characters that identify (IP, user agent) for one day and cannot be turned back into an IP.

    BLAKE2b in keyed mode is a MAC by design (RFC 7693) and four times faster than HMAC-SHA256 here.
    """
    return VisitorHasher(key).visitor(ip, user_agent, day.isoformat())


class VisitorHasher:
    """`visitor_id` for the request path: the keyed hash state is prepared once and copied per click."""

    def __init__(self, key: bytes) -> None:
        self._keyed = hashlib.blake2b(key=key[:64], digest_size=16)

    def visitor(self, ip: str, user_agent: str, day: str) -> str:
        """The same value as `visitor_id(key, ip, user_agent, date.fromisoformat(day))`."""
        h = self._keyed.copy()
        h.update(f"{day}\x1f{ip}\x1f{user_agent}".encode(errors="replace"))
        return h.hexdigest()
