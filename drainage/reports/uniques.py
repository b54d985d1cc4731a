"""Exact unique visitors of report rows, from `unique_days` (see `drainage.store.uniques`).

A row's uniques are read from the scope of its grouping's columns plus the filtered columns, restricted to the
filter's values; the days add up (visitor ids are daily). With two or more values in a filter on a column the
grouping does not name (`--campaign a --campaign b --by channel`), a person who clicked links of both on one day
is in both keys' counts: the sum can exceed the truth, and the report says so in a note.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import date
from typing import Any

from sqlalchemy import Connection

from drainage.reports.model import GROUP_KEYS, Row
from drainage.reports.request import ReportRequest
from drainage.store.rawsql import RawCursor
from drainage.store.uniques import SEPARATOR, scope_name, scope_of


class Uniques:
    """Unique visitors per key of any grouping over one request's period and filters."""

    def __init__(self, conn: Connection, request: ReportRequest) -> None:
        self.raw = RawCursor(conn)
        self.request = request
        self.sqlite = conn.dialect.name == "sqlite"
        self.filters = {"campaign": request.campaigns, "channel": request.channels, "market": request.markets}
        self.overlapping: set[str] = set()
        """Filtered columns with several values summed over (the note's subject)."""
        self._read: dict[tuple[object, ...], Counter[tuple[Any, ...]]] = {}

    def by(self, columns: tuple[str, ...], per_day: bool = False) -> Counter[tuple[Any, ...]]:
        """Visitors per tuple of `columns`' values (with the day first when `per_day`)."""
        filtered = {c: set(v) for c, v in self.filters.items() if v}
        scope = scope_of((*columns, *filtered))
        for column, values in filtered.items():
            if len(values) > 1 and column not in columns:
                self.overlapping.add(column)
        memo = (scope, columns, per_day)
        if memo in self._read:
            return self._read[memo]
        first, last = self.request.period.first, self.request.period.last
        day = "day" if per_day else "NULL"
        rows = self.raw.all(f"SELECT {day}, key, sum(visitors) FROM unique_days WHERE scope = ? AND day >= ? "
                            f"AND day <= ? GROUP BY {'day, ' if per_day else ''}key",
                            (scope_name(scope), *(self._day(d) for d in (first, last))))
        positions = [scope.index(c) for c in columns]
        checks = [(scope.index(c), values) for c, values in filtered.items()]
        out: Counter[tuple[Any, ...]] = Counter()
        for day, key, visitors in rows:
            values = key.split(SEPARATOR) if scope else []
            if all(values[i] in allowed for i, allowed in checks):
                name = tuple(values[i] for i in positions)
                out[(_as_date(day), *name) if per_day else name] += int(visitors)
        self._read[memo] = out
        return out

    def fill(self, by: str, rows: Iterable[Row]) -> None:
        """Set `unique_visitors` of `rows`, grouped `by` (a grouping, or 'total' for one row of everything)."""
        if by == "day":
            counts = self.by((), per_day=True)
            for row in rows:
                row.unique_visitors = counts.get((row.day,), 0)
            return
        columns = () if by == "total" else GROUP_KEYS[by]
        counts = self.by(columns)
        for row in rows:
            row.unique_visitors = counts.get(tuple(_key_value(getattr(row, c)) for c in columns), 0)

    def note(self) -> str | None:
        if not self.overlapping:
            return None
        what = " and ".join(f"{c}s" for c in sorted(self.overlapping))
        return (f"unique visitors add up over the filtered {what}: a person who clicked links of two of them on "
                "one day counts in each")

    def _day(self, day: date) -> Any:
        return day.isoformat() if self.sqlite else day


def _key_value(value: Any) -> str:
    """A row's column value as `unique_days` keys spell it (None, e.g. no market: '')."""
    return "" if value is None else str(value)


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])
