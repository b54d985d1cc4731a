"""Benchmark of `drainage report` on a large database against a naive GROUP BY over the raw clicks.

    .venv/bin/python bench/reports.py [--clicks 10000000] [--links 1000] [--days 30] [--db PATH] [--keep]
    .venv/bin/python bench/reports.py --database postgresql+psycopg://postgres@127.0.0.1:5432/test

Generates --clicks clicks across --links links over the last --days UTC days (skewed: a few links get most
clicks; 80 % people, 12 % link previews, 8 % bots; some people click more than once a day, often another link),
with the rows the tracker writes for them (raw clicks, hourly rollups, daily visitors, daily link rollups and the
daily unique visitors of every grouping key, consistent with each other), plus the posts that carried the links
(3 per link, some failed or missed) and orders for 1 % of the human clicks (with their daily order rollup). Then,
in the same run, for each grouping over the whole period: the report (query and JSON rendering), and a naive
GROUP BY over the raw clicks computing that grouping's clicks by class and distinct human visitors; prints both,
the ratio, and whether the report's unique visitors equal the naive count row for row.
Target (issue 21): the report under 0.3 s at 10 M clicks, ideally under 0.1 s.

SQLite by default (a temporary file, or --db PATH, reused if it exists). With --database postgresql://... the
bench creates a database of its own on that server (`drainage_bench_reports`, reused with --keep) and drops it
at the end unless --keep. Generation writes SQL directly in large transactions (executemany on SQLite, COPY on
PostgreSQL; the tracker's own writer classifies user agents, which would take minutes here); click ids are
sequential, which makes loading faster than the tracker's random ids but does not change what a report reads.
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from drainage.links import tracked_link  # noqa: E402
from drainage.reports.query import build_report  # noqa: E402
from drainage.reports.render_csv_json import to_json  # noqa: E402
from drainage.reports.request import GROUPINGS, parse_request  # noqa: E402
from drainage.store.db import make_engine  # noqa: E402
from drainage.store.migrate import ensure_schema  # noqa: E402
from drainage.store.rollups import cents, order_key  # noqa: E402
from drainage.store.uniques import GROUP_COLUMNS, SCOPES, key_of, scope_name  # noqa: E402

CAMPAIGNS, CHANNELS, VARIANTS = 10, ("social-a", "social-b", "forum", "telegram", "newsletter"), ("a", "b")
SHARES = (("human", 0.80), ("preview", 0.12), ("bot", 0.08))


def series(links: int) -> list[tuple[str, str, str, str]]:
    """(campaign, channel, item, variant) of each link."""
    items = max(1, links // (CAMPAIGNS * len(CHANNELS) * len(VARIANTS)))
    out = [(f"campaign-{c}", ch, f"item-{i}", v) for c in range(CAMPAIGNS) for ch in CHANNELS for i in range(items)
           for v in VARIANTS]
    return out[:links]


class Target:
    """The benchmark database: a SQLite file or a PostgreSQL database of its own, written with its fastest bulk
    path (executemany in big transactions; COPY)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.sqlite = url.startswith("sqlite")
        if self.sqlite:
            self.db: Any = sqlite3.connect(url.removeprefix("sqlite:///"))
            self.db.execute("PRAGMA synchronous=OFF")
            self.db.execute("PRAGMA cache_size=-1000000")
        else:
            import psycopg

            self.db = psycopg.connect(url.replace("+psycopg", ""))

    def stamp(self, moment: datetime) -> str:
        """A timestamp as SQLAlchemy stores it (SQLite: naive UTC text; PostgreSQL: timestamptz)."""
        text = moment.replace(tzinfo=None).isoformat(" ", timespec="microseconds")
        return text if self.sqlite else text + "+00"

    def insert(self, table: str, columns: str, rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        if self.sqlite:
            marks = ", ".join("?" * len(rows[0]))
            self.db.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", rows)
            return
        with self.db.cursor() as cursor, cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    def scalar(self, sql: str) -> Any:
        return self.db.execute(sql).fetchone()[0]

    def commit(self) -> None:
        self.db.commit()

    def analyze(self) -> None:
        self.db.execute("ANALYZE")
        self.db.commit()

    def close(self) -> None:
        self.db.close()


def generate(url: str, clicks: int, links: int, days: int, seed: int = 8) -> None:
    rng = random.Random(seed)
    engine = make_engine(url)
    ensure_schema(engine)
    engine.dispose()
    db = Target(url)
    today = datetime.now(UTC).date()
    first = today - timedelta(days=days - 1)
    attribution = series(links)
    codes, link_keys, deliveries = [], [], []
    link_rows = []
    for n, (campaign, channel, item, variant) in enumerate(attribution):
        target = f"https://shop.example.com/p/{item}?utm_campaign={campaign}&utm_source={channel}&utm_content={variant}"
        link = tracked_link("https://go.example.com", target, campaign, channel, item, variant)
        codes.append(link.code)
        values = {"campaign": campaign, "channel": channel, "item": item, "variant": variant, "market": ""}
        link_keys.append([(scope_name(scope), key_of(values[c] for c in scope)) for scope in SCOPES])
        link_rows.append((link.code, target, campaign, channel, item, variant, "",
                          db.stamp(datetime.combine(first, datetime.min.time()))))
        for k, offset in enumerate((0, days // 3, 2 * days // 3)):
            slot = datetime.combine(first + timedelta(days=offset), datetime.min.time()) + timedelta(
                hours=rng.randrange(7, 20))
            status = "failed" if n % 37 == k else "missed" if n % 53 == k else "sent"
            reach = ("recipients", rng.randrange(500, 5000)) if channel == "newsletter" else (
                ("impressions", rng.randrange(1000, 20000)) if channel == "social-a" else (None, None))
            deliveries.append((
                f"{campaign}|{channel}|{item}|{variant}|{slot:%Y%m%d%H}", campaign, channel, item, variant,
                db.stamp(slot), status, 1, f"r{n}-{k}" if status == "sent" else None,
                f"https://social.example.com/{n}/{k}" if status == "sent" else None,
                {"failed": "transient: HTTP 503 (gave up after 5 attempts)",
                 "missed": "not sent: 2h late, beyond misfire_grace 1h"}.get(status),
                f"New: {item} {link.url}", False, db.stamp(slot), db.stamp(slot),
                db.stamp(slot + timedelta(seconds=2)) if status == "sent" else None,
                reach[1] if reach[0] == "recipients" and status == "sent" else None,
                reach[1] if reach[0] == "impressions" and status == "sent" else None))
    db.insert("links", "code, target, campaign, channel, item, variant, recipient, created_at", link_rows)
    db.insert("deliveries", "key, campaign, channel, item, variant, slot_at, status, attempts, remote_id, remote_url, "
              "error, text, forced, created_at, updated_at, sent_at, recipients, impressions", deliveries)
    db.commit()
    weights = [1 / (rank + 10) for rank in range(links)]  # a long tail: the busiest link ~100x the quietest
    rng.shuffle(weights)
    per_day = clicks // days
    click_no = order_no = 0
    order_days: dict[tuple[str, str], list[Any]] = {}
    started = time.perf_counter()
    for d in range(days):
        day = first + timedelta(days=d)
        count = per_day + (clicks - per_day * days if d == days - 1 else 0)
        chosen = rng.choices(range(links), weights, k=count)
        seconds = sorted(rng.randrange(86400) for _ in range(count))
        classes = rng.choices([c for c, _ in SHARES], [w for _, w in SHARES], k=count)
        pool = max(1, int(count * 0.8 * 0.7))  # ~30 % of human clicks are repeats of someone that day
        rows, hourly, daily, visitors, orders = [], Counter(), {}, set(), []
        scoped: set[tuple[str, str, str]] = set()
        midnight = datetime.combine(day, datetime.min.time())
        for link, second, agent in zip(chosen, seconds, classes, strict=True):
            click_no += 1
            at = midnight + timedelta(seconds=second, microseconds=click_no % 1000000)
            visitor = f"{day:%j}{rng.randrange(pool):029x}"
            code = codes[link]
            rows.append((f"{click_no:016x}", code, db.stamp(at), visitor, agent, "mobile", ""))
            hourly[(db.stamp(at.replace(minute=0, second=0, microsecond=0)), code, agent)] += 1
            counts = daily.setdefault(code, [0, 0, 0, 0])
            counts[("human", "preview", "bot").index(agent)] += 1
            if agent == "human":
                if (code, visitor) not in visitors:
                    visitors.add((code, visitor))
                    counts[3] += 1
                    scoped.update((scope, key, visitor) for scope, key in link_keys[link])
                if rng.random() < 0.01:
                    order_no += 1
                    campaign, channel, item, variant = attribution[link]
                    amount = round(rng.uniform(10, 200), 2)
                    ordered = db.stamp(at + timedelta(minutes=20))
                    orders.append((f"order-{order_no}", "generic", amount, "EUR", f"{click_no:016x}", code, campaign,
                                   channel, item, variant, "click", ordered, ordered))
                    key = order_key(campaign, channel, item, variant, "EUR")
                    total = order_days.setdefault((ordered[:10], key), [campaign, channel, item, variant, "EUR", 0, 0])
                    total[5] += 1
                    total[6] += cents(Decimal(str(amount)))
        iso = day.isoformat()
        db.insert("clicks", "click_id, code, clicked_at, visitor, agent_class, device, referer_host", rows)
        db.insert("click_rollups", "hour, code, agent_class, clicks", [(*k, n) for k, n in hourly.items()])
        db.insert("visitor_days", "day, code, visitor", [(iso, c, v) for c, v in visitors])
        db.insert("link_days", "day, code, human, preview, bot, visitors", [(iso, c, *n) for c, n in daily.items()])
        uniques = Counter((scope, key) for scope, key, _ in scoped)
        db.insert("unique_days", "day, scope, key, visitors", [(iso, *k, n) for k, n in uniques.items()])
        db.insert("orders", "order_id, source, amount, currency, click_id, code, campaign, channel, item, variant, "
                  "attributed_by, ordered_at, received_at", orders)
        db.commit()
        print(f"  day {d + 1}/{days}: {click_no:,} clicks written ({time.perf_counter() - started:.0f} s)",
              file=sys.stderr, flush=True)
    db.insert("order_days", "day, key, campaign, channel, item, variant, currency, orders, revenue_cents",
              [(day, key, *values) for (day, key), values in order_days.items()])
    db.commit()
    db.analyze()
    db.close()


def time_report(url: str, days: int, runs: int) -> tuple[dict[str, list[float]], dict[str, dict[tuple, int]]]:
    """Timed reports per grouping, and each grouping's unique visitors per row (to check against the naive)."""
    engine = make_engine(url)
    timings: dict[str, list[float]] = {}
    uniques: dict[str, dict[tuple, int]] = {}
    for by in GROUPINGS:
        request = parse_request(since=f"{days}d", by=by)
        timings[by] = []
        for _ in range(runs):
            started = time.perf_counter()
            report = build_report(engine, request)
            to_json(report)
            timings[by].append(time.perf_counter() - started)
        uniques[by] = {tuple(str(v) for v in row.key(by)): row.unique_visitors for row in report.rows
                       if row.human_clicks}
    engine.dispose()
    return timings, uniques


def naive_sql(by: str, sqlite: bool) -> str:
    """A GROUP BY over the raw clicks giving one grouping's clicks by class and distinct human visitors."""
    day = "substr(c.clicked_at, 1, 10)" if sqlite else "CAST(c.clicked_at AT TIME ZONE 'UTC' AS DATE)"
    keys = [day] if by == "day" else [f"l.{c}" for c in GROUP_COLUMNS[by]]
    mark = "?" if sqlite else "%s"
    return (f"SELECT {', '.join(keys)}, sum(CASE WHEN c.agent_class = 'human' THEN 1 ELSE 0 END), "
            "sum(CASE WHEN c.agent_class = 'preview' THEN 1 ELSE 0 END), "
            "sum(CASE WHEN c.agent_class = 'bot' THEN 1 ELSE 0 END), "
            "count(DISTINCT CASE WHEN c.agent_class = 'human' THEN c.visitor END) "
            f"FROM clicks c JOIN links l ON l.code = c.code WHERE c.clicked_at >= {mark} AND c.clicked_at < {mark} "
            f"GROUP BY {', '.join(keys)}")


def time_naive(db: Target, days: int) -> tuple[dict[str, float], dict[str, dict[tuple, int]]]:
    today = datetime.now(UTC).date()
    start = db.stamp(datetime.combine(today - timedelta(days=days - 1), datetime.min.time()))
    end = db.stamp(datetime.combine(today + timedelta(days=1), datetime.min.time()))
    timings, uniques = {}, {}
    for by in GROUPINGS:
        started = time.perf_counter()
        rows = db.db.execute(naive_sql(by, db.sqlite), (start, end)).fetchall()
        timings[by] = time.perf_counter() - started
        width = 1 if by == "day" else len(GROUP_COLUMNS[by])
        uniques[by] = {tuple(str(v) for v in row[:width]): row[-1] for row in rows if row[width]}
    return timings, uniques


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clicks", type=int, default=10_000_000)
    parser.add_argument("--links", type=int, default=1000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--runs", type=int, default=5, help="Timed runs of each report (the naive query: 1).")
    parser.add_argument("--db", type=Path, help="SQLite file (reused if it exists; default: a temporary one).")
    parser.add_argument("--database", help="A PostgreSQL server URL (e.g. postgresql+psycopg://postgres@"
                        "127.0.0.1:5432/test): the bench creates its own database there and drops it after.")
    parser.add_argument("--keep", action="store_true", help="Keep the generated database.")
    args = parser.parse_args()
    folder = path = admin = None
    if args.database:
        from sqlalchemy import create_engine, text
        from sqlalchemy.engine import make_url

        name = "drainage_bench_reports"
        admin = create_engine(args.database, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first()
            if exists and not args.keep:
                conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
            if not exists or not args.keep:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
                exists = None
        url = make_url(args.database).set(database=name).render_as_string(hide_password=False)
        fresh = not exists
    else:
        path = args.db
        if path is None:
            folder = tempfile.mkdtemp(prefix="drainage-bench-")
            path = Path(folder) / "reports.db"
        url = f"sqlite:///{path}"
        fresh = not path.exists()
    try:
        if fresh:
            print(f"generating {args.clicks:,} clicks across {args.links:,} links over {args.days} days in {url}",
                  file=sys.stderr)
            started = time.perf_counter()
            generate(url, args.clicks, args.links, args.days)
            print(f"generated in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        db = Target(url)
        clicks, links, posts, orders, link_days, unique_days = (
            db.scalar(f"SELECT count(*) FROM {t}")
            for t in ("clicks", "links", "deliveries", "orders", "link_days", "unique_days"))
        if db.sqlite:
            size = sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))  # type: ignore[union-attr]
            engine = f"SQLite {sqlite3.sqlite_version}"
        else:
            size = db.scalar("SELECT pg_database_size(current_database())")
            engine = db.scalar("SHOW server_version").split()[0]
            engine = f"PostgreSQL {engine}"
        print(f"database: {clicks:,} clicks, {links:,} links, {posts:,} posts, {orders:,} orders, {link_days:,} "
              f"daily link rollups, {unique_days:,} daily unique-visitor rows; {size / 1e9:.1f} GB; {engine}; "
              f"{os.cpu_count()} CPUs; load average {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
        report, report_uniques = time_report(url, args.days, args.runs)
        naive, naive_uniques = time_naive(db, args.days)
        db.close()
        print(f"\nreport over all {args.days} days (query + JSON), median of {args.runs} runs (first run); naive "
              "GROUP BY over the raw clicks of the same grouping (clicks by class, distinct human visitors), 1 run:")
        for by, runs in report.items():
            median = statistics.median(runs)
            same = "equal" if report_uniques[by] == naive_uniques[by] else "DIFFERENT"
            print(f"  --by {by:<9} report {median:.3f} s  ({runs[0]:.3f} s)   naive {naive[by]:6.2f} s   "
                  f"naive / report: {naive[by] / median:,.0f}x   unique visitors {same} "
                  f"({len(naive_uniques[by])} rows)")
        slowest = max(statistics.median(r) for r in report.values())
        verdict = "under 0.1 s" if slowest < 0.1 else "under the 0.3 s target" if slowest < 0.3 else "OVER 0.3 s"
        print(f"slowest report {slowest:.3f} s: {verdict}; load average now "
              f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    finally:
        if admin is not None:
            if not args.keep:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
        if folder and not args.keep:
            for p in Path(folder).iterdir():
                p.unlink()
            Path(folder).rmdir()
        elif folder:
            print(f"kept {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
