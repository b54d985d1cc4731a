"""Code -> redirect target, from memory when possible: links never change once written, so a hit is final.

The Location header is prepared once per link (non-ASCII made ASCII, fragment split off), so a redirect only
appends the click id. Unknown codes are remembered for a few seconds, so a scan of random codes cannot hammer
the database, while a link planned a moment ago is found soon after.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote, urlsplit, urlunsplit

from sqlalchemy import Engine, select

from drainage.links import host_key
from drainage.store.models import Link

NEGATIVE_TTL = 3.0
"""Seconds an unknown code is answered from memory before the database is asked again."""

_SAFE = "!#$&'()*+,/:;=?@[]~%-._"  # reserved and unreserved characters; '%' keeps existing escapes as they are


@dataclass(frozen=True, slots=True)
class Target:
    """A redirect target split where the click id goes: before the fragment, after the query."""

    head: str
    joiner: str
    fragment: str

    def with_param(self, name: str, value: str) -> str:
        return f"{self.head}{self.joiner}{name}={value}{self.fragment}"


def prepare(url: str) -> Target:
    """Split `url` for appending a parameter; percent-encode anything that is not safe in a header."""
    parts = urlsplit(url)
    host = host_key(parts.hostname or "")
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    head = urlunsplit((parts.scheme, netloc, quote(parts.path, safe=_SAFE) or "/", quote(parts.query, safe=_SAFE),
                       ""))
    fragment = "#" + quote(parts.fragment, safe=_SAFE) if parts.fragment else ""
    if not parts.query:
        joiner = "?"
        head = head.rstrip("?")
    else:
        joiner = "" if head.endswith("&") else "&"
    return Target(head, joiner, fragment)


class LinkCache:
    """Targets by code, loaded from the links table on a miss (in a worker thread, off the event loop)."""

    def __init__(self, engine: Engine, capacity: int = 200_000) -> None:
        self.engine = engine
        self.capacity = capacity
        self._known: dict[str, Target] = {}
        self._unknown: dict[str, float] = {}
        self.cached: Callable[[str], Target | None] = self._known.get
        """The target of `code` if it is in memory, else None (no I/O)."""

    async def lookup(self, code: str) -> Target | None:
        """The target of `code`, or None when no such link exists."""
        target = self._known.get(code)
        if target is not None:
            return target
        seen = self._unknown.get(code)
        if seen is not None and time.monotonic() - seen < NEGATIVE_TTL:
            return None
        url = await asyncio.to_thread(self._load, code)
        if url is None:
            if len(self._unknown) >= self.capacity:
                self._unknown.clear()
            self._unknown[code] = time.monotonic()
            return None
        self._unknown.pop(code, None)
        if len(self._known) >= self.capacity:
            del self._known[next(iter(self._known))]
        target = self._known[code] = prepare(url)
        return target

    def _load(self, code: str) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(select(Link.target).where(Link.code == code)).scalar_one_or_none()  # type: ignore[arg-type]
