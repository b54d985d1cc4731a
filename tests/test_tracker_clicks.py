"""What a click records: agent class and device from real user agents, a visitor hash that never stores the IP,
and the batch writer (by size, by time, on failure, at shutdown) keeping rollups equal to the raw clicks."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import string
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine, create_engine, inspect, text
from sqlmodel import func, select

from drainage.store.db import make_engine, session
from drainage.store.models import Click, ClickRollup, VisitorDay
from drainage.tracker.agents import classify
from drainage.tracker.clickids import LENGTH, POOL, TIME_CHARS, ClickIds, time_prefix
from drainage.tracker.visitors import VisitorHasher, visitor_id, visitor_key
from tests.databases import ON_POSTGRES, database_url
from tests.tracker_helpers import add_link, clicks, load, run, running
from tests.waiting import eventually_async

UA = {
    "chrome_windows": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                      "Chrome/131.0.0.0 Safari/537.36",
    "safari_iphone": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
                     "Gecko) Version/17.6 Mobile/15E148 Safari/604.1",
    "safari_ipad": "Mozilla/5.0 (iPad; CPU OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
                   "Version/17.6 Mobile/15E148 Safari/604.1",
    "chrome_android": "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
                      "Chrome/131.0.0.0 Mobile Safari/537.36",
    "android_tablet": "Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) "
                      "Chrome/131.0.0.0 Safari/537.36",
    "firefox_linux": "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "safari_mac": "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) "
                  "Version/17.6 Safari/605.1.15",
    "instagram_inapp": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
                       "Gecko) Mobile/15E148 Instagram 340.0.0.22.109 (iPhone15,2; iOS 17_5; en_US)",
    "telegram_preview": "TelegramBot (like TwitterBot)",
    "twitterbot": "Twitterbot/1.0",
    "facebook_preview": "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    "imessage_preview": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_11_1) AppleWebKit/601.2.4 (KHTML, like Gecko) "
                        "Version/9.0.1 Safari/601.2.4 facebookexternalhit/1.1 Facebot Twitterbot/1.0",
    "discourse_onebox": "Discourse Forum Onebox v3.3.2",
    "slack_preview": "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
    "whatsapp_preview": "WhatsApp/2.23.20.0 A",
    "discord_preview": "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
    "linkedin_preview": "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)",
    "googlebot": "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "bingbot": "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "ahrefs": "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
    "curl": "curl/8.5.0",
    "python_requests": "python-requests/2.32.3",
    "empty": "",
    "headless_chrome": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0"
                       " Safari/537.36",
}

EXPECTED = {
    "chrome_windows": ("human", "desktop"), "safari_iphone": ("human", "mobile"), "safari_ipad": ("human", "tablet"),
    "chrome_android": ("human", "mobile"), "android_tablet": ("human", "tablet"),
    "firefox_linux": ("human", "desktop"), "safari_mac": ("human", "desktop"), "instagram_inapp": ("human", "mobile"),
    "telegram_preview": ("preview", "bot"), "twitterbot": ("preview", "bot"), "facebook_preview": ("preview", "bot"),
    "imessage_preview": ("preview", "bot"), "discourse_onebox": ("preview", "bot"),
    "slack_preview": ("preview", "bot"), "whatsapp_preview": ("preview", "bot"),
    "discord_preview": ("preview", "bot"), "linkedin_preview": ("preview", "bot"), "googlebot": ("bot", "bot"),
    "bingbot": ("bot", "bot"), "ahrefs": ("bot", "bot"), "curl": ("bot", "bot"), "python_requests": ("bot", "bot"),
    "empty": ("bot", "unknown"), "headless_chrome": ("bot", "bot"),
}


@pytest.mark.parametrize("name", sorted(UA))
def test_user_agents_are_classified(name: str) -> None:
    assert len(UA) >= 20
    assert classify(UA[name]) == EXPECTED[name]


def test_a_head_request_is_never_a_person() -> None:
    assert classify(UA["chrome_windows"], "HEAD")[0] == "bot"


def test_visitor_ids_are_keyed_daily_and_never_contain_the_ip() -> None:
    key = b"k" * 32
    a = visitor_id(key, "198.51.100.23", UA["safari_iphone"], date(2026, 12, 1))
    assert a == visitor_id(key, "198.51.100.23", UA["safari_iphone"], date(2026, 12, 1))
    assert a != visitor_id(key, "198.51.100.23", UA["safari_iphone"], date(2026, 12, 2))  # unlinkable across days
    assert a != visitor_id(key, "198.51.100.24", UA["safari_iphone"], date(2026, 12, 1))
    assert a != visitor_id(key, "198.51.100.23", UA["chrome_android"], date(2026, 12, 1))
    assert a != visitor_id(b"other key" * 4, "198.51.100.23", UA["safari_iphone"], date(2026, 12, 1))
    hasher = VisitorHasher(key)  # the request path's form: the same ids
    assert hasher.visitor("198.51.100.23", UA["safari_iphone"], "2026-12-01") == a
    assert hasher.visitor("198.51.100.23", UA["safari_iphone"], "2026-12-02") != a
    assert "198" not in a and len(a) == 32


def test_click_ids_are_unguessable_url_safe_and_unique_across_pool_refills() -> None:
    ids = ClickIds()
    drawn = [ids.next(1_764_633_600.0) for _ in range(3 * POOL + 7)]
    assert len(set(drawn)) == len(drawn)
    assert all(len(i) == LENGTH and set(i) <= set(string.ascii_letters + string.digits + "-_") for i in drawn)
    assert len({i[TIME_CHARS:] for i in drawn}) == len(drawn)  # the random part alone is unique too


@given(st.lists(st.integers(min_value=0, max_value=2**42 - 1), min_size=2, max_size=50))
def test_click_ids_sort_in_time_order(milliseconds: list[int]) -> None:
    """Later ids sort after earlier ones (byte order, as the database's index compares them)."""
    ids = ClickIds()
    drawn = [(ms, ids.next((ms + 0.5) / 1000)) for ms in milliseconds]
    for (ms_a, a), (ms_b, b) in itertools.pairwise(sorted(drawn)):
        assert a[:TIME_CHARS] < b[:TIME_CHARS] if ms_a < ms_b else a[:TIME_CHARS] == b[:TIME_CHARS]
    assert [time_prefix(ms) for ms in (0, 63, 64, 2**42 - 1)] == ["-------", "------z", "-----0-", "zzzzzzz"]


def test_the_visitor_key_is_created_once_and_shared_through_the_database(tmp_path: Path) -> None:
    engine = make_engine(database_url(tmp_path))
    from drainage.store.migrate import ensure_schema

    ensure_schema(engine)
    first = visitor_key(engine, None)
    assert len(first) == 32 and visitor_key(engine, None) == first
    assert visitor_key(engine, "configured") == b"configured"
    engine.dispose()


def test_clicks_store_no_ip_anywhere_and_count_unique_visitors(tmp_path: Path) -> None:
    config = load(tmp_path)
    code = add_link(config, "https://shop.example.com/p/scarf")
    ip = "203.0.113.7"  # the test client's address (see tests/tracker_helpers.py)

    async def scenario() -> None:
        async with running(config) as (tracker, client):
            for agent in (UA["safari_iphone"], UA["safari_iphone"], UA["chrome_windows"], UA["telegram_preview"]):
                await client.get(f"/c/{code}", headers={"user-agent": agent,
                                                        "referer": "https://t.me/s/northwind?x=1"})
            await tracker.recorder.flush()

    run(scenario)
    rows = clicks(config)
    assert [(r.agent_class, r.device, r.referer_host) for r in rows] == [
        ("human", "mobile", "t.me"), ("human", "mobile", "t.me"), ("human", "desktop", "t.me"),
        ("preview", "bot", "t.me")]
    assert rows[0].visitor == rows[1].visitor != rows[2].visitor
    engine = make_engine(config.database_url)
    # hashed in the writer process with the database's key, over the click's own UTC day
    assert rows[0].visitor == visitor_id(visitor_key(engine, None), ip, UA["safari_iphone"], rows[0].clicked_at.date())
    everything = _dump(engine)
    assert "t.me" in everything  # the scan does see what was written
    assert ip not in everything and "203.0.113" not in everything
    if not ON_POSTGRES:  # and not in the file's bytes either (free pages, WAL)
        db_bytes = b"".join(p.read_bytes() for p in tmp_path.glob("drainage.db*"))
        assert b"t.me" in db_bytes and ip.encode() not in db_bytes
    with session(engine) as s:
        assert s.exec(select(func.count()).select_from(VisitorDay)).one() == 2  # two people; the bot not at all
        rollups = {(r.agent_class): r.clicks for r in s.exec(select(ClickRollup)).all()}
    engine.dispose()
    assert rollups == {"human": 3, "preview": 1}


def test_clicks_are_written_in_batches_by_size_and_by_time(tmp_path: Path) -> None:
    config = load(tmp_path, flush_every="1h", batch_size=5)
    code = add_link(config, "https://shop.example.com/p/scarf")

    async def scenario() -> None:
        async with running(config) as (tracker, client):
            for _ in range(4):
                await client.get(f"/c/{code}")
            await asyncio.sleep(0.2)
            assert tracker.recorder.depth == 4 and tracker.recorder.written == 0  # below the batch size
            await client.get(f"/c/{code}")
            await eventually_async(lambda: tracker.recorder.written == 5, what="the full batch written")
            assert tracker.recorder.written == 5 and tracker.recorder.depth == 0

    run(scenario)
    config = load(tmp_path, flush_every="50ms", batch_size=1000)

    async def by_time() -> None:
        async with running(config) as (tracker, client):
            await client.get(f"/c/{code}")
            await eventually_async(lambda: tracker.recorder.written == 1, what="the click written by time")
            assert tracker.recorder.written == 1

    run(by_time)
    assert len(clicks(config)) == 6


def test_a_failed_write_keeps_the_batch_and_retries(tmp_path: Path) -> None:
    config = load(tmp_path, extra="writer: thread")  # the engine is swapped below: written from this process
    code = add_link(config, "https://shop.example.com/p/scarf")

    async def scenario() -> None:
        async with running(config) as (tracker, client):
            good = tracker.recorder.engine
            tracker.recorder.engine = _unreachable(tmp_path)
            for _ in range(3):
                await client.get(f"/c/{code}")
            assert await tracker.recorder.flush() is False  # the database is unreachable: kept, not lost
            assert tracker.recorder.depth == 3
            await client.get(f"/c/{code}")
            tracker.recorder.engine = good
            assert await tracker.recorder.flush() is True
            assert tracker.recorder.depth == 0 and tracker.recorder.written == 4
            metrics = (await client.get("/metrics")).text
            assert "drainage_tracker_flush_errors_total 1.0" in metrics

    run(scenario)
    assert len(clicks(config)) == 4


def test_beyond_max_pending_the_oldest_clicks_are_dropped_and_counted(tmp_path: Path) -> None:
    config = load(tmp_path, extra="writer: thread")
    code = add_link(config, "https://shop.example.com/p/scarf")

    async def scenario() -> None:
        async with running(config) as (tracker, client):
            good = tracker.recorder.engine
            tracker.recorder.engine = _unreachable(tmp_path)
            tracker.recorder.max_pending = 3
            for _ in range(5):
                await client.get(f"/c/{code}")
            assert await tracker.recorder.flush() is False
            tracker.recorder.engine = good
            assert tracker.recorder.depth == 3
            assert "drainage_tracker_clicks_dropped_total 2.0" in (await client.get("/metrics")).text

    run(scenario)
    assert len(clicks(config)) == 3  # written at shutdown


def test_rollups_stay_equal_to_the_raw_clicks_across_hours_and_links(tmp_path: Path) -> None:
    from drainage.tracker.writer import PendingClick

    config = load(tmp_path)
    codes = [add_link(config, f"https://shop.example.com/p/{n}", item=str(n)) for n in range(3)]

    async def scenario() -> None:
        async with running(config) as (tracker, _client):
            n = 0
            for batch in range(4):
                for hour in (9, 10, 23):
                    for i, code in enumerate(codes):
                        for agent in (UA["chrome_windows"], UA["googlebot"], UA["twitterbot"])[: i + 1]:
                            n += 1
                            tracker.recorder.add(PendingClick(f"id{n}", code, datetime(2026, 12, 1, hour, batch,
                                                                                      tzinfo=UTC).timestamp(),
                                                              f"v{n % 7}", agent, "GET", ""))
                await tracker.recorder.flush()

    run(scenario)
    engine = make_engine(config.database_url)
    with session(engine) as s:
        raw = Counter((c.clicked_at.replace(minute=0, second=0, microsecond=0), c.code, c.agent_class)
                      for c in s.exec(select(Click)).all())
        rolled = {(r.hour, r.code, r.agent_class): r.clicks for r in s.exec(select(ClickRollup)).all()}
    engine.dispose()
    assert rolled == dict(raw) and sum(raw.values()) == 4 * 3 * (1 + 2 + 3)


def _unreachable(root: Path) -> Engine:
    """An engine on a database that cannot be opened (its folder does not exist)."""
    return create_engine(f"sqlite:///{root / 'no-such-folder' / 'x.db'}")


def _dump(engine: Engine) -> str:
    """Every value of every row of every table, as text."""
    with engine.connect() as conn:
        return "\n".join(str(tuple(row)) for table in inspect(engine).get_table_names()
                         for row in conn.execute(text(f'SELECT * FROM "{table}"')))


@pytest.mark.slow  # spawns the writer process twice; the other writer tests keep it in the quick loop
def test_clicks_are_written_by_a_child_process_that_is_restarted_if_it_dies(tmp_path: Path) -> None:
    config = load(tmp_path)  # tracker.writer defaults to process
    code = add_link(config, "https://shop.example.com/p/scarf")

    async def scenario() -> None:
        async with running(config) as (tracker, client):
            writer = tracker.recorder.process
            assert writer is not None
            for _ in range(3):
                await client.get(f"/c/{code}")
            assert await tracker.recorder.flush() is True
            first = writer.pid
            assert first is not None and first != os.getpid()
            os.kill(first, signal.SIGKILL)  # the writer dies between two batches
            for _ in range(2):
                await client.get(f"/c/{code}")
            assert await tracker.recorder.flush() is True  # a new writer took the batch
            assert writer.pid not in (None, first)
            assert tracker.recorder.written == 5

    run(scenario)
    assert len(clicks(config)) == 5


def test_a_batch_sent_again_after_a_lost_answer_is_not_written_twice_and_is_counted_once(tmp_path: Path) -> None:
    from drainage.tracker.writer import PendingClick, write_batch

    config = load(tmp_path)
    code = add_link(config, "https://shop.example.com/p/scarf")
    engine = make_engine(config.database_url)
    at = datetime(2026, 12, 1, 9, 30, tzinfo=UTC).timestamp()
    batch = [PendingClick(f"c{n}", code, at, f"v{n}", UA["chrome_windows"], "GET", "") for n in range(4)]
    hasher = VisitorHasher(b"key")
    assert write_batch(engine, batch[:2], hasher) == {"human": 2}  # committed, but the answer was lost
    # sent again: only the two new ones are written, and all four are counted (nobody counted the first two)
    assert write_batch(engine, batch, hasher, retry=True) == {"human": 4}
    with session(engine) as s:
        assert sorted(c.click_id for c in s.exec(select(Click)).all()) == ["c0", "c1", "c2", "c3"]
        assert [r.clicks for r in s.exec(select(ClickRollup)).all()] == [4]
    engine.dispose()


def test_a_flush_cancelled_while_the_writer_process_works_keeps_answers_in_step(tmp_path: Path) -> None:
    """As at shutdown: the flushing task is cancelled while its batch is with the writer process. That batch is
    still committed and counted once, and the next batch gets its own answer (not the cancelled one's)."""
    from drainage.tracker.writer import PendingClick

    config = load(tmp_path, flush_every="1h")
    code = add_link(config, "https://shop.example.com/p/scarf")
    at = datetime(2026, 12, 1, 9, 30, tzinfo=UTC).timestamp()

    def batch(prefix: str, agent: str, n: int) -> list[PendingClick]:
        return [PendingClick(f"{prefix}{i}", code, at, "198.51.100.1", agent, "GET", "") for i in range(n)]

    async def scenario() -> None:
        async with running(config) as (tracker, _client):
            recorder = tracker.recorder
            for click in batch("a", UA["chrome_windows"], 300):
                recorder.add(click)
            flushing = asyncio.create_task(recorder.flush())
            # the batch left the buffer: it is on its way to the writer process
            await eventually_async(lambda: recorder._writing, timeout=30, interval=0, what="the batch handed over")
            assert recorder.depth == 300  # answered, not committed: still counted as queued
            flushing.cancel()
            with pytest.raises(asyncio.CancelledError):
                await flushing
            for click in batch("b", UA["googlebot"], 2):
                recorder.add(click)
            assert await recorder.flush() is True
            assert recorder.metrics.clicks.labels(agent_class="bot")._value.get() == 2  # its own answer
            assert recorder.metrics.clicks.labels(agent_class="human")._value.get() == 300  # the cancelled one's
            assert recorder.written == 302 and recorder.depth == 0

    run(scenario)
    assert len(clicks(config)) == 302
