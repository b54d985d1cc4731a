"""Exact unique visitors per grouping, kept by the click writer: `unique_days` rows per day, scope and key.

Distinct visitors do not add up: a person who clicks two links of one channel on one day is one visitor of that
channel, not two. So per-link counts cannot give a channel's, a campaign's or a day's uniques. The writer keeps
them instead, for every *scope* a report can ask for: a scope is a set of link columns (`campaign,channel`, or
`` for all links), its key the values of those columns ("\\x1f"-joined). A visitor new to a link on a day (the
`visitor_days` insert says so) is new to a scope key unless one of the links the visitor already clicked that day
has the same key. The visitor ids hash the UTC day, so a day's uniques add up over days: the sum over a period's
days is the number of distinct visitor ids in the period, exactly what a `count(DISTINCT visitor)` over the raw
clicks gives.

The scopes are derived from the groupings (`GROUP_COLUMNS`) and the report filters (`FILTER_COLUMNS`): a new
link dimension is one entry in `GROUP_COLUMNS` (and a migration calling `rebuild` for its scopes).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from itertools import combinations
from typing import Any

from sqlalchemy import Connection

from drainage.store.rawsql import RawCursor

GROUP_COLUMNS: dict[str, tuple[str, ...]] = {
    "channel": ("channel",),
    "campaign": ("campaign",),
    "variant": ("campaign", "channel", "variant"),
    "item": ("campaign", "item"),
    "market": ("market",),
}
"""The link columns that name a report row, per grouping (`day` groups by no link column)."""
FILTER_COLUMNS = ("campaign", "channel", "market")
"""The link columns a report can be filtered on."""
SEPARATOR = "\x1f"
_LOCK = 0x64726E67_75716B  # PostgreSQL advisory lock of the unique-visitor step ("drng" "uqk")


def scope_of(columns: Iterable[str]) -> tuple[str, ...]:
    """The scope of a set of link columns, in one canonical order."""
    wanted = set(columns)
    order = [c for cols in (*GROUP_COLUMNS.values(), FILTER_COLUMNS) for c in cols]
    return tuple(dict.fromkeys(c for c in order if c in wanted))


def _scopes() -> tuple[tuple[str, ...], ...]:
    found: dict[tuple[str, ...], None] = {}
    for grouping in ((), *GROUP_COLUMNS.values()):
        for n in range(len(FILTER_COLUMNS) + 1):
            for filtered in combinations(FILTER_COLUMNS, n):
                found[scope_of((*grouping, *filtered))] = None
    return tuple(found)


SCOPES = _scopes()
"""Every scope kept: each grouping's columns with any subset of the filter columns."""
COLUMNS = scope_of(c for s in SCOPES for c in s)
"""The link columns any scope uses."""


def scope_name(scope: tuple[str, ...]) -> str:
    return ",".join(scope)


SCOPE_NAMES = tuple(scope_name(scope) for scope in SCOPES)


def key_of(values: Iterable[Any]) -> str:
    return SEPARATOR.join("" if v is None else str(v) for v in values)


UPSERT_SQL = ("INSERT INTO unique_days (day, scope, key, visitors) VALUES (?, ?, ?, ?) "
              "ON CONFLICT (day, scope, key) DO UPDATE SET visitors = unique_days.visitors + excluded.visitors")
_CHUNK = 300


def lock(conn: Connection) -> None:
    """Serialise the unique-visitor step between trackers writing one PostgreSQL database (until commit), so two
    batches holding the same visitor never both count it as new. SQLite has one writer at a time already."""
    if conn.dialect.name != "sqlite":
        RawCursor(conn).one("SELECT pg_advisory_xact_lock(?)", (_LOCK,))


def count_new(conn: Connection, new: list[tuple[Any, str, str]], order: Any = list) -> None:
    """Add to `unique_days` the visitors of `new` (day, code, visitor): the `visitor_days` rows this transaction
    just inserted, after `lock`. Their visitors' other links of the day are read back to know which keys are
    new."""
    if not new:
        return
    raw = RawCursor(conn)
    ours = set(new)
    earlier: dict[tuple[Any, str], list[str]] = defaultdict(list)
    wanted = {(day, visitor) for day, _, visitor in new}
    visitors = sorted({visitor for _, visitor in wanted})
    for start in range(0, len(visitors), _CHUNK):
        chunk = visitors[start:start + _CHUNK]
        for day, code, visitor in raw.all("SELECT day, code, visitor FROM visitor_days WHERE visitor IN "
                                          f"({', '.join('?' * len(chunk))})", chunk):
            row = (day, code, visitor)
            if (day, visitor) in wanted and row not in ours:
                earlier[(day, visitor)].append(code)
    codes = sorted({code for _, code, _ in new} | {c for cs in earlier.values() for c in cs})
    keys = {code: _keys(values) for code, values in link_values(raw, codes).items()}  # once per link, not click
    counts: Counter[tuple[Any, str, str]] = Counter()
    per_visitor: dict[tuple[Any, str], list[str]] = defaultdict(list)
    for day, code, visitor in new:
        per_visitor[(day, visitor)].append(code)
    for (day, visitor), added in per_visitor.items():
        seen: set[tuple[str, str]] = set()
        for code in earlier.get((day, visitor), ()):
            seen.update(keys.get(code, ()))
        for code in added:
            # a click on an unknown code counts nowhere: reports join clicks to their links
            for scope_key in keys.get(code, ()):
                if scope_key not in seen:
                    seen.add(scope_key)
                    counts[(day, *scope_key)] += 1
    raw.many(UPSERT_SQL, [(*k, n) for k, n in order(counts.items())])


def _keys(values: dict[str, Any]) -> list[tuple[str, str]]:
    """(scope name, key) of a link in every scope."""
    return [(name, key_of(values[c] for c in scope)) for name, scope in zip(SCOPE_NAMES, SCOPES, strict=True)]


def link_values(raw: RawCursor, codes: list[str]) -> dict[str, dict[str, Any]]:
    """The scope columns of these links."""
    out: dict[str, dict[str, Any]] = {}
    for start in range(0, len(codes), _CHUNK):
        chunk = codes[start:start + _CHUNK]
        for code, *values in raw.all(f"SELECT code, {', '.join(COLUMNS)} FROM links WHERE code IN "
                                     f"({', '.join('?' * len(chunk))})", chunk):
            out[code] = dict(zip(COLUMNS, values, strict=True))
    return out


def rebuild(conn: Connection, scopes: Iterable[tuple[str, ...]] = SCOPES) -> None:
    """Fill `unique_days` for `scopes` from what is recorded (a migration's backfill; rows of these scopes are
    replaced). Days whose visitor hashes were pruned (`tracker.keep_raw_clicks`) can only get the sum of the
    per-link counts of `link_days`: a person who clicked two links of one key that day counts twice there."""
    sqlite = conn.dialect.name == "sqlite"
    sep = "char(31)" if sqlite else "chr(31)"
    raw = RawCursor(conn)
    for scope in scopes:
        name = scope_name(scope)
        key = f" || {sep} || ".join(f"coalesce(l.{c}, '')" for c in scope) or "''"
        by = f", {key}" if scope else ""
        raw.one("DELETE FROM unique_days WHERE scope = ?", (name,))
        raw.one("INSERT INTO unique_days (day, scope, key, visitors) "
                f"SELECT v.day, ?, {key}, count(DISTINCT v.visitor) FROM visitor_days v "
                f"JOIN links l ON l.code = v.code GROUP BY v.day{by}", (name,))
        raw.one("INSERT INTO unique_days (day, scope, key, visitors) "
                f"SELECT d.day, ?, {key}, sum(d.visitors) FROM link_days d JOIN links l ON l.code = d.code "
                "WHERE d.visitors > 0 AND NOT EXISTS (SELECT 1 FROM visitor_days v WHERE v.day = d.day) "
                f"GROUP BY d.day{by}", (name,))
