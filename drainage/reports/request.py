"""What a report covers: a range of whole UTC days, optional campaign/channel filters, and a grouping.

Reports count whole UTC days because unique visitors are daily by design (the visitor id is a hash of IP, user
agent and UTC day) and the rollups reports read are daily: `--since 7d` is today and the 6 days before,
`--since 36h` rounds up to 2 days, `--from 2026-11-01 --to 2026-11-30` is both days inclusive.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from drainage.schedule import parse_duration

GROUPINGS = ("channel", "campaign", "variant", "item", "day", "market")
"""What a report row can stand for. `variant` rows are (campaign, channel, variant); `item` rows (campaign, item)."""
DEFAULT_SINCE = "7d"
MAX_DAYS = 3660


class BadRequest(ValueError):
    """A report filter that cannot be understood; the message says what was expected."""


@dataclass(frozen=True)
class Period:
    """Whole UTC days from `first` to `last`, both included."""

    first: date
    last: date

    @property
    def start(self) -> datetime:
        """The first instant of the period (UTC)."""
        return datetime.combine(self.first, time(), UTC)

    @property
    def end(self) -> datetime:
        """The first instant after the period (UTC)."""
        return datetime.combine(self.last + timedelta(days=1), time(), UTC)

    @property
    def days(self) -> list[date]:
        return [self.first + timedelta(days=n) for n in range((self.last - self.first).days + 1)]

    def __str__(self) -> str:
        return f"{self.first.isoformat()} .. {self.last.isoformat()} (UTC days)"


@dataclass(frozen=True)
class ReportRequest:
    """Everything that selects and shapes one report."""

    period: Period
    by: str = "channel"
    campaigns: tuple[str, ...] = field(default_factory=tuple)
    channels: tuple[str, ...] = field(default_factory=tuple)
    top: int = 10
    markets: tuple[str, ...] = field(default_factory=tuple)
    """Only these markets' posts and links ('-' or '' stands for campaigns without markets)."""


def parse_request(*, since: str | None = None, start: str | None = None, end: str | None = None,
                  campaigns: tuple[str, ...] | list[str] = (), channels: tuple[str, ...] | list[str] = (),
                  by: str = "channel", top: int = 10, today: date | None = None,
                  markets: tuple[str, ...] | list[str] = ()) -> ReportRequest:
    """Build a request from the CLI's or the web's strings; BadRequest explains what is wrong."""
    today = today or datetime.now(UTC).date()
    if by not in GROUPINGS:
        raise BadRequest(f"cannot group by '{by}': expected one of {', '.join(GROUPINGS)}")
    if not 1 <= top <= 1000:
        raise BadRequest(f"top must be between 1 and 1000, got {top}")
    if since and (start or end):
        raise BadRequest("give either --since or --from/--to, not both")
    if start or end:
        last = _day(end, "--to") if end else today
        first = _day(start, "--from") if start else last - timedelta(days=6)
    else:
        text = since or DEFAULT_SINCE
        try:
            length = parse_duration(text)
        except ValueError as exc:
            raise BadRequest(f"--since: {exc}") from None
        days = math.ceil(length / timedelta(days=1))
        if days > MAX_DAYS:
            raise BadRequest(f"--since: '{text}' is longer than {MAX_DAYS} days")
        first, last = today - timedelta(days=days - 1), today
    if first > last:
        raise BadRequest(f"the period starts ({first}) after it ends ({last})")
    if (last - first).days >= MAX_DAYS:
        raise BadRequest(f"the period is longer than {MAX_DAYS} days")
    return ReportRequest(Period(first, last), by, _names(campaigns), _names(channels), top,
                         tuple("" if m == "-" else m for m in _names(markets)))


def _day(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise BadRequest(f"{option}: '{text}' is not a day: expected YYYY-MM-DD, e.g. 2026-11-01") from None


def _names(values: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v.strip() for v in values if v and v.strip()))
