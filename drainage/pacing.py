"""Pacing sends: per-channel token buckets and retry backoff with jitter."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from drainage.schedule import parse_duration

_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*\s*[a-z]+)\s*$")
_PERIODS = {"second": "1s", "sec": "1s", "s": "1s", "minute": "1m", "min": "1m", "m": "1m", "hour": "1h",
            "h": "1h", "day": "1d", "d": "1d"}


def parse_rate(text: str) -> tuple[int, timedelta]:
    """'20/minute', '300/hour', '50/15m' -> (count, period). Raises ValueError with the expected form."""
    match = _RATE.match(str(text).lower())
    if match:
        count, period = int(match.group(1)), match.group(2).replace(" ", "")
        try:
            span = parse_duration(_PERIODS.get(period, period))
        except ValueError:
            span = None
        if count > 0 and span:
            return count, span
    raise ValueError(f"'{text}' is not a rate: expected 'N/period', such as '20/minute', '300/hour' or '50/15m'")


@dataclass
class TokenBucket:
    """At most `capacity` sends per `period`, refilled continuously; `blocked_until` honours Retry-After."""

    capacity: int
    period: timedelta
    tokens: float = field(init=False)
    updated: datetime | None = None
    blocked_until: datetime | None = None

    def __post_init__(self) -> None:
        self.tokens = float(self.capacity)

    def _refill(self, now: datetime) -> None:
        if self.updated is not None:
            rate = self.capacity / self.period.total_seconds()
            # rounded: a bucket of 1 per day must hold exactly 1 token again after a day, not 0.9999999999999999
            self.tokens = min(self.capacity, round(self.tokens + (now - self.updated).total_seconds() * rate, 9))
        self.updated = now

    def wait_time(self, now: datetime) -> float:
        """Seconds until a send may go (0: now)."""
        self._refill(now)
        blocked = (self.blocked_until - now).total_seconds() if self.blocked_until else 0.0
        missing = 0.0 if self.tokens >= 1 else (1 - self.tokens) * self.period.total_seconds() / self.capacity
        return max(0.0, blocked, missing)

    def take(self, now: datetime) -> None:
        self._refill(now)
        self.tokens -= 1

    def give_back(self) -> None:
        """Return the token of a send the platform refused to make (rate-limited): nothing was posted."""
        self.tokens = min(float(self.capacity), self.tokens + 1)

    def block(self, until: datetime) -> None:
        if self.blocked_until is None or until > self.blocked_until:
            self.blocked_until = until


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter: attempt n waits uniform(base*2^(n-1)/2, base*2^(n-1)), capped."""

    base: float
    cap: float
    rng: random.Random = field(default_factory=random.Random, compare=False)

    def delay(self, attempt: int) -> float:
        ceiling = min(self.cap, self.base * 2 ** max(0, attempt - 1))
        return self.rng.uniform(ceiling / 2, ceiling)
