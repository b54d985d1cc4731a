"""When a campaign posts: cron, intervals and fixed times in a time zone, correct across DST changes.

Rules (the ones cron users expect, documented in the README):

- Cron expressions match local wall-clock time (standard 5-field cron, Sunday = 0 or 7).
  A local time skipped by a spring-forward change fires at the same offset after the change (02:30 -> 03:30),
  once. In a repeated fall-back hour, a cron whose hour field is fixed fires once (the first occurrence);
  one whose hour field is a wildcard (``*``, ``*/2``) fires in both occurrences, since it is about elapsed time.
- ``every:`` in minutes or hours counts real elapsed time from the anchor; in whole days or weeks it keeps the
  anchor's local time of day.
- ``at:`` fixed local datetimes; a skipped time fires after the change, a repeated one fires once.

Every slot is an aware UTC datetime, in whole seconds.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from croniter import CroniterBadDateError, croniter

from drainage.units import parse_duration as parse_duration  # where most callers look for it

DEFAULT_ANCHOR = date(2024, 1, 1)


def check_cron(expr: str) -> str:
    """Accept a standard 5-field cron expression or an @alias; raise ValueError explaining the form."""
    expr = " ".join(str(expr).split())
    aliases = {"@hourly", "@daily", "@weekly", "@monthly", "@yearly", "@annually", "@midnight"}
    if expr in aliases:
        return expr
    if len(expr.split(" ")) != 5 or not croniter.is_valid(expr):
        raise ValueError(f"'{expr}' is not a valid cron expression: expected 5 fields "
                         "'minute hour day-of-month month day-of-week', such as '0 9 * * 1-5'")
    try:
        croniter(expr, datetime.combine(DEFAULT_ANCHOR, time())).get_next(datetime)
    except CroniterBadDateError:
        raise ValueError(f"'{expr}' is a cron expression that never matches (a day such as February 30)") from None
    return expr


def wall_to_instants(wall: datetime, tz: ZoneInfo, *, both_on_repeat: bool) -> list[datetime]:
    """UTC instants at which the naive local time `wall` happens in `tz` (see module rules)."""
    first = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    second = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    if first == second:
        return [first]
    exists = first.astimezone(tz).replace(tzinfo=None) == wall
    if not exists:  # skipped by a spring-forward change: fold=0 reads it with the old offset, i.e. after the jump
        return [max(first, second)]
    return sorted({first, second}) if both_on_repeat else [min(first, second)]


class Rule:
    """One schedule rule; yields UTC slots in [start, end)."""

    def slots(self, start: datetime, end: datetime) -> Iterator[datetime]:
        raise NotImplementedError


@dataclass(frozen=True)
class CronRule(Rule):
    expr: str
    tz: ZoneInfo

    def slots(self, start: datetime, end: datetime) -> Iterator[datetime]:
        fields = self.expr.split(" ")  # an @alias fixes the hour, except '@hourly' ('0 * * * *')
        wildcard_hour = self.expr == "@hourly" or (len(fields) == 5 and fields[1].startswith("*"))
        # walk local wall-clock times from a little before `start` to a little after `end`: around a DST change
        # the instants are not in wall-clock order (a repeated hour's two occurrences, a skipped time moved later)
        margin = timedelta(hours=3)
        wall = (start.astimezone(self.tz) - margin).replace(tzinfo=None, second=0, microsecond=0)
        last = (end.astimezone(self.tz) + margin).replace(tzinfo=None)
        it = croniter(self.expr, wall - timedelta(minutes=1))
        found: list[datetime] = []
        while (wall := it.get_next(datetime)) <= last:
            found += (i for i in wall_to_instants(wall, self.tz, both_on_repeat=wildcard_hour) if start <= i < end)
        yield from sorted(found)


@dataclass(frozen=True)
class IntervalRule(Rule):
    every: timedelta
    anchor: datetime  # naive local time
    tz: ZoneInfo

    @property
    def calendar(self) -> bool:
        return self.every % timedelta(days=1) == timedelta()

    def slots(self, start: datetime, end: datetime) -> Iterator[datetime]:
        if self.calendar:
            yield from self._calendar_slots(start, end)
            return
        origin = wall_to_instants(self.anchor, self.tz, both_on_repeat=False)[0]
        steps = max(0, -(-(start - origin) // self.every))
        slot = origin + steps * self.every
        while slot < end:
            yield slot
            slot += self.every

    def _calendar_slots(self, start: datetime, end: datetime) -> Iterator[datetime]:
        days = self.every.days
        first_day = start.astimezone(self.tz).date() - timedelta(days=1)
        offset = (first_day - self.anchor.date()).days
        day = first_day + timedelta(days=(-offset) % days)
        while True:
            instant = wall_to_instants(datetime.combine(day, self.anchor.time()), self.tz,
                                       both_on_repeat=False)[0]
            if instant >= end:
                return
            if instant >= start and day >= self.anchor.date():
                yield instant
            day += timedelta(days=days)


@dataclass(frozen=True)
class FixedRule(Rule):
    at: datetime  # naive local, or aware
    tz: ZoneInfo

    def slots(self, start: datetime, end: datetime) -> Iterator[datetime]:
        if self.at.tzinfo is not None:
            instant = self.at.astimezone(UTC)
        else:
            instant = wall_to_instants(self.at, self.tz, both_on_repeat=False)[0]
        if start <= instant < end:
            yield instant


def merge_slots(rules: Iterable[Rule], start: datetime, end: datetime) -> list[datetime]:
    """All slots of all rules in [start, end), sorted, each instant once."""
    found: set[datetime] = set()
    for rule in rules:
        found.update(s.replace(microsecond=0) for s in rule.slots(start, end))
    return sorted(s for s in found if start <= s < end)


def anchor_of(start: date | datetime | None) -> datetime:
    """Interval anchor: the campaign's start, else midnight of 2024-01-01 (local, naive)."""
    if isinstance(start, datetime):
        return start.replace(tzinfo=None)
    return datetime.combine(start or DEFAULT_ANCHOR, time())


def parse_clock_range(text: str) -> tuple[time, time]:
    """'22:00-08:00' -> (22:00, 08:00). Raises ValueError with the expected form."""
    match = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*", str(text))
    if match:
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        if h1 < 24 and (h2 < 24 or (h2, m2) == (24, 0)) and m1 < 60 and m2 < 60:
            return time(h1, m1), (time.max if h2 == 24 else time(h2, m2))  # 24:00: to the end of the day
    raise ValueError(f"'{text}' is not a time range: expected 'HH:MM-HH:MM', such as '22:00-08:00'")


def in_clock_range(moment: time, span: tuple[time, time]) -> bool:
    """True when a local time of day falls in [from, to), ranges may wrap past midnight."""
    begin, finish = span
    if begin <= finish:
        return begin <= moment < finish
    return moment >= begin or moment < finish
