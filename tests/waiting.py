"""One way to wait in tests: poll a predicate until it holds, with a deadline and a message that says what failed.

    written = eventually(lambda: recorder.written == 5, what="the batch of five written")
    await eventually_async(lambda: fake.received("telegram", "/getMe"), timeout=30, what="the call to getMe")

The predicate's last value is returned (so a test can assert on it) and shown when the deadline passes. The
deadlines are generous on purpose: they bound a hang on a loaded two-core runner, they measure nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Generator
from typing import TypeVar

T = TypeVar("T")


def _polls(predicate: Callable[[], T], timeout: float, what: str | None) -> Generator[None, None, T]:
    """Call `predicate` until it returns something true (the generator's value), pausing (yielding) between
    calls; raise an AssertionError naming `what` and the last value once `timeout` seconds have passed."""
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() >= deadline:
            name = what or getattr(predicate, "__qualname__", repr(predicate))
            raise AssertionError(f"timed out after {timeout:g} s waiting for {name} (last value: {value!r})")
        yield
    return value


def eventually(predicate: Callable[[], T], *, timeout: float = 60.0, interval: float = 0.02,
               what: str | None = None) -> T:
    """Call `predicate` every `interval` seconds until it returns something true; fail after `timeout`."""
    polls = _polls(predicate, timeout, what)
    try:
        while True:
            next(polls)
            time.sleep(interval)
    except StopIteration as done:
        return done.value


async def eventually_async(predicate: Callable[[], T], *, timeout: float = 60.0, interval: float = 0.02,
                           what: str | None = None) -> T:
    """`eventually` inside an event loop: the loop keeps running between polls."""
    polls = _polls(predicate, timeout, what)
    try:
        while True:
            next(polls)
            await asyncio.sleep(interval)
    except StopIteration as done:
        return done.value
