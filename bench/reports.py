"""Benchmark of `drainage report` on a large SQLite database against a naive GROUP BY over the raw clicks.

    .venv/bin/python bench/reports.py [--clicks 10000000] [--links 1000] [--days 30] [--db PATH] [--keep]

Generates --clicks clicks across --links links over the last --days UTC days (skewed: a few links get most
clicks; 80 % people, 12 % link previews, 8 % bots; some people click more than once a day), with the rows the
tracker writes for them (raw clicks, hourly rollups, daily visitors and daily link rollups, consistent with each
other), plus the posts that carried the links (3 per link, some failed or missed) and orders for 1 % of the
human clicks (with their daily order rollup). Then, in the same run: the report (query and JSON rendering) for
each grouping over the whole period, and a naive GROUP BY over the raw clicks that computes only a part of it
(clicks by channel and class, and distinct visitors); prints both, and the ratio.
Target (issue 8): the report under 0.3 s at 10 M clicks.

Generation writes SQL directly in large transactions (the tracker's own writer classifies user agents, which
would take minutes here); click ids are sequential, which makes loading faster than the tracker's random ids
but does not change what a report reads. With --db PATH an existing benchmark database is reused.
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

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from drainage.links import tracked_link  # noqa: E402
from drainage.reports.query import build_report  # noqa: E402
from drainage.reports.render_csv_json import to_json  # noqa: E402
from drainage.reports.request import GROUPINGS, parse_request  # noqa: E402
from drainage.store.db import make_engine  # noqa: E402
from drainage.store.migrate import ensure_schema  # noqa: E402
from drainage.store.rollups import cents, order_key  # noqa: E402

CAMPAIGNS, CHANNELS, VARIANTS = 10, ("social-a", "social-b", "forum", "telegram", "newsletter"), ("a", "b")
SHARES = (("human", 0.80), ("preview", 0.12), ("bot", 0.08))


def series(links: int) -> list[tuple[str, str, str, str]]:
    """(campaign, channel, item, variant) of each link."""
    items = max(1, links // (CAMPAIGNS * len(CHANNELS) * len(VARIANTS)))
    out = [(f"campaign-{c}", ch, f"item-{i}", v) for c in range(CAMPAIGNS) for ch in CHANNELS for i in range(items)
           for v in VARIANTS]
    return out[:links]


def generate(path: Path, clicks: int, links: int, days: int, seed: int = 8) -> None:
    rng = random.Random(seed)
    engine = make_engine(f"sqlite:///{path}")
    ensure_schema(engine)
    engine.dispose()
    db = sqlite3.connect(path)
    db.execute("PRAGMA synchronous=OFF")
    db.execute("PRAGMA cache_size=-1000000")
    today = datetime.now(UTC).date()
    first = today - timedelta(days=days - 1)
    attribution = series(links)
    codes = []
    for n, (campaign, channel, item, variant) in enumerate(attribution):
        target = f"https://shop.example.com/p/{item}?utm_campaign={campaign}&utm_source={channel}&utm_content={variant}"
        link = tracked_link("https://go.example.com", target, campaign, channel, item, variant)
        codes.append(link.code)
        db.execute("INSERT INTO links (code, target, campaign, channel, item, variant, recipient, created_at) "
                   "VALUES (?, ?, ?, ?, ?, ?, '', ?)", (link.code, target, campaign, channel, item, variant,
                                                         _stamp(datetime.combine(first, datetime.min.time(), UTC))))
        for k, offset in enumerate((0, days // 3, 2 * days // 3)):
            slot = datetime.combine(first + timedelta(days=offset), datetime.min.time(), UTC) + timedelta(
                hours=rng.randrange(7, 20))
            status = "failed" if n % 37 == k else "missed" if n % 53 == k else "sent"
            reach = ("recipients", rng.randrange(500, 5000)) if channel == "newsletter" else (
                ("impressions", rng.randrange(1000, 20000)) if channel == "social-a" else (None, None))
            db.execute("INSERT INTO deliveries (key, campaign, channel, item, variant, slot_at, status, attempts, "
                       "remote_id, remote_url, error, text, payload, forced, created_at, updated_at, sent_at, "
                       "recipients, impressions) VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, NULL, 0, ?, ?, ?, ?, ?)",
                       (f"{campaign}|{channel}|{item}|{variant}|{slot:%Y%m%d%H}", campaign, channel, item, variant,
                        _stamp(slot), status, f"r{n}-{k}" if status == "sent" else None,
                        f"https://social.example.com/{n}/{k}" if status == "sent" else None,
                        {"failed": "transient: HTTP 503 (gave up after 5 attempts)",
                         "missed": "not sent: 2h late, beyond misfire_grace 1h"}.get(status),
                        f"New: {item} {link.url}", _stamp(slot), _stamp(slot),
                        _stamp(slot + timedelta(seconds=2)) if status == "sent" else None,
                        reach[1] if reach[0] == "recipients" and status == "sent" else None,
                        reach[1] if reach[0] == "impressions" and status == "sent" else None))
    db.commit()
    weights = [1 / (rank + 10) for rank in range(links)]  # a long tail: the busiest link ~100x the quietest
    rng.shuffle(weights)
    per_day = clicks // days
    click_no = order_no = 0
    started = time.perf_counter()
    for d in range(days):
        day = first + timedelta(days=d)
        count = per_day + (clicks - per_day * days if d == days - 1 else 0)
        chosen = rng.choices(range(links), weights, k=count)
        seconds = sorted(rng.randrange(86400) for _ in range(count))
        classes = rng.choices([c for c, _ in SHARES], [w for _, w in SHARES], k=count)
        pool = max(1, int(count * 0.8 * 0.7))  # ~30 % of human clicks are repeats of someone that day
        rows, hourly, daily, visitors, orders = [], Counter(), {}, set(), []
        midnight = datetime.combine(day, datetime.min.time())
        for link, second, agent in zip(chosen, seconds, classes, strict=True):
            click_no += 1
            at = midnight + timedelta(seconds=second, microseconds=click_no % 1000000)
            visitor = f"{day:%j}{rng.randrange(pool):029x}"
            code = codes[link]
            rows.append((f"{click_no:016x}", code, at.isoformat(" ", timespec="microseconds"), visitor, agent,
                         "mobile", ""))
            hourly[(at.replace(minute=0, second=0, microsecond=0).isoformat(" ", timespec="microseconds"), code,
                    agent)] += 1
            counts = daily.setdefault(code, [0, 0, 0, 0])
            counts[("human", "preview", "bot").index(agent)] += 1
            if agent == "human":
                if (code, visitor) not in visitors:
                    visitors.add((code, visitor))
                    counts[3] += 1
                if rng.random() < 0.01:
                    order_no += 1
                    campaign, channel, item, variant = attribution[link]
                    orders.append((f"order-{order_no}", "generic", round(rng.uniform(10, 200), 2), "EUR",
                                   f"{click_no:016x}", code, campaign, channel, item, variant, "click",
                                   (at + timedelta(minutes=20)).isoformat(" ", timespec="microseconds"),
                                   (at + timedelta(minutes=20)).isoformat(" ", timespec="microseconds")))
        iso = day.isoformat()
        db.executemany("INSERT INTO clicks (click_id, code, clicked_at, visitor, agent_class, device, referer_host) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        db.executemany("INSERT INTO click_rollups (hour, code, agent_class, clicks) VALUES (?, ?, ?, ?)",
                       [(*k, n) for k, n in hourly.items()])
        db.executemany("INSERT INTO visitor_days (day, code, visitor) VALUES (?, ?, ?)",
                       [(iso, c, v) for c, v in visitors])
        db.executemany("INSERT INTO link_days (day, code, human, preview, bot, visitors) VALUES (?, ?, ?, ?, ?, ?)",
                       [(iso, c, *n) for c, n in daily.items()])
        db.executemany("INSERT INTO orders (order_id, source, amount, currency, click_id, code, campaign, channel, "
                       "item, variant, attributed_by, ordered_at, received_at) VALUES "
                       "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", orders)
        write_order_days(db, orders)
        db.commit()
        print(f"  day {d + 1}/{days}: {click_no:,} clicks written ({time.perf_counter() - started:.0f} s)",
              file=sys.stderr, flush=True)
    db.execute("ANALYZE")
    db.commit()
    db.close()


def write_order_days(db: sqlite3.Connection, orders: list[tuple]) -> None:
    """The daily order rollup of these orders, as the tracker keeps it when it stores each one."""
    totals: dict[tuple[str, str], list] = {}
    for _, _, amount, currency, _, _, campaign, channel, item, variant, _, ordered_at, _ in orders:
        key = order_key(campaign, channel, item, variant, currency)
        row = totals.setdefault((ordered_at[:10], key), [campaign, channel, item, variant, currency, 0, 0])
        row[5] += 1
        row[6] += cents(Decimal(str(amount)))
    db.executemany("INSERT INTO order_days (day, key, campaign, channel, item, variant, currency, orders, "
                   "revenue_cents) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (day, key) DO UPDATE SET "
                   "orders = orders + excluded.orders, revenue_cents = revenue_cents + excluded.revenue_cents",
                   [(day, key, *values) for (day, key), values in totals.items()])


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(" ", timespec="microseconds")


def time_report(path: Path, days: int, runs: int) -> dict[str, list[float]]:
    engine = make_engine(f"sqlite:///{path}")
    timings: dict[str, list[float]] = {}
    for by in GROUPINGS:
        request = parse_request(since=f"{days}d", by=by)
        timings[by] = []
        for _ in range(runs):
            started = time.perf_counter()
            to_json(build_report(engine, request))
            timings[by].append(time.perf_counter() - started)
    engine.dispose()
    return timings


NAIVE = """
SELECT l.channel, c.agent_class, count(*), count(DISTINCT c.visitor)
FROM clicks c JOIN links l ON l.code = c.code
WHERE c.clicked_at >= ? AND c.clicked_at < ?
GROUP BY l.channel, c.agent_class
"""


def time_naive(path: Path, days: int, runs: int) -> list[float]:
    today = datetime.now(UTC).date()
    start, end = (today - timedelta(days=days - 1)).isoformat(), (today + timedelta(days=1)).isoformat()
    db = sqlite3.connect(path)
    out = []
    for _ in range(runs):
        started = time.perf_counter()
        db.execute(NAIVE, (start, end)).fetchall()
        out.append(time.perf_counter() - started)
    db.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clicks", type=int, default=10_000_000)
    parser.add_argument("--links", type=int, default=1000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--runs", type=int, default=5, help="Timed runs of each report (the naive query: 2).")
    parser.add_argument("--db", type=Path, help="Database file (reused if it exists; default: a temporary one).")
    parser.add_argument("--keep", action="store_true", help="Keep the generated database.")
    args = parser.parse_args()
    folder = None
    path = args.db
    if path is None:
        folder = tempfile.mkdtemp(prefix="drainage-bench-")
        path = Path(folder) / "reports.db"
    if not path.exists():
        print(f"generating {args.clicks:,} clicks across {args.links:,} links over {args.days} days in {path}",
              file=sys.stderr)
        started = time.perf_counter()
        generate(path, args.clicks, args.links, args.days)
        print(f"generated in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    db = sqlite3.connect(path)
    clicks, links, posts, orders = (db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                                    for t in ("clicks", "links", "deliveries", "orders"))
    rollup_rows = db.execute("SELECT count(*) FROM link_days").fetchone()[0]
    db.close()
    size = sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
    print(f"database: {clicks:,} clicks, {links:,} links, {posts:,} posts, {orders:,} orders, {rollup_rows:,} daily "
          f"link rollups; {size / 1e9:.1f} GB; SQLite {sqlite3.sqlite_version}; {os.cpu_count()} CPUs")
    report = time_report(path, args.days, args.runs)
    naive = time_naive(path, args.days, 2)
    naive_median = statistics.median(naive)
    print(f"\nreport over all {args.days} days (query + JSON), median of {args.runs} runs (first run):")
    for by, runs in report.items():
        print(f"  --by {by:<9} {statistics.median(runs):.3f} s  ({runs[0]:.3f} s)   "
              f"naive / report: {naive_median / statistics.median(runs):,.0f}x")
    print(f"naive GROUP BY over the raw clicks (clicks and distinct visitors by channel and class only), median of "
          f"{len(naive)}: {naive_median:.2f} s  (runs: {', '.join(f'{t:.2f}' for t in naive)})")
    slowest = max(statistics.median(r) for r in report.values())
    print(f"slowest report {slowest:.3f} s: {'under' if slowest < 0.3 else 'OVER'} the 0.3 s target")
    if folder and not args.keep:
        for p in Path(folder).iterdir():
            p.unlink()
        Path(folder).rmdir()
    elif folder:
        print(f"kept {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
