"""Click ids: unguessable, URL-safe, and in time order, like a UUIDv7.

An id is 7 characters of the millisecond it was issued (a sortable base64 alphabet, so ids issued later sort
after earlier ones) followed by 16 URL-safe characters from 12 bytes of the operating system's CSPRNG (96 bits,
like `secrets.token_urlsafe(12)`), drawn from a pool refilled 4,096 at a time (one system call per pool, not one
per redirect).

Why the time first: `clicks.click_id` is a unique index. Random keys scatter each batch of inserts over the whole
index, so every click dirties its own page (and a page of WAL); keys in time order land on the index's last
pages. bench/tracker.py measured the click writer at 19 µs a click with random ids and 8 with ordered ones.
"""

from __future__ import annotations

import base64
import os

POOL = 4096
"""Random parts made per refill."""
SORTABLE = "-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
"""The 64 URL-safe characters in ASCII order: a number written with them sorts like the number."""
TIME_CHARS = 7
"""Characters of the millisecond prefix (42 bits: good until the year 2109)."""
LENGTH = TIME_CHARS + 16
"""Characters in a click id."""


def time_prefix(milliseconds: int) -> str:
    """`milliseconds` since the epoch as TIME_CHARS sortable characters."""
    chars = []
    for _ in range(TIME_CHARS):
        milliseconds, digit = divmod(milliseconds, 64)
        chars.append(SORTABLE[digit])
    return "".join(reversed(chars))


class ClickIds:
    """Click ids for the redirect path (one event loop: not shared between threads)."""

    def __init__(self) -> None:
        self._pool: list[str] = []
        self._millisecond = -1
        self._prefix = ""

    def next(self, now: float) -> str:
        """A new id for a click at `now` (seconds since the epoch)."""
        millisecond = int(now * 1000)
        if millisecond != self._millisecond:
            self._millisecond, self._prefix = millisecond, time_prefix(millisecond)
        if not self._pool:
            text = base64.urlsafe_b64encode(os.urandom(12 * POOL)).decode("ascii")
            self._pool = [text[i:i + 16] for i in range(0, 16 * POOL, 16)]
        return self._prefix + self._pool.pop()
