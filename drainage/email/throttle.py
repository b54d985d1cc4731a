"""Pacing a relay: a token bucket (messages per second) that slows down on throttling replies and recovers,
plus an optional sliding window (at most N messages per hour, or any period) shared by every fan-out of a relay,
plus, when `shared` is set, a limit every daemon on the database takes from (the relay's `rate` holds across
daemons instead of being multiplied by their number).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable

SLOW_FACTOR = 0.5
"""A throttling reply (421, 450, 451, 452, 454) halves the rate."""
RECOVERY = 1.02
"""Each accepted message brings the rate 2 % back towards its ceiling."""
FLOOR = 0.2
"""Never slower than one message every 5 s."""


class RelayPace:
    """Admits messages at the relay's pace; `acquire()` waits as long as needed."""

    def __init__(self, rate: float | None, window: tuple[int, float] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ceiling = rate
        self.rate = rate
        self.window = window
        self.clock = clock
        self.tokens = 1.0 if rate is None else max(1.0, rate)
        self.updated = clock()
        self.slowed = 0
        self._unlimited_at = 0.0
        self._recent: deque[float] = deque()  # send times inside the window (or the last second, for slow_down)
        self._lock = asyncio.Lock()
        self.shared: Callable[[], Awaitable[None]] | None = None
        """Waits until a limit shared with the other daemons lets one more message go (see `acquire`)."""

    def preload(self, sent_in_window: int) -> None:
        """Count messages already sent in the window (e.g. by an earlier run), as if sent just now."""
        now = self.clock()
        self._recent.extend([now] * sent_in_window)

    def _delay(self, now: float) -> float:
        delay = 0.0
        if self.rate is not None:
            self.tokens = min(max(1.0, self.rate), self.tokens + (now - self.updated) * self.rate)
            self.updated = now
            if self.tokens < 1:
                delay = (1 - self.tokens) / self.rate
        span = self.window[1] if self.window else 1.0
        while self._recent and self._recent[0] <= now - span:
            self._recent.popleft()
        if self.window and len(self._recent) >= self.window[0]:
            delay = max(delay, self._recent[0] + span - now)
        return delay

    async def acquire(self) -> None:
        if self.rate is None and self.window is None:  # unlimited: only remember the time, for slow_down
            now = self.clock()
            self._recent.append(now)
            while self._recent[0] <= now - 1:
                self._recent.popleft()
            return
        async with self._lock:
            while True:
                now = self.clock()
                delay = self._delay(now)
                if delay <= 0:
                    break
                await asyncio.sleep(delay)
            if self.shared is not None:
                await self.shared()
                now = self.clock()
            if self.rate is not None:
                self.tokens -= 1
            if self.window or self.rate is None:
                self._recent.append(now)

    def slow_down(self) -> None:
        """A throttling reply: halve the rate. An unlimited relay starts from what it managed in the last second
        (at least 100/s) and goes back to unlimited once it has recovered to four times that."""
        self.slowed += 1
        now = self.clock()
        if self.rate is None:
            last_second = sum(1 for moment in self._recent if moment > now - 1)
            self.rate = max(100.0, float(last_second))
            self._unlimited_at = self.rate * 4
        self.rate = max(FLOOR, self.rate * SLOW_FACTOR)
        self.tokens = min(self.tokens, 1.0)

    def accepted(self) -> None:
        """A message went through: recover towards the ceiling."""
        if self.rate is None:
            return
        ceiling = self.ceiling if self.ceiling is not None else self._unlimited_at
        if self.rate < ceiling:
            self.rate = min(ceiling, self.rate * RECOVERY)
        elif self.ceiling is None:
            self.rate = None  # recovered: unlimited again
