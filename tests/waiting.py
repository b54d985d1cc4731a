"""One way to wait in tests: poll a predicate until it holds, with a deadline and a message that says what failed.

    written = eventually(lambda: recorder.written == 5, what="the batch of five written")
    await eventually_async(lambda: fake.received("telegram", "/getMe"), timeout=30, what="the call to getMe")

The predicate's last value is returned (so a test can assert on it) and shown when the deadline passes. The
deadlines are generous on purpose: they bound a hang on a loaded two-core runner, they measure nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def _failure(predicate: Callable[[], object], what: str | None, timeout: float, last: object) -> AssertionError:
    name = what or getattr(predicate, "__qualname__", repr(predicate))
    return AssertionError(f"timed out after {timeout:g} s waiting for {name} (last value: {last!r})")


def eventually(predicate: Callable[[], T], *, timeout: float = 60.0, interval: float = 0.02,
               what: str | None = None) -> T:
    """Call `predicate` every `interval` seconds until it returns something true; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise _failure(predicate, what, timeout, value)
        time.sleep(interval)


async def eventually_async(predicate: Callable[[], T], *, timeout: float = 60.0, interval: float = 0.02,
                           what: str | None = None) -> T:
    """`eventually` inside an event loop: the loop keeps running between polls."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise _failure(predicate, what, timeout, value)
        await asyncio.sleep(interval)
