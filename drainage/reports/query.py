"""Build a report from the rollups, the journal and the order rollup: never from raw clicks or orders.

Clicks come from `link_days` (one row per link and UTC day, kept by the tracker in the same transaction as the
clicks), each row's unique visitors from `unique_days` (`drainage.reports.uniques`: distinct visitors do not add
up over links), orders and revenue from `order_days` (one row per day and attribution, kept with each order
stored), so a report over N days reads at most N rows per link however many clicks and orders there were.
Posts come from the delivery journal (by their slot's UTC day). Clicks are summed in SQL per link series
(campaign, channel, item, variant, market), then added up in Python into the requested grouping, so every
grouping's rows add up to the same click totals. Orders are rolled up without a market: a series' orders go to
the one market its links were posted for, or to no market (shown as unattributed) when they were posted for
several.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import Connection, Engine, Select, func, select

from drainage.reports.model import (
    GROUP_KEYS,
    UNATTRIBUTED,
    DailyClicks,
    FailureGroup,
    PostFigures,
    Report,
    Row,
)
from drainage.reports.posts import SentPost, Window, codes_in, credit, link_windows, series_windows
from drainage.reports.request import ReportRequest
from drainage.reports.uniques import Uniques
from drainage.reports.variants import compare_variants
from drainage.store.models import Delivery, DeliveryStatus, Link, LinkDay, OrderDay
from drainage.store.rawsql import RawCursor

REPORTED_STATES = (DeliveryStatus.SENT, DeliveryStatus.FAILED, DeliveryStatus.MISSED, DeliveryStatus.UNKNOWN)
FAILURE_STATES = (DeliveryStatus.FAILED, DeliveryStatus.MISSED, DeliveryStatus.UNKNOWN)
WINDOWS_PER_QUERY = 200
CENT = Decimal("0.01")

LD = LinkDay.__table__  # type: ignore[attr-defined]
LK = Link.__table__  # type: ignore[attr-defined]
DL = Delivery.__table__  # type: ignore[attr-defined]
OD = OrderDay.__table__  # type: ignore[attr-defined]
SERIES = (LK.c.campaign, LK.c.channel, LK.c.item, LK.c.variant, LK.c.market)
SUMS = ("sum(human)", "sum(preview)", "sum(bot)", "sum(visitors)")


def build_report(engine: Engine, request: ReportRequest, now: datetime | None = None) -> Report:
    """Query everything one report shows."""
    with engine.connect() as conn:
        reader = _Reader(conn, request)
        series = reader.series_clicks()
        daily = reader.daily_clicks()
        deliveries = reader.deliveries()
        posts = reader.posts(deliveries)
        reader.orders_by_series(series)
        day_rows = reader.day_rows(daily, deliveries, posts) if request.by == "day" else []
        currencies = reader.currencies()
        notes = reader.unknown_filters()
        for d in deliveries:
            row = _series_row(series, (d.campaign, d.channel, d.item, d.variant, d.market))
            row.posts_sent += d.status == DeliveryStatus.SENT
            row.posts_failed += d.status == DeliveryStatus.FAILED
            row.posts_missed += d.status == DeliveryStatus.MISSED
        for post in posts:
            if post.figures.reach is not None:
                row = _series_row(series, (*post.series, post.figures.market))
                row.reach += post.figures.reach
                row.reach_clicks += post.figures.human_clicks
        rows = day_rows if request.by == "day" else _group(request.by, series.values())
        totals = Row()
        for row in rows:
            totals.add(row)
        by_channel, variants = _group("channel", series.values()), _group("variant", series.values())
        by_market = _group("market", series.values())
        uniques = Uniques(conn, request)  # distinct visitors do not add up: each set of rows reads its own
        for by, group in ((request.by, rows), ("total", [totals]), ("channel", by_channel), ("variant", variants),
                          ("market", by_market)):
            uniques.fill(by, group)
    if note := uniques.note():
        notes.append(note)
    if len(currencies) > 1:
        notes.append(f"orders are in several currencies ({', '.join(currencies)}): revenue adds their amounts "
                     "as they are, without conversion")
    top = sorted((p.figures for p in posts), key=lambda p: (-p.human_clicks, -p.sent_at.timestamp(), p.delivery_id))
    return Report(request=request, generated_at=now or datetime.now(UTC), rows=rows, totals=totals,
                  by_channel=by_channel, daily=[d for d, _ in daily], variants=variants,
                  tests=compare_variants(variants), top_posts=top[:request.top], failures=_failures(deliveries),
                  currencies=currencies, notes=notes, by_market=by_market)


class _Reader:
    """The report's queries on one connection."""

    def __init__(self, conn: Connection, request: ReportRequest) -> None:
        self.conn = conn
        self.request = request
        self.first, self.last = request.period.first, request.period.last
        self.sqlite = conn.dialect.name == "sqlite"
        self._markets: dict[tuple[Any, ...], str | None] | None = None

    def _where_names(self, stmt: Select[Any], campaign: Any, channel: Any, market: Any = None) -> Select[Any]:
        if self.request.campaigns:
            stmt = stmt.where(campaign.in_(self.request.campaigns))
        if self.request.channels:
            stmt = stmt.where(channel.in_(self.request.channels))
        if self.request.markets and market is not None:
            stmt = stmt.where(market.in_(self.request.markets))
        return stmt

    def series_clicks(self) -> dict[Any, Row]:
        """Clicks and unique visitors per series: summed per link first (one pass over the period's rollups)."""
        per_link = (select(LD.c.code, func.sum(LD.c.human).label("h"), func.sum(LD.c.preview).label("p"),
                           func.sum(LD.c.bot).label("b"), func.sum(LD.c.visitors).label("v"))
                    .where(LD.c.day >= self.first, LD.c.day <= self.last).group_by(LD.c.code).subquery())
        stmt = self._where_names(
            select(*SERIES, func.sum(per_link.c.h), func.sum(per_link.c.p), func.sum(per_link.c.b),
                   func.sum(per_link.c.v)).select_from(per_link.join(LK, LK.c.code == per_link.c.code)),
            LK.c.campaign, LK.c.channel, LK.c.market).group_by(*SERIES)
        return {(c, ch, i, v, m): Row(campaign=c, channel=ch, item=i, variant=v, market=m, human_clicks=int(h),
                                      preview_clicks=int(p), bot_clicks=int(b), unique_visitors=int(u))
                for c, ch, i, v, m, h, p, b, u in self.conn.execute(stmt).all()}

    def daily_clicks(self) -> list[tuple[DailyClicks, int]]:
        """Clicks per UTC day and channel (and that day's unique visitors, for day rows)."""
        stmt = self._where_names(
            select(LD.c.day, LK.c.channel, func.sum(LD.c.human), func.sum(LD.c.preview), func.sum(LD.c.bot),
                   func.sum(LD.c.visitors)).select_from(LD.join(LK, LK.c.code == LD.c.code))
            .where(LD.c.day >= self.first, LD.c.day <= self.last), LK.c.campaign, LK.c.channel, LK.c.market
        ).group_by(LD.c.day, LK.c.channel)
        rows = [(DailyClicks(_as_date(day), channel, int(h), int(p), int(b)), int(v))
                for day, channel, h, p, b, v in self.conn.execute(stmt).all()]
        return sorted(rows, key=lambda r: (r[0].day, r[0].channel))

    def deliveries(self) -> list[_Delivery]:
        """The journal rows of the period (by slot), read through the driver: SQLAlchemy's per-value processing
        of a few thousand rows cost more than the query."""
        sql = ("SELECT id, campaign, channel, item, variant, status, slot_at, sent_at, remote_url, recipients, "
               "impressions, error, coalesce(payload, text), market FROM deliveries WHERE slot_at >= ? AND slot_at < ? "
               f"AND status IN ({', '.join('?' * len(REPORTED_STATES))})")
        params: list[Any] = [self._moment(self.request.period.start), self._moment(self.request.period.end),
                             *REPORTED_STATES]
        for column, names in (("campaign", self.request.campaigns), ("channel", self.request.channels),
                              ("market", self.request.markets)):
            if names:
                sql += f" AND {column} IN ({', '.join('?' * len(names))})"
                params += names
        return [_Delivery(*row[:6], _utc(row[6]), row[7] and _utc(row[7]), *row[8:])
                for row in RawCursor(self.conn).all(sql, params)]

    def _moment(self, moment: datetime) -> Any:
        """A UTC instant as SQLAlchemy stores it (SQLite: naive text)."""
        return moment.replace(tzinfo=None).isoformat(" ", timespec="microseconds") if self.sqlite else moment

    def posts(self, deliveries: list[_Delivery]) -> list[SentPost]:
        """Sent posts with the clicks their links brought (see drainage.reports.posts)."""
        posts = []
        for key, campaign, channel, item, variant, status, slot_at, sent_at, url, recipients, impressions, _, body, \
                market in deliveries:
            if status != DeliveryStatus.SENT:
                continue
            sent_at = sent_at or slot_at
            figures = PostFigures(key, sent_at, campaign, channel, item, variant, url,
                                  reach=recipients if recipients is not None else impressions, market=market)
            posts.append(SentPost(figures, sent_at.astimezone(UTC).date(), slot_at.astimezone(UTC).date(),
                                  frozenset(codes_in(body))))
        self._credit(posts, link_windows(posts, self.last), "code", "JOIN link_days ld ON ld.code = w.code")
        if posts and self.conn.execute(select(LK.c.code).where(LK.c.recipient != "").limit(1)).first():
            self._credit(posts, series_windows(posts, self.last), "campaign, channel, item, variant",
                         "JOIN links l ON l.campaign = w.campaign AND l.channel = w.channel AND l.item = w.item "
                         "AND l.variant = w.variant AND l.recipient != '' JOIN link_days ld ON ld.code = l.code")
        return posts

    def _credit(self, posts: list[SentPost], windows: list[Window], key_columns: str, joins: str) -> None:
        """Sum the daily rollups over each window in SQL and credit the window's post.

        Thousands of windows go to the driver directly (plain SQL both SQLite and PostgreSQL accept): binding them
        through SQLAlchemy's text() took three times as long as the queries themselves.
        """
        mark = "?" if self.conn.dialect.paramstyle == "qmark" else "%s"
        # PostgreSQL reads untyped VALUES parameters as text: say which are numbers and days
        number, day = (mark, mark) if self.sqlite else (f"CAST({mark} AS INTEGER)", f"CAST({mark} AS DATE)")
        for start in range(0, len(windows), WINDOWS_PER_QUERY):
            chunk = windows[start:start + WINDOWS_PER_QUERY]
            params: list[Any] = []
            for w in chunk:
                params += [w.post, *(w.key if isinstance(w.key, tuple) else (w.key,)),
                           self._day(max(w.first, self.first)), self._day(w.last)]
            width = len(key_columns.split(","))
            row = f"({number}, {', '.join([mark] * width)}, {day}, {day})"
            sql = (f"WITH w (post, {key_columns}, first_day, last_day) AS (VALUES {', '.join([row] * len(chunk))}) "
                   f"SELECT w.post, {', '.join(SUMS)} FROM w {joins} "
                   "AND ld.day >= w.first_day AND ld.day <= w.last_day GROUP BY w.post")
            for post, *counts in self.conn.exec_driver_sql(sql, tuple(params)).all():
                credit(posts[post].figures, *counts)

    def _day(self, day: date) -> Any:
        return day.isoformat() if self.sqlite else day  # as SQLAlchemy's Date stores it in SQLite

    def _orders(self, *columns: Any) -> Select[Any]:
        stmt = select(*columns).where(OD.c.day >= self.first, OD.c.day <= self.last)
        return self._where_names(stmt, OD.c.campaign, OD.c.channel)

    def _order_rows(self, *keys: Any) -> Iterable[tuple[Any, ...]]:
        stmt = self._orders(*keys, func.sum(OD.c.orders), func.sum(OD.c.revenue_cents)).group_by(*keys)
        for *key, count, cents in self.conn.execute(stmt).all():
            yield (*key, int(count), (Decimal(int(cents)) / 100).quantize(CENT))

    def orders_by_series(self, series: dict[Any, Row]) -> None:
        """Orders placed in the period and their revenue, per attribution (from the daily order rollup)."""
        for campaign, channel, item, variant, count, revenue in self._order_rows(
                OD.c.campaign, OD.c.channel, OD.c.item, OD.c.variant):
            market = self.order_market((campaign, channel, item, variant))
            if self.request.markets and market not in self.request.markets:
                continue
            row = _series_row(series, (campaign, channel, item, variant, market))
            row.orders += count
            row.revenue += revenue

    def order_market(self, attribution: tuple[Any, ...]) -> str | None:
        """The market of an order's attribution: the one market its links were posted for, else None."""
        if self._markets is None:
            stmt = self._where_names(select(*SERIES).distinct(), LK.c.campaign, LK.c.channel)
            found: dict[tuple[Any, ...], set[str]] = {}
            for *key, market in self.conn.execute(stmt).all():
                found.setdefault(tuple(key), set()).add(market)
            self._markets = {key: next(iter(m)) if len(m) == 1 else None for key, m in found.items()}
        return self._markets.get(tuple(attribution))

    def day_rows(self, daily: list[tuple[DailyClicks, int]], deliveries: list[Any], posts: list[SentPost]
                 ) -> list[Row]:
        """One row per day of the period: clicks by day, posts by slot day, orders by order day."""
        rows = {day: Row(day=day) for day in self.request.period.days}
        for d, visitors in daily:
            row = rows[d.day]
            row.human_clicks += d.human
            row.preview_clicks += d.preview
            row.bot_clicks += d.bot
            row.unique_visitors += visitors
        for d in deliveries:
            row = rows[d.slot_at.astimezone(UTC).date()]
            row.posts_sent += d.status == DeliveryStatus.SENT
            row.posts_failed += d.status == DeliveryStatus.FAILED
            row.posts_missed += d.status == DeliveryStatus.MISSED
        for post in posts:
            if post.figures.reach is not None:
                row = rows[post.slot_day]
                row.reach += post.figures.reach
                row.reach_clicks += post.figures.human_clicks
        if self.request.markets:
            found = ((day, count, revenue) for day, *key, count, revenue in self._order_rows(
                OD.c.day, OD.c.campaign, OD.c.channel, OD.c.item, OD.c.variant)
                if self.order_market(tuple(key)) in self.request.markets)
        else:
            found = self._order_rows(OD.c.day)  # type: ignore[assignment]
        for day, count, revenue in found:
            row = rows[_as_date(day)]
            row.orders += count
            row.revenue += revenue
        return list(rows.values())

    def currencies(self) -> list[str]:
        stmt = self._orders(OD.c.currency).distinct()
        return sorted(c or "?" for (c,) in self.conn.execute(stmt))

    def unknown_filters(self) -> list[str]:
        """A note for each filtered campaign or channel that nothing in the database names (a typo?)."""
        notes = []
        for kind, names, columns in (("campaign", self.request.campaigns, (LK.c.campaign, DL.c.campaign)),
                                     ("channel", self.request.channels, (LK.c.channel, DL.c.channel))):
            for name in names:
                found = any(self.conn.execute(select(column).where(column == name).limit(1)).first()
                            for column in columns)
                if not found:
                    notes.append(f"no link or post of {kind} '{name}' was ever recorded: check the name")
        return notes


def _series_row(series: dict[Any, Row], key: tuple[str | None, ...]) -> Row:
    row = series.get(key)
    if row is None:
        campaign, channel, item, variant, market = key
        row = series[key] = Row(campaign=campaign, channel=channel, item=item, variant=variant, market=market)
    return row


def _group(by: str, series_rows: Iterable[Row]) -> list[Row]:
    """Series rows summed into rows of `by` (not 'day'); a missing attribution is shown as (unattributed)."""
    names = GROUP_KEYS[by]
    rows: dict[tuple[Any, ...], Row] = {}
    for source in series_rows:
        key = tuple(UNATTRIBUTED if getattr(source, n) is None else getattr(source, n) for n in names)
        row = rows.get(key)
        if row is None:
            row = rows[key] = Row(**dict(zip(names, key, strict=True)))
        row.add(source)
    return sorted(rows.values(), key=lambda r: tuple((v == UNATTRIBUTED, v) for v in r.key(by)))


_NUMBERS = re.compile(r"\d+")


def _failures(deliveries: list[Any]) -> list[FailureGroup]:
    groups: dict[tuple[str, str, str], FailureGroup] = {}
    for d in sorted((d for d in deliveries if d.status in FAILURE_STATES), key=lambda d: d.slot_at):
        error = (d.error or "(no reason recorded)").strip()
        reason = _NUMBERS.sub("#", error)[:300]
        key = (d.channel, d.status, reason)
        group = groups.get(key)
        if group is None:
            groups[key] = FailureGroup(d.channel, d.status, reason, 1, d.slot_at, error)
        else:
            group.count += 1
            group.last_at, group.example = d.slot_at, error
    return sorted(groups.values(), key=lambda g: (g.channel, -g.count, g.status, g.reason))


class _Delivery(NamedTuple):
    id: int
    campaign: str
    channel: str
    item: str
    variant: str
    status: str
    slot_at: datetime
    sent_at: datetime | None
    remote_url: str | None
    recipients: int | None
    impressions: int | None
    error: str | None
    body: str | None
    market: str


def _utc(value: Any) -> datetime:
    """A stored instant as an aware UTC datetime (SQLite keeps naive UTC text)."""
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(value)).replace(tzinfo=UTC)


def _as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])

