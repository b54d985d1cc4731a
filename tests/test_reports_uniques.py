"""Unique visitors and clicks of every report row equal a naive recount of the raw clicks, for random click sets
written by the tracker's own batch writer (in random batches), on SQLite and PostgreSQL; the migration's
backfill gives exactly what the writer keeps; concurrent writers keep them exact."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, text

from drainage.links import tracked_link
from drainage.reports.model import GROUP_KEYS
from drainage.reports.query import build_report
from drainage.reports.request import GROUPINGS, parse_request
from drainage.store.db import make_engine, session
from drainage.store.migrate import alembic_config, ensure_schema, upgrade
from drainage.store.models import Link
from drainage.store.uniques import SCOPES, rebuild
from drainage.tracker.visitors import VisitorHasher
from drainage.tracker.writer import write_batch
from tests.databases import database_url

HUMAN = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
AGENTS = {"human": HUMAN, "preview": "TelegramBot (like TwitterBot)", "bot": "curl/8.5.0"}
FIRST = date(2026, 11, 2)
DAYS = 3
LINKS = (  # (campaign, channel, item, variant, recipient, market): two links share every key but the link itself
    ("spring", "social", "scarf", "a", "", "us"),
    ("spring", "social", "scarf", "a", "r1", "us"),
    ("spring", "social", "hat", "b", "", "de"),
    ("spring", "forum", "scarf", "", "", "de"),
    ("autumn", "social", "scarf", "a", "", ""),
    ("autumn", "newsletter", "mittens", "", "", ""),
)
CODES = [tracked_link("https://go.example.com", f"https://shop.example.com/{n}", c, ch, i, v, r, m).code
         for n, (c, ch, i, v, r, m) in enumerate(LINKS)]
HASHER = VisitorHasher(b"k" * 32)
TABLES = ("clicks", "click_rollups", "visitor_days", "link_days", "unique_days")

Click = tuple[int, int, int, str, int]
"""(link, day offset, second of the day, agent class, person)"""
clicks_strategy = st.lists(st.tuples(st.integers(0, len(LINKS) - 1), st.integers(0, DAYS - 1),
                                     st.integers(0, 86_399), st.sampled_from(("human", "human", "preview", "bot")),
                                     st.integers(0, 5)), max_size=60)


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    engine = make_engine(database_url(tmp_path_factory.mktemp("uniques")))
    ensure_schema(engine)
    with session(engine) as s:
        for (campaign, channel, item, variant, recipient, market), code in zip(LINKS, CODES, strict=True):
            s.add(Link(code=code, target="https://shop.example.com/", campaign=campaign, channel=channel, item=item,
                       variant=variant, recipient=recipient, market=market))
        s.commit()
    yield engine
    engine.dispose()


def write(engine: Engine, clicks: list[Click], cuts: list[int]) -> None:
    """`clicks` through the tracker's writer, in batches cut at `cuts`."""
    with engine.begin() as conn:
        for table in TABLES:
            conn.execute(text(f"DELETE FROM {table}"))
    rows = []
    for n, (link, day, second, agent, person) in enumerate(clicks):
        moment = datetime.combine(FIRST + timedelta(days=day), datetime.min.time(), UTC) + timedelta(seconds=second)
        rows.append((f"c{n:08d}", CODES[link], moment.timestamp(), f"10.0.0.{person}", AGENTS[agent], "GET", ""))
    bounds = sorted({0, len(rows), *(c % (len(rows) + 1) for c in cuts)})
    for start, end in pairwise(bounds):
        write_batch(engine, rows[start:end], HASHER)


def recount(clicks: list[Click], by: str, campaigns: tuple[str, ...] = (), channels: tuple[str, ...] = (),
            markets: tuple[str, ...] = ()) -> dict[tuple[object, ...], tuple[int, int, int, int]]:
    """Per row key: human, preview and bot clicks, and distinct (day, person) among the human clicks."""
    counts: dict[tuple[object, ...], list[int]] = defaultdict(lambda: [0, 0, 0])
    people: dict[tuple[object, ...], set[tuple[int, int]]] = defaultdict(set)
    for link, day, _, agent, person in clicks:
        campaign, channel, item, variant, _, market = LINKS[link]
        if ((campaigns and campaign not in campaigns) or (channels and channel not in channels)
                or (markets and market not in markets)):
            continue
        values = {"day": FIRST + timedelta(days=day), "campaign": campaign, "channel": channel, "item": item,
                  "variant": variant, "market": market}
        key = tuple(values[k] for k in GROUP_KEYS[by])
        counts[key][("human", "preview", "bot").index(agent)] += 1
        if agent == "human":
            people[key].add((day, person))
    return {key: (*c, len(people[key])) for key, c in counts.items()}


def back_to_0009(engine: Engine) -> None:
    from alembic import command

    config = alembic_config(engine)
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0009")


def report_rows(engine: Engine, by: str, **filters: list[str]) -> dict[tuple[object, ...], tuple[int, ...]]:
    built = build_report(engine, parse_request(start=FIRST.isoformat(), end=(FIRST + timedelta(days=DAYS - 1))
                                               .isoformat(), by=by, **filters))  # type: ignore[arg-type]
    return {row.key(by): (row.human_clicks, row.preview_clicks, row.bot_clicks, row.unique_visitors)
            for row in built.rows if row.human_clicks + row.preview_clicks + row.bot_clicks}


@settings(max_examples=12, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(clicks=clicks_strategy, cuts=st.lists(st.integers(0, 60), max_size=4))
def test_every_grouping_equals_a_naive_recount(engine: Engine, clicks: list[Click], cuts: list[int]) -> None:
    write(engine, clicks, cuts)
    for by in GROUPINGS:
        assert report_rows(engine, by) == recount(clicks, by), by
    # a single-valued filter reads the scope of the grouping and the filtered column: still exact
    assert report_rows(engine, "channel", campaigns=["spring"]) == recount(clicks, "channel", ("spring",))
    assert report_rows(engine, "day", channels=["social"]) == recount(clicks, "day", channels=("social",))
    assert report_rows(engine, "campaign", markets=["de"]) == recount(clicks, "campaign", markets=("de",))
    assert report_rows(engine, "market", channels=["social"]) == recount(clicks, "market", channels=("social",))
    built = build_report(engine, parse_request(start=FIRST.isoformat(), end="2026-11-04", by="item"))
    everyone = len({(day, person) for _, day, _, agent, person in clicks if agent == "human"})
    assert built.totals.unique_visitors == everyone  # the total is not the sum of the rows' uniques


def test_several_filtered_campaigns_are_summed_and_the_report_says_so(engine: Engine) -> None:
    clicks: list[Click] = [(0, 0, 10, "human", 1), (4, 0, 20, "human", 1)]  # one person, spring and autumn
    write(engine, clicks, [])
    built = build_report(engine, parse_request(start=FIRST.isoformat(), end=FIRST.isoformat(), by="channel",
                                               campaigns=["spring", "autumn"]))
    assert [(r.channel, r.unique_visitors) for r in built.rows] == [("social", 2)]
    assert built.totals.unique_visitors == 2
    assert "unique visitors add up over the filtered campaigns: a person who clicked links of two of them on one " \
           "day counts in each" in built.notes
    one = build_report(engine, parse_request(start=FIRST.isoformat(), end=FIRST.isoformat(), by="campaign"))
    assert [(r.campaign, r.unique_visitors) for r in one.rows] == [("autumn", 1), ("spring", 1)]
    assert one.totals.unique_visitors == 1 and one.notes == []


def test_the_migration_backfill_equals_what_the_writer_keeps(engine: Engine) -> None:
    clicks = [(link, day, 100 * n, "human" if n % 4 else "bot", n % 7)
              for n, (link, day) in enumerate((x % len(LINKS), (x // 7) % DAYS) for x in range(0, 400, 3))]
    write(engine, clicks, [17, 40, 90])
    with engine.connect() as conn:
        kept = conn.execute(text("SELECT day, scope, key, visitors FROM unique_days ORDER BY day, scope, key")).all()
    back_to_0009(engine)  # drops unique_days (and the links' market); upgrading fills it from visitor_days and links
    upgrade(engine)
    with engine.connect() as conn:
        again = conn.execute(text("SELECT day, scope, key, visitors FROM unique_days ORDER BY day, scope, key")).all()
    assert [r for r in again if "market" not in r.scope] == [r for r in kept if "market" not in r.scope]
    # 0011 fills the market scopes with `rebuild` once the links have their market (lost by the downgrade here)
    with engine.begin() as conn:
        for (*_, market), code in zip(LINKS, CODES, strict=True):
            conn.execute(text("UPDATE links SET market = :m WHERE code = :c"), {"m": market, "c": code})
        rebuild(conn, [scope for scope in SCOPES if "market" in scope])
        again = conn.execute(text("SELECT day, scope, key, visitors FROM unique_days ORDER BY day, scope, key")).all()
    assert again == kept
    assert len(kept) > 20 and any("market" in r.scope for r in kept)


def test_days_whose_visitor_hashes_were_pruned_keep_the_per_link_counts(engine: Engine) -> None:
    write(engine, [(0, 0, 10, "human", 1), (2, 0, 20, "human", 1), (0, 1, 10, "human", 1)], [])
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM visitor_days WHERE day = :d"), {"d": FIRST})
    back_to_0009(engine)
    upgrade(engine)
    # day 1: pruned, the person's two links count twice (all that is left); day 2: exact
    assert report_rows(engine, "day") == {(FIRST,): (2, 0, 0, 2), (FIRST + timedelta(days=1),): (1, 0, 0, 1)}


def test_concurrent_writers_count_a_shared_visitor_once(tmp_path: Path) -> None:
    """Two writers at once, each batch holding the same people on other links: every person once per key."""
    engine = make_engine(database_url(tmp_path))
    ensure_schema(engine)
    with session(engine) as s:
        for (campaign, channel, item, variant, recipient, market), code in zip(LINKS, CODES, strict=True):
            s.add(Link(code=code, target="https://shop.example.com/", campaign=campaign, channel=channel,
                       item=item, variant=variant, recipient=recipient, market=market))
        s.commit()
    moment = datetime.combine(FIRST, datetime.min.time(), UTC).timestamp() + 3600
    errors: list[BaseException] = []

    def writer(name: str, links: range) -> None:
        try:
            for round_ in range(15):
                batch = [(f"{name}{round_}-{link}-{person}", CODES[link], moment, f"10.1.{round_}.{person}", HUMAN,
                          "GET", "") for link in links for person in range(8)]
                write_batch(engine, batch, HASHER)
        except BaseException as exc:  # handed to the test
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=("a", range(0, 3))),
               threading.Thread(target=writer, args=("b", range(3, 6)))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors and not any(t.is_alive() for t in threads)
    built = build_report(engine, parse_request(start=FIRST.isoformat(), end=FIRST.isoformat(), by="channel"))
    # 15 rounds x 8 people, each on all six links: social has links 0, 1, 2 and 4
    assert [(r.channel, r.human_clicks, r.unique_visitors) for r in built.rows] == [
        ("forum", 120, 120), ("newsletter", 120, 120), ("social", 480, 120)]
    assert built.totals.unique_visitors == 120
    engine.dispose()
