"""Schedules: durations, cron checks, cron / interval / fixed rules across DST changes, quiet hours."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from functools import cache
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drainage.schedule import (
    CronRule,
    FixedRule,
    IntervalRule,
    anchor_of,
    check_cron,
    in_clock_range,
    merge_slots,
    parse_clock_range,
    parse_duration,
    wall_to_instants,
)

pytestmark = pytest.mark.pure  # no database: CI's PostgreSQL pass skips it

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
SYDNEY = ZoneInfo("Australia/Sydney")
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")  # a 30-minute DST shift
MIN = timedelta(minutes=1)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def local_day(tz: ZoneInfo, year: int, month: int, day: int) -> tuple[datetime, datetime]:
    """[local midnight, next local midnight) of a day, as UTC instants."""
    start = datetime(year, month, day, tzinfo=tz)
    return start.astimezone(UTC), (start + timedelta(days=1)).astimezone(UTC)


def hm(slots: list[datetime], tz: ZoneInfo) -> list[str]:
    """Slots as local 'MM-DD HH:MM+offset' (the offset tells the two occurrences of a repeated hour apart)."""
    return [s.astimezone(tz).strftime("%m-%d %H:%M%z") for s in slots]


# --- parse_duration -----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("6h", timedelta(hours=6)),
    ("1h30m", timedelta(minutes=90)),
    ("1h 30m", timedelta(minutes=90)),
    (" 2d ", timedelta(days=2)),
    ("1w", timedelta(weeks=1)),
    ("1w2d", timedelta(days=9)),
    ("1d12h", timedelta(hours=36)),
    ("90s", timedelta(seconds=90)),
    ("30min", timedelta(minutes=30)),
    ("1h15min", timedelta(minutes=75)),
    ("1min30s", timedelta(seconds=90)),
    ("6H", timedelta(hours=6)),
    ("30 m", timedelta(minutes=30)),
    ("0h5m", timedelta(minutes=5)),
])
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", " ", "h", "6", "6x", "0m", "0h0m", "-1h", "1.5h", "h6", "6hours", "1h-",
                                  "1m30", "abc", "6h!", "1 day"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration: expected a number and a unit, such as 30m, 6h"):
        parse_duration(text)


# --- check_cron ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("expr", "expected"), [
    ("0 9 * * 1-5", "0 9 * * 1-5"),
    ("  0  9 *\t* 1-5 ", "0 9 * * 1-5"),
    ("*/15 * * * *", "*/15 * * * *"),
    ("0 9 * * mon-fri", "0 9 * * mon-fri"),
    ("0 9 * * 7", "0 9 * * 7"),
    ("0 0 29 2 *", "0 0 29 2 *"),
    ("@daily", "@daily"),
    ("@hourly", "@hourly"),
    ("@weekly", "@weekly"),
])
def test_check_cron_accepts(expr: str, expected: str) -> None:
    assert check_cron(expr) == expected


@pytest.mark.parametrize("expr", ["", "0 9 * *", "0 9 * * * *", "0 0 9 * * * *", "61 * * * *", "* 24 * * *",
                                  "0 9 32 * *", "0 9 * 13 *", "0 9 * * 8", "every day", "@fortnightly",
                                  "0 0 30 2 *", "0 0 31 4 *"])
def test_check_cron_rejects(expr: str) -> None:
    with pytest.raises(ValueError, match="cron"):
        check_cron(expr)


# --- wall_to_instants ---------------------------------------------------------------------------------------

def test_wall_to_instants() -> None:
    # an ordinary time
    assert wall_to_instants(datetime(2024, 6, 1, 9, 0), BERLIN, both_on_repeat=True) == [utc(2024, 6, 1, 7, 0)]
    # skipped by spring-forward (02:00 -> 03:00): 02:30 happens as 03:30 CEST
    assert wall_to_instants(datetime(2024, 3, 31, 2, 30), BERLIN, both_on_repeat=True) == [utc(2024, 3, 31, 1, 30)]
    assert wall_to_instants(datetime(2024, 3, 10, 2, 0), NEW_YORK, both_on_repeat=False) == [utc(2024, 3, 10, 7, 0)]
    # repeated by fall-back: the first occurrence, or both in order
    assert wall_to_instants(datetime(2024, 10, 27, 2, 30), BERLIN, both_on_repeat=False) == [
        utc(2024, 10, 27, 0, 30)]
    assert wall_to_instants(datetime(2024, 10, 27, 2, 30), BERLIN, both_on_repeat=True) == [
        utc(2024, 10, 27, 0, 30), utc(2024, 10, 27, 1, 30)]
    assert wall_to_instants(datetime(2024, 11, 3, 1, 0), NEW_YORK, both_on_repeat=True) == [
        utc(2024, 11, 3, 5, 0), utc(2024, 11, 3, 6, 0)]
    # the edges of the changes
    assert wall_to_instants(datetime(2024, 10, 27, 3, 0), BERLIN, both_on_repeat=True) == [utc(2024, 10, 27, 2, 0)]
    assert wall_to_instants(datetime(2024, 3, 31, 3, 0), BERLIN, both_on_repeat=True) == [utc(2024, 3, 31, 1, 0)]
    assert wall_to_instants(datetime(2024, 3, 31, 1, 59), BERLIN, both_on_repeat=True) == [utc(2024, 3, 31, 0, 59)]


# --- cron across DST ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("tz", "start", "expected"), [
    # Berlin springs forward 2024-03-31 02:00 CET -> 03:00 CEST
    (BERLIN, utc(2024, 3, 29, 23), ["03-30 02:30+0100", "03-31 03:30+0200", "04-01 02:30+0200"]),
    # New York springs forward 2024-03-10 02:00 EST -> 03:00 EDT
    (NEW_YORK, utc(2024, 3, 9, 5), ["03-09 02:30-0500", "03-10 03:30-0400", "03-11 02:30-0400"]),
    # Sydney springs forward 2024-10-06 02:00 AEST -> 03:00 AEDT
    (SYDNEY, utc(2024, 10, 4, 14), ["10-05 02:30+1000", "10-06 03:30+1100", "10-07 02:30+1100"]),
])
def test_cron_in_spring_forward_gap_fires_once_after_the_change(tz, start, expected) -> None:
    slots = merge_slots([CronRule("30 2 * * *", tz)], start, start + timedelta(days=3))
    assert hm(slots, tz) == expected


def test_cron_gap_exact_instants() -> None:
    slots = merge_slots([CronRule("30 2 * * *", BERLIN)], utc(2024, 3, 30), utc(2024, 4, 2))
    assert slots == [utc(2024, 3, 30, 1, 30), utc(2024, 3, 31, 1, 30), utc(2024, 4, 1, 0, 30)]


@pytest.mark.parametrize(("tz", "expr", "start", "days", "expected"), [
    # New York falls back 2024-11-03 02:00 EDT -> 01:00 EST: 01:00-02:00 happens twice
    (NEW_YORK, "30 1 * * *", utc(2024, 11, 2, 4), 3, ["11-02 01:30-0400", "11-03 01:30-0400", "11-04 01:30-0500"]),
    # Berlin falls back 2024-10-27 03:00 CEST -> 02:00 CET: 02:00-03:00 happens twice
    (BERLIN, "30 2 * * *", utc(2024, 10, 25, 22), 3, ["10-26 02:30+0200", "10-27 02:30+0200", "10-28 02:30+0100"]),
    # Sydney falls back 2024-04-07 03:00 AEDT -> 02:00 AEST
    (SYDNEY, "30 2 * * *", utc(2024, 4, 5, 13), 3, ["04-06 02:30+1100", "04-07 02:30+1100", "04-08 02:30+1000"]),
    # a fixed hour range fires once per wall time too
    (NEW_YORK, "0,30 1-2 * * *", utc(2024, 11, 3, 4), 1,
     ["11-03 01:00-0400", "11-03 01:30-0400", "11-03 02:00-0500", "11-03 02:30-0500"]),
])
def test_cron_fixed_hour_in_repeated_hour_fires_once(tz, expr, start, days, expected) -> None:
    assert hm(merge_slots([CronRule(expr, tz)], start, start + timedelta(days=days)), tz) == expected


@pytest.mark.parametrize(("tz", "day", "hours"), [
    (NEW_YORK, (2024, 11, 3), 25),
    (BERLIN, (2024, 10, 27), 25),
    (SYDNEY, (2024, 4, 7), 25),
    (LORD_HOWE, (2024, 4, 7), 24.5),
    (NEW_YORK, (2024, 3, 10), 23),
    (BERLIN, (2024, 3, 31), 23),
    (SYDNEY, (2024, 10, 6), 23),
    (LORD_HOWE, (2024, 10, 6), 23.5),
    (BERLIN, (2024, 6, 1), 24),
])
def test_wildcard_hour_cron_counts_real_time_on_change_days(tz, day, hours) -> None:
    start, end = local_day(tz, *day)
    assert end - start == timedelta(hours=hours)
    slots = merge_slots([CronRule("*/30 * * * *", tz)], start, end)
    assert len(slots) == hours * 2
    assert slots[0] == start
    assert all(b - a == timedelta(minutes=30) for a, b in pairwise(slots))
    # the daemon asks for slots piece by piece: any split gives the same slots (the changes are before 05:00)
    for split in (start + k * timedelta(minutes=20) for k in range(1, 16)):
        assert merge_slots([CronRule("*/30 * * * *", tz)], start, split) + merge_slots(
            [CronRule("*/30 * * * *", tz)], split, end) == slots


def test_wildcard_hour_cron_fires_in_both_occurrences() -> None:
    slots = merge_slots([CronRule("15 * * * *", NEW_YORK)], utc(2024, 11, 3, 4), utc(2024, 11, 3, 8))
    assert hm(slots, NEW_YORK) == ["11-03 00:15-0400", "11-03 01:15-0400", "11-03 01:15-0500", "11-03 02:15-0500"]
    assert merge_slots([CronRule("15 * * * *", NEW_YORK)], utc(2024, 11, 3, 6), utc(2024, 11, 3, 7)) == [
        utc(2024, 11, 3, 6, 15)]


def test_hourly_alias_is_a_wildcard_hour() -> None:
    slots = merge_slots([CronRule("@hourly", NEW_YORK)], utc(2024, 11, 3, 4), utc(2024, 11, 3, 8))
    assert slots == [utc(2024, 11, 3, h) for h in range(4, 8)]
    slots = merge_slots([CronRule("0 * * * *", BERLIN)], utc(2024, 10, 26, 23), utc(2024, 10, 27, 3))
    assert slots == [utc(2024, 10, 26, 23), *(utc(2024, 10, 27, h) for h in range(3))]


def test_daily_alias_fires_at_local_midnight() -> None:
    slots = merge_slots([CronRule("@daily", NEW_YORK)], utc(2024, 11, 2), utc(2024, 11, 5))
    assert hm(slots, NEW_YORK) == ["11-02 00:00-0400", "11-03 00:00-0400", "11-04 00:00-0500"]


@pytest.mark.parametrize(("expr", "days"), [
    ("0 9 * * 1-5", ["Mon 03", "Tue 04", "Wed 05", "Thu 06", "Fri 07", "Mon 10"]),
    ("0 9 * * mon-fri", ["Mon 03", "Tue 04", "Wed 05", "Thu 06", "Fri 07", "Mon 10"]),
    ("0 9 * * 0", ["Sun 09"]),
    ("0 9 * * 7", ["Sun 09"]),
    ("0 9 * * sun", ["Sun 09"]),
    ("0 9 * * 6,0", ["Sat 08", "Sun 09"]),
    ("0 9 * * 5-7", ["Fri 07", "Sat 08", "Sun 09"]),
    ("0 9 * * 1", ["Mon 03", "Mon 10"]),
    ("0 9 3 * 0", ["Mon 03", "Sun 09"]),  # day-of-month OR day-of-week, as in standard cron
])
def test_weekday_numbering(expr: str, days: list[str]) -> None:
    for tz in (BERLIN, NEW_YORK, SYDNEY):
        start = datetime(2024, 6, 3, tzinfo=tz).astimezone(UTC)  # a Monday, local midnight
        slots = merge_slots([CronRule(expr, tz)], start, start + timedelta(days=7, hours=12))
        assert [s.astimezone(tz).strftime("%a %d %H:%M") for s in slots] == [f"{d} 09:00" for d in days]


def test_weekday_cron_across_dst_keeps_local_time() -> None:
    slots = merge_slots([CronRule("0 9 * * 1-5", NEW_YORK)], utc(2024, 3, 7), utc(2024, 3, 13))
    assert slots == [utc(2024, 3, 7, 14), utc(2024, 3, 8, 14), utc(2024, 3, 11, 13), utc(2024, 3, 12, 13)]


def test_cron_range_is_half_open() -> None:
    rule = CronRule("0 9 * * *", ZoneInfo("UTC"))
    assert merge_slots([rule], utc(2024, 6, 1, 9), utc(2024, 6, 2, 9)) == [utc(2024, 6, 1, 9)]
    assert merge_slots([rule], utc(2024, 6, 1, 9, 0, 1), utc(2024, 6, 2, 9, 0, 1)) == [utc(2024, 6, 2, 9)]
    assert merge_slots([rule], utc(2024, 6, 1, 9, 1), utc(2024, 6, 2, 8, 59)) == []
    assert merge_slots([rule], utc(2024, 6, 2), utc(2024, 6, 1)) == []


def test_cron_over_a_year_in_sydney() -> None:
    slots = merge_slots([CronRule("0 10 * * *", SYDNEY)], utc(2024, 1, 1), utc(2025, 1, 1))
    assert len(slots) == 366
    assert {s.astimezone(SYDNEY).strftime("%H:%M") for s in slots} == {"10:00"}
    assert {s.strftime("%H:%M") for s in slots} == {"23:00", "00:00"}


# --- every: ---------------------------------------------------------------------------------------------

def test_every_hours_counts_elapsed_time_across_dst() -> None:
    rule = IntervalRule(timedelta(hours=6), datetime(2024, 3, 30, 0, 0), BERLIN)
    slots = merge_slots([rule], utc(2024, 3, 29), utc(2024, 3, 31, 20))
    assert slots[0] == utc(2024, 3, 29, 23)  # the anchor: 00:00 CET
    assert all(b - a == timedelta(hours=6) for a, b in pairwise(slots))
    assert len(slots) == 8
    assert hm(slots, BERLIN) == ["03-30 00:00+0100", "03-30 06:00+0100", "03-30 12:00+0100", "03-30 18:00+0100",
                                 "03-31 00:00+0100", "03-31 07:00+0200", "03-31 13:00+0200", "03-31 19:00+0200"]


def test_every_minutes_across_fall_back() -> None:
    rule = IntervalRule(timedelta(minutes=45), datetime(2024, 11, 2, 23, 0), NEW_YORK)
    slots = merge_slots([rule], utc(2024, 11, 3, 3), utc(2024, 11, 3, 9))
    assert slots[0] == utc(2024, 11, 3, 3)
    assert all(b - a == timedelta(minutes=45) for a, b in pairwise(slots))
    assert slots[-1] == utc(2024, 11, 3, 8, 15)


def test_every_starts_at_anchor_and_splits_cleanly() -> None:
    rule = IntervalRule(timedelta(minutes=90), datetime(2024, 6, 1, 9, 0), ZoneInfo("UTC"))
    assert merge_slots([rule], utc(2024, 6, 1), utc(2024, 6, 1, 12)) == [
        utc(2024, 6, 1, 9), utc(2024, 6, 1, 10, 30)]
    assert merge_slots([rule], utc(2024, 6, 1, 10, 31), utc(2024, 6, 1, 13, 31)) == [
        utc(2024, 6, 1, 12), utc(2024, 6, 1, 13, 30)]


def test_every_day_keeps_local_time_across_dst() -> None:
    rule = IntervalRule(timedelta(days=1), datetime(2024, 3, 28, 9, 0), BERLIN)
    slots = merge_slots([rule], utc(2024, 3, 20), utc(2024, 4, 2, 12))
    assert hm(slots, BERLIN) == ["03-28 09:00+0100", "03-29 09:00+0100", "03-30 09:00+0100",
                                 "03-31 09:00+0200", "04-01 09:00+0200", "04-02 09:00+0200"]
    assert slots[2] - slots[1] == timedelta(hours=24)
    assert slots[3] - slots[2] == timedelta(hours=23)


def test_every_week_keeps_local_time_across_dst() -> None:
    rule = IntervalRule(timedelta(weeks=1), datetime(2024, 10, 20, 9, 0), NEW_YORK)  # Sundays 09:00
    slots = merge_slots([rule], utc(2024, 10, 1), utc(2024, 11, 15))
    assert slots == [utc(2024, 10, 20, 13), utc(2024, 10, 27, 13), utc(2024, 11, 3, 14), utc(2024, 11, 10, 14)]
    later = merge_slots([rule], utc(2024, 11, 4), utc(2024, 11, 25))
    assert later == [utc(2024, 11, 10, 14), utc(2024, 11, 17, 14), utc(2024, 11, 24, 14)]


def test_every_two_days_keeps_the_anchor_parity() -> None:
    rule = IntervalRule(timedelta(days=2), datetime(2024, 1, 1, 8, 0), SYDNEY)
    slots = merge_slots([rule], utc(2024, 4, 1), utc(2024, 4, 12))
    assert [s.astimezone(SYDNEY).strftime("%m-%d %H:%M") for s in slots] == [
        "04-02 08:00", "04-04 08:00", "04-06 08:00", "04-08 08:00", "04-10 08:00", "04-12 08:00"]


def test_every_day_anchored_in_a_gap_or_repeat() -> None:
    gap = IntervalRule(timedelta(days=1), datetime(2024, 3, 29, 2, 30), BERLIN)
    assert hm(merge_slots([gap], utc(2024, 3, 29), utc(2024, 4, 2)), BERLIN) == [
        "03-29 02:30+0100", "03-30 02:30+0100", "03-31 03:30+0200", "04-01 02:30+0200"]
    repeat = IntervalRule(timedelta(days=1), datetime(2024, 11, 2, 1, 30), NEW_YORK)
    assert hm(merge_slots([repeat], utc(2024, 11, 2), utc(2024, 11, 5)), NEW_YORK) == [
        "11-02 01:30-0400", "11-03 01:30-0400", "11-04 01:30-0500"]


def test_anchor_of() -> None:
    assert anchor_of(None) == datetime(2024, 1, 1)
    assert anchor_of(datetime(2026, 3, 1).date()) == datetime(2026, 3, 1)
    assert anchor_of(datetime(2026, 3, 1, 9, 30)) == datetime(2026, 3, 1, 9, 30)
    assert anchor_of(datetime(2026, 3, 1, 9, 30, tzinfo=BERLIN)) == datetime(2026, 3, 1, 9, 30)


# --- at: -------------------------------------------------------------------------------------------------

def test_fixed_at() -> None:
    at = FixedRule(datetime(2026, 12, 24, 8, 0), NEW_YORK)
    assert merge_slots([at], utc(2026, 12, 1), utc(2027, 1, 1)) == [utc(2026, 12, 24, 13)]
    assert merge_slots([at], utc(2026, 12, 24, 13), utc(2026, 12, 24, 14)) == [utc(2026, 12, 24, 13)]
    assert merge_slots([at], utc(2026, 12, 24, 12), utc(2026, 12, 24, 13)) == []
    assert merge_slots([at], utc(2026, 12, 24, 13, 1), utc(2027, 1, 1)) == []


def test_fixed_at_in_gap_fires_after_the_change() -> None:
    for tz, wall, expected in [(BERLIN, datetime(2024, 3, 31, 2, 30), utc(2024, 3, 31, 1, 30)),
                               (NEW_YORK, datetime(2024, 3, 10, 2, 15), utc(2024, 3, 10, 7, 15)),
                               (SYDNEY, datetime(2024, 10, 6, 2, 0), utc(2024, 10, 5, 16, 0))]:
        assert merge_slots([FixedRule(wall, tz)], expected - timedelta(days=1), expected + timedelta(days=1)) == [
            expected]


def test_fixed_at_in_repeat_fires_once() -> None:
    for tz, wall, expected in [(BERLIN, datetime(2024, 10, 27, 2, 30), utc(2024, 10, 27, 0, 30)),
                               (NEW_YORK, datetime(2024, 11, 3, 1, 30), utc(2024, 11, 3, 5, 30)),
                               (SYDNEY, datetime(2024, 4, 7, 2, 30), utc(2024, 4, 6, 15, 30))]:
        assert merge_slots([FixedRule(wall, tz)], expected - timedelta(days=1), expected + timedelta(days=1)) == [
            expected]


def test_fixed_at_aware() -> None:
    rule = FixedRule(datetime(2026, 12, 24, 8, 0, tzinfo=ZoneInfo("Asia/Tokyo")), NEW_YORK)
    assert merge_slots([rule], utc(2026, 12, 23), utc(2026, 12, 24)) == [utc(2026, 12, 23, 23)]


# --- merge_slots --------------------------------------------------------------------------------------------

def test_merge_slots_sorts_and_deduplicates() -> None:
    rules = [CronRule("0 9 * * *", BERLIN), CronRule("0 9 * * 1-5", BERLIN), FixedRule(datetime(2024, 6, 3, 9), BERLIN),
             FixedRule(datetime(2024, 6, 3, 8, 30), BERLIN), IntervalRule(timedelta(days=1), datetime(2024, 6, 1, 9),
                                                                          BERLIN)]
    slots = merge_slots(rules, utc(2024, 6, 3), utc(2024, 6, 5))
    assert slots == [utc(2024, 6, 3, 6, 30), utc(2024, 6, 3, 7), utc(2024, 6, 4, 7)]
    assert merge_slots([], utc(2024, 6, 3), utc(2024, 6, 5)) == []


# --- property: any rules, any range ---------------------------------------------------------------------

ZONES = [BERLIN, NEW_YORK, SYDNEY, LORD_HOWE, ZoneInfo("UTC"), ZoneInfo("Asia/Kolkata")]
ORDINARY = [utc(2024, 6, 15, 12), utc(2024, 2, 29), utc(2025, 1, 1)]


@cache
def transitions(tz: ZoneInfo) -> list[datetime]:
    """The zone's offset changes in 2024-2025 (to the minute), where the interesting slots are."""
    found, moment = [], utc(2024, 1, 1)
    while moment < utc(2026, 1, 1):
        after = moment + timedelta(days=1)
        if moment.astimezone(tz).utcoffset() != after.astimezone(tz).utcoffset():
            while after - moment > MIN:
                middle = moment + (after - moment) / 2
                if middle.astimezone(tz).utcoffset() == moment.astimezone(tz).utcoffset():
                    moment = middle
                else:
                    after = middle
            found.append(after.replace(second=0, microsecond=0))
        moment = after
    return found


def test_transitions_of_the_test_zones() -> None:
    assert transitions(BERLIN) == [utc(2024, 3, 31, 1), utc(2024, 10, 27, 1), utc(2025, 3, 30, 1),
                                   utc(2025, 10, 26, 1)]
    assert transitions(NEW_YORK)[:2] == [utc(2024, 3, 10, 7), utc(2024, 11, 3, 6)]
    assert transitions(SYDNEY)[:2] == [utc(2024, 4, 6, 16), utc(2024, 10, 5, 16)]
    assert transitions(LORD_HOWE)[:2] == [utc(2024, 4, 6, 15), utc(2024, 10, 5, 15, 30)]
    assert transitions(ZoneInfo("UTC")) == []


@st.composite
def zone_and_ranges(draw: st.DrawFn) -> tuple[ZoneInfo, datetime, datetime, datetime]:
    """A zone and a < b < c around one of its DST changes (often within hours of it), on whole minutes or not."""
    tz = draw(st.sampled_from(ZONES))
    around = draw(st.sampled_from(transitions(tz) * 3 + ORDINARY))
    offset = st.one_of(st.integers(-5400, 5400), st.integers(-4 * 3600, 4 * 3600), st.integers(-40 * 3600, 40 * 3600))
    points = []
    for _ in range(3):
        seconds = draw(offset)
        points.append(seconds - seconds % 60 if draw(st.booleans()) else seconds)
    a, b, c = sorted(points)
    b, c = max(b, a + 1), max(c, max(b, a + 1) + 1)
    return (tz, *(around + timedelta(seconds=x) for x in (a, b, c)))


@st.composite
def cron_fields(draw: st.DrawFn) -> tuple[str, set[int], set[int], set[int], bool]:
    """(expression, minutes, hours, cron weekdays 0-6, hour field is a wildcard)."""
    minute = draw(st.sampled_from([("*/15", set(range(0, 60, 15))), ("0", {0}), ("30", {30}), ("0,45", {0, 45}),
                                   ("5-7", {5, 6, 7}), ("*/20", {0, 20, 40}), ("10,50", {10, 50})]))
    wildcard = ("*", set(range(24)))
    hour = draw(st.sampled_from([wildcard, wildcard, wildcard, ("*/2", set(range(0, 24, 2))),
                                 ("*/5", {0, 5, 10, 15, 20}), ("1", {1}), ("2", {2}), ("3", {3}),
                                 ("1-3", {1, 2, 3}), ("2,9", {2, 9}), ("0", {0}), ("23", {23})]))
    dow = draw(st.sampled_from([("*", set(range(7))), ("1-5", {1, 2, 3, 4, 5}), ("0", {0}), ("7", {0}),
                                ("6,0", {6, 0}), ("sun", {0})]))
    expr = f"{minute[0]} {hour[0]} * * {dow[0]}"
    return expr, minute[1], hour[1], dow[1], hour[0].startswith("*")


def cron_oracle(tz: ZoneInfo, fields: tuple[str, set[int], set[int], set[int], bool], start: datetime,
                end: datetime) -> list[datetime]:
    """The documented cron rules, checked minute by real minute."""
    _, minutes, hours, weekdays, wildcard = fields

    def matches(wall: datetime) -> bool:
        return wall.minute in minutes and wall.hour in hours and (wall.weekday() + 1) % 7 in weekdays

    def exists(wall: datetime) -> bool:
        return wall.replace(tzinfo=tz).astimezone(UTC).astimezone(tz).replace(tzinfo=None) == wall

    out = []
    moment = (start + timedelta(seconds=59)).replace(second=0, microsecond=0)
    while moment < end:
        local = moment.astimezone(tz)
        wall = local.replace(tzinfo=None)
        # a wall time fires at its first occurrence, or at each one for a wildcard hour
        fires = matches(wall) and (wildcard or local.fold == 0)
        # a skipped wall time fires at the same offset after the change
        jump = local.utcoffset() - (moment - timedelta(hours=3)).astimezone(tz).utcoffset()
        if jump > timedelta() and not exists(wall - jump) and matches(wall - jump):
            fires = True
        if fires:
            out.append(moment)
        moment += MIN
    return out


@st.composite
def rules(draw: st.DrawFn, tz: ZoneInfo, near: datetime):
    """A cron, interval or fixed rule, mostly in zone `tz`, anchored around `near`."""
    tz = draw(st.sampled_from([tz, tz, tz, *ZONES]))
    kind = draw(st.sampled_from(["cron", "cron", "every", "days", "at"]))
    anchor = near.astimezone(tz).replace(tzinfo=None, second=0, microsecond=0) + timedelta(
        minutes=draw(st.integers(-3000, 3000)))
    if kind == "cron":
        return CronRule(draw(cron_fields())[0], tz)
    if kind == "every":
        return IntervalRule(timedelta(minutes=draw(st.sampled_from([1, 7, 30, 45, 60, 90, 360, 1500]))), anchor, tz)
    if kind == "days":
        return IntervalRule(timedelta(days=draw(st.sampled_from([1, 2, 7]))), anchor, tz)
    return FixedRule(anchor, tz)


@settings(max_examples=150, deadline=None)
@given(st.data(), zone_and_ranges())
def test_merge_slots_properties_and_split_consistency(data, zone_abc) -> None:
    tz, a, b, c = zone_abc
    rule_list = data.draw(st.lists(rules(tz, b), min_size=1, max_size=3))
    whole = merge_slots(rule_list, a, c)
    assert all(x < y for x, y in pairwise(whole))
    assert all(a <= s < c for s in whole)
    assert all(s.tzinfo is UTC and s.second == 0 and s.microsecond == 0 for s in whole)
    assert merge_slots(rule_list, a, b) + merge_slots(rule_list, b, c) == whole


@settings(max_examples=100, deadline=None)
@given(cron_fields(), zone_and_ranges())
def test_cron_matches_the_documented_rules(fields, zone_abc) -> None:
    tz, a, b, c = zone_abc
    expected = cron_oracle(tz, fields, a, c)
    rule = CronRule(fields[0], tz)
    assert merge_slots([rule], a, c) == expected
    assert merge_slots([rule], a, b) + merge_slots([rule], b, c) == expected


@settings(max_examples=100, deadline=None)
@given(st.sampled_from([1, 5, 30, 60, 360, 720]), zone_and_ranges(), st.integers(-3000, 3000))
def test_every_minutes_or_hours_are_evenly_spaced_in_real_time(minutes, zone_abc, shift) -> None:
    tz, a, _, c = zone_abc
    anchor = a.astimezone(tz).replace(tzinfo=None, second=0) + timedelta(minutes=shift)
    origin = wall_to_instants(anchor, tz, both_on_repeat=False)[0]
    every = timedelta(minutes=minutes)
    slots = merge_slots([IntervalRule(every, anchor, tz)], a, c)
    assert all((s - origin) % every == timedelta() and s >= origin for s in slots)
    assert all(y - x == every for x, y in pairwise(slots))
    if slots:
        assert slots[0] - every < a or slots[0] == origin
        assert slots[-1] + every >= c
    else:
        assert max(origin, a) + every >= c or origin >= c


@settings(max_examples=100, deadline=None)
@given(st.sampled_from([1, 2, 7]), zone_and_ranges(), st.integers(-3000, 3000))
def test_every_days_keep_the_local_time_of_day(days, zone_abc, shift) -> None:
    tz, a, _, c = zone_abc
    anchor = a.astimezone(tz).replace(tzinfo=None, second=0) + timedelta(minutes=shift)
    slots = merge_slots([IntervalRule(timedelta(days=days), anchor, tz)], a, c)
    for s in slots:
        wall = s.astimezone(tz).replace(tzinfo=None)
        assert (wall.date() - anchor.date()).days % days == 0
        assert wall.date() >= anchor.date()
        assert wall_to_instants(datetime.combine(wall.date(), anchor.time()), tz, both_on_repeat=False) == [s]
    assert all(abs(y - x - timedelta(days=days)) <= timedelta(hours=1) for x, y in pairwise(slots))


# --- quiet hours ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("22:00-08:00", (time(22, 0), time(8, 0))),
    (" 9:30 - 17:05 ", (time(9, 30), time(17, 5))),
    ("00:00-06:00", (time(0, 0), time(6, 0))),
    ("23:59-00:01", (time(23, 59), time(0, 1))),
])
def test_parse_clock_range(text: str, expected: tuple[time, time]) -> None:
    assert parse_clock_range(text) == expected


@pytest.mark.parametrize("text", ["", "22:00", "22-08", "22:00-", "24:00-08:00", "25:00-08:00", "22:60-08:00",
                                  "22:00-08:60", "22:00-24:30", "22:00-25:00", "22:00 08:00", "ten-eight",
                                  "22:00-08:00-09:00", "2200-0800", "22.00-08.00"])
def test_parse_clock_range_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="is not a time range: expected 'HH:MM-HH:MM'"):
        parse_clock_range(text)


@pytest.mark.parametrize(("span", "inside", "outside"), [
    ("22:00-08:00", ["22:00", "23:59", "00:00", "03:00", "07:59"], ["08:00", "12:00", "21:59"]),
    ("09:00-17:00", ["09:00", "12:00", "16:59"], ["08:59", "17:00", "23:00", "00:00"]),
    ("22:00-24:00", ["22:00", "23:59"], ["00:00", "21:59", "08:00"]),
    ("00:00-24:00", ["00:00", "12:00", "23:59"], []),
    ("00:00-00:30", ["00:00", "00:29"], ["00:30", "23:59"]),
])
def test_in_clock_range(span: str, inside: list[str], outside: list[str]) -> None:
    parsed = parse_clock_range(span)
    for text in inside:
        assert in_clock_range(time.fromisoformat(text), parsed), (span, text)
    for text in outside:
        assert not in_clock_range(time.fromisoformat(text), parsed), (span, text)
