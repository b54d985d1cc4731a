"""Durations ('6h', '1h30m') and rates ('20/minute', '50/15m') as config.yaml, campaigns and plugin options
write them. Part of the channel interface: a plugin checks its own options with these (see `drainage.channel`).

Every duration option of a config, campaign or channel model is declared with `Duration` (any positive
duration) or `duration(...)` (with bounds and the message a marketer sees when a value is out of them). The
field keeps the text, normalised ('1H 30m' -> '1h30m'); `parse_duration` turns it into a `timedelta` where it
is used.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Any

from pydantic import AfterValidator

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


def _checker(minimum: timedelta | None, maximum: timedelta | None, message: str) -> Callable[[str], str]:
    def check(text: str) -> str:
        length = parse_duration(text)
        if (minimum is not None and length < minimum) or (maximum is not None and length > maximum):
            raise ValueError(message.format(value=text))
        return "".join(text.split()).lower()

    return check


def duration(*, minimum: timedelta | None = None, maximum: timedelta | None = None,
             message: str = "'{value}' is out of range") -> Any:
    """A duration field between `minimum` and `maximum` (inclusive); `message` ({value}: the text) otherwise."""
    return Annotated[str, AfterValidator(_checker(minimum, maximum, message))]


Duration = Annotated[str, AfterValidator(_checker(None, None, ""))]
"""Any positive duration, kept as normalised text."""
