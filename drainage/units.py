"""Durations ('6h', '1h30m') and rates ('20/minute', '50/15m') as config.yaml, campaigns and plugin options
write them. Part of the channel interface: a plugin checks its own options with these (see `drainage.channel`).
"""

from __future__ import annotations

import re
from datetime import timedelta

_DURATION = re.compile(r"(\d+)\s*(w|d|h|min|ms|m|s)", re.IGNORECASE)  # "min", "ms" before "m"
_UNITS = {"w": timedelta(weeks=1), "d": timedelta(days=1), "h": timedelta(hours=1),
          "m": timedelta(minutes=1), "min": timedelta(minutes=1), "s": timedelta(seconds=1),
          "ms": timedelta(milliseconds=1)}


def parse_duration(text: str) -> timedelta:
    """'6h', '1h30m', '2d', '1w', '90s' -> timedelta. Raises ValueError with the expected form."""
    cleaned = str(text).strip().replace(" ", "")
    pos, total = 0, timedelta()
    for match in _DURATION.finditer(cleaned):
        if match.start() != pos:
            break
        try:
            total += int(match.group(1)) * _UNITS[match.group(2).lower()]
        except (OverflowError, ValueError):  # more days than a timedelta holds
            raise ValueError(f"'{text}' is too long a duration") from None
        pos = match.end()
    if not cleaned or pos != len(cleaned) or total <= timedelta():
        raise ValueError(f"'{text}' is not a duration: expected a number and a unit, such as 30m, 6h, 1d or 1w")
    return total


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
