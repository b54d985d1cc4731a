"""One batch of clicks written in one transaction: the clicks, their hourly rollups, the daily unique visitors,
the daily per-link rollups (clicks by class, unique visitors) and the daily unique visitors of every grouping key
(`drainage.store.uniques`): what reports read, so rollups are always exactly the sum of the clicks.

Classification (bot, link preview or person; device class) and the visitor's keyed hash happen here, off the
request path: a redirect hands over the client's address, which lives only in memory until it is hashed. The statements
go to the DB-API cursor directly: SQLAlchemy's per-row parameter processing cost four times the insert itself
(bench/tracker.py); they are plain SQL that SQLite and PostgreSQL both accept, with values in the form
SQLAlchemy itself stores them.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from sqlalchemy import Engine

from drainage.store import uniques
from drainage.store.models import AgentClass
from drainage.store.rawsql import RawCursor
from drainage.tracker.agents import classify
from drainage.tracker.visitors import VisitorHasher


class PendingClick(NamedTuple):
    """What a redirect records; classification and parsing happen in the writer. Plain values only (`at` is
    seconds since the epoch), so a batch crosses to the writer process as a cheap `marshal` blob."""

    click_id: str
    code: str
    at: float
    client: str
    """The visitor's IP address: hashed with the user agent and the UTC day into `clicks.visitor`, never stored."""
    user_agent: str
    method: str
    referer: str


ClickRow = tuple[str, str, float, str, str, str, str]
"""A click as the redirect records it: a `PendingClick`, or the same fields in a plain tuple."""


def write_batch(engine: Engine, batch: list[ClickRow], hasher: VisitorHasher, retry: bool = False) -> Counter[str]:
    """Write `batch` in one transaction, visitors hashed by `hasher`; returns its clicks counted by class.

    `retry`: the batch was handed to a writer before without an answer (a writer process that died, a commit
    whose outcome was lost): the clicks already in the database are left out, so none is written twice; they are
    still in the counts returned (they were committed, and nobody counted them yet).
    """
    if not batch:
        return Counter()
    with engine.begin() as conn:
        writer = _RawWriter(conn)
        classes: Counter[str] = Counter()
        if retry:
            known = writer.existing_click_ids([c[0] for c in batch])
            classes.update(classify(c[4], c[5])[0] for c in batch if c[0] in known)
            batch = [c for c in batch if c[0] not in known]
        sqlite = conn.dialect.name == "sqlite"
        times = _SqliteTimes() if sqlite else _Times()
        clicks: list[tuple[Any, ...]] = []
        rollups: Counter[tuple[Any, str, str]] = Counter()
        visitors: set[tuple[Any, str, str]] = set()
        human = AgentClass.HUMAN
        seconds: dict[int, tuple[Any, Any, Any, str]] = {}  # second -> (stamp prefix, hour, day, ISO day)
        hash_visitor = hasher.visitor
        for click_id, code, at, client, user_agent, method, referer in batch:
            agent_class, device = classify(user_agent, method)
            classes[agent_class] += 1
            second = int(at // 1)
            stamps = seconds.get(second)
            if stamps is None:
                stamps = seconds[second] = times.second(second)
            prefix, hour, day, iso_day = stamps
            visitor = hash_visitor(client, user_agent, iso_day)
            clicks.append((click_id, code, f"{prefix}.{min(int((at - second) * 1e6), 999_999):06d}" if sqlite
                           else datetime.fromtimestamp(at, UTC), visitor, agent_class, device,
                           _host(referer) if referer else ""))
            rollups[(hour, code, agent_class)] += 1
            if agent_class == human:
                visitors.add((day, code, visitor))
        writer.many(CLICKS_SQL, clicks)
        # PostgreSQL: sorted keys, so concurrent trackers take row locks in the same order (no deadlocks);
        # SQLite has one writer at a time
        order: Any = list if sqlite else sorted
        writer.many(ROLLUPS_SQL, [(*key, n) for key, n in order(rollups.items())])
        days: dict[tuple[Any, str], list[int]] = {}
        for (hour, code, agent_class), n in rollups.items():
            counts = days.setdefault((times.day_of_hour(hour), code), [0, 0, 0, 0])
            counts[_CLASS_COLUMN[agent_class]] += n
        # only the visitors this insert adds are new for the day: counted from what the insert returns, which
        # stays exact when several trackers write the same visitor at once (one insert wins, one returns it);
        # the lock makes the per-grouping uniques exact too (see drainage.store.uniques)
        if visitors:
            uniques.lock(conn)
        new = writer.returning(VISITORS_SQL, order(visitors))
        for day_value, code, _ in new:
            days[(day_value, code)][3] += 1
        uniques.count_new(conn, new, order)  # type: ignore[arg-type]
        writer.many(LINK_DAYS_SQL, [(*key, *counts) for key, counts in order(days.items())])
    return classes


CLICKS_SQL = ("INSERT INTO clicks (click_id, code, clicked_at, visitor, agent_class, device, referer_host) "
              "VALUES (?, ?, ?, ?, ?, ?, ?)")
ROLLUPS_SQL = ("INSERT INTO click_rollups (hour, code, agent_class, clicks) VALUES (?, ?, ?, ?) "
               "ON CONFLICT (hour, code, agent_class) DO UPDATE SET clicks = click_rollups.clicks + excluded.clicks")
VISITORS_SQL = ("INSERT INTO visitor_days (day, code, visitor) VALUES {values} "
                "ON CONFLICT DO NOTHING RETURNING day, code, visitor")
LINK_DAYS_SQL = ("INSERT INTO link_days (day, code, human, preview, bot, visitors) VALUES (?, ?, ?, ?, ?, ?) "
                 "ON CONFLICT (day, code) DO UPDATE SET human = link_days.human + excluded.human, "
                 "preview = link_days.preview + excluded.preview, bot = link_days.bot + excluded.bot, "
                 "visitors = link_days.visitors + excluded.visitors")
_CLASS_COLUMN = {AgentClass.HUMAN: 0, AgentClass.PREVIEW: 1, AgentClass.BOT: 2}
_ROWS_PER_STATEMENT = 300
"""Rows per multi-row INSERT (3 parameters each: under SQLite's oldest limit of 999 parameters)."""


class _RawWriter(RawCursor):
    """The click writer's statements: multi-row inserts that say what they inserted, and the retry check."""

    def existing_click_ids(self, ids: list[str]) -> set[str]:
        found: set[str] = set()
        for start in range(0, len(ids), _ROWS_PER_STATEMENT):
            chunk = ids[start:start + _ROWS_PER_STATEMENT]
            found.update(row[0] for row in self.all(
                f"SELECT click_id FROM clicks WHERE click_id IN ({', '.join('?' * len(chunk))})", chunk))
        return found

    def returning(self, sql: str, rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        """Multi-row INSERT ... RETURNING (`{values}` in `sql`): the rows the database actually inserted."""
        returned: list[tuple[Any, ...]] = []
        for start in range(0, len(rows), _ROWS_PER_STATEMENT):
            chunk = rows[start:start + _ROWS_PER_STATEMENT]
            row_marks = "(" + ", ".join([self.marker] * len(chunk[0])) + ")"
            self.cursor.execute(sql.format(values=", ".join([row_marks] * len(chunk))),
                                [value for row in chunk for value in row])
            returned += [tuple(r) for r in self.cursor.fetchall()]
        return returned


class _Times:
    """The values SQLAlchemy stores for PostgreSQL: an aware datetime's hour, and its date."""

    def second(self, second: int) -> tuple[Any, Any, Any, str]:
        """(None: each click's own datetime is made, its hour, its day, the day in ISO form) for a second since
        the epoch."""
        hour = datetime.fromtimestamp(second - second % 3600, UTC)
        return None, hour, hour.date(), hour.date().isoformat()

    def day_of_hour(self, hour: Any) -> Any:
        return hour.date()


class _SqliteTimes(_Times):
    """SQLAlchemy's text form in SQLite: naive UTC 'YYYY-MM-DD HH:MM:SS.ffffff' and 'YYYY-MM-DD', made once per
    second of a batch rather than once per click."""

    def second(self, second: int) -> tuple[str, str, str, str]:
        prefix = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%d %H:%M:%S")
        return prefix, f"{prefix[:13]}:00:00.000000", prefix[:10], prefix[:10]

    def day_of_hour(self, hour: Any) -> str:
        return str(hour[:10])


def _host(referer: str) -> str:
    if not referer:
        return ""
    try:
        return (urlsplit(referer).hostname or "")[:255]
    except ValueError:
        return ""
