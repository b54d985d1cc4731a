"""Store feeds through the command line and the daemon: feeds check, feeds status, run --once, a failing feed
in the running daemon, and the migration of an existing database."""

from __future__ import annotations

import asyncio
import io
import re
from datetime import UTC, datetime

from sqlalchemy import inspect

from drainage import logs
from drainage.clock import FakeClock
from drainage.daemon import Daemon
from drainage.project import load_project
from drainage.store.db import make_engine
from drainage.store.migrate import current_revision, ensure_schema, head_revision, upgrade
from tests.databases import ON_POSTGRES, database_url
from tests.feeds.helpers import deliveries, dispatcher_for, feed_state, outbox, run, write_feed_project
from tests.feeds.server import FEEDS
from tests.waiting import eventually_async

SHOP = "/collections/all.atom"


def test_feeds_check_shows_verdicts_and_the_exact_posts_without_writing(tmp_path, feed_server, cli,
                                                                         monkeypatch) -> None:
    url = feed_server.serve(SHOP, "shopify-all.atom")
    config = write_feed_project(tmp_path, url, "filters: {max_price: 40}")
    monkeypatch.chdir(tmp_path)

    first = cli("feeds", "check", url)
    assert first.exit_code == 0, first.output
    assert "Northwind Knits: 3 entries from " in first.output
    assert "first poll: entries are only recorded, none posted (backfill: 0)" in first.output
    assert "first poll: recorded, not posted (backfill: 0)" in first.output
    assert "filtered out: price 45 is above max_price 40" in first.output
    assert "Nothing would be posted now; this is how the newest entry that passes the filters would look:" \
        in first.output
    assert "New: Chunky knit hat for $35.00 https://go.example.com/c/" in first.output
    assert not (tmp_path / "outbox").exists()
    if not ON_POSTGRES:
        assert not (tmp_path / "drainage.db").exists()

    run(dispatcher_for(config, FakeClock(datetime(2026, 3, 1, 10, tzinfo=UTC))))  # the daemon's first poll
    feed_server.serve(SHOP, "shopify-all-2.atom")
    second = cli("feeds", "check", url)
    assert second.exit_code == 0, second.output
    assert "Lambswool mittens" in second.output
    assert re.search(r"POST at \d{4}-\d\d-\d\d \d\d:\d\d UTC: new entry", second.output)
    assert "already seen (changed: title; not posted again)" in second.output  # the hat's fixed typo
    assert "already seen (changed: price; not posted again)" in second.output  # the scarf, no repost_on
    assert re.search(r"shop -> social \| .* \| entry 'Lambswool mittens'", second.output)
    assert re.search(r"New: Lambswool mittens for \$29\.00 https://go\.example\.com/c/\w{12}", second.output)
    assert "https://shop.example.com/products/lambswool-mittens?utm_source=social&utm_medium=social" \
           "&utm_campaign=shop" in second.output
    assert not (tmp_path / "outbox").exists()
    engine = make_engine(database_url(tmp_path))
    from sqlmodel import Session, select

    from drainage.store.models import Delivery, QueuedEntry

    with Session(engine) as s:
        assert s.exec(select(Delivery)).all() == [] and s.exec(select(QueuedEntry)).all() == []


def test_feeds_check_of_a_broken_feed_is_one_clear_line(tmp_path, feed_server, cli, monkeypatch) -> None:
    url = feed_server.serve("/feed/", "broken-xml.rss")
    write_feed_project(tmp_path, url)
    monkeypatch.chdir(tmp_path)
    result = cli("feeds", "check", url)
    assert result.exit_code == 1
    assert " ".join(result.output.split()) == f"error: {url}: malformed feed: mismatched tag at line 10, column 4"


def test_feeds_check_of_a_feed_no_campaign_polls_lists_its_entries(tmp_path, feed_server, cli, monkeypatch) -> None:
    write_feed_project(tmp_path, feed_server.url("/other/"))
    url = feed_server.serve("/feed/", "woocommerce-products.rss")
    monkeypatch.chdir(tmp_path)
    result = cli("feeds", "check", url)
    assert result.exit_code == 0, result.output
    assert "No campaign polls this feed" in result.output
    assert "Cable-knit cardigan" in result.output and "99 USD" in result.output
    tried = cli("feeds", "check", url, "--campaign", "shop")  # judged as if it were the campaign's feed
    assert "it does not poll this URL: judged as if it were its feed" in tried.output
    assert "New: Cable-knit cardigan for $99.00 https://go.example.com/c/" in tried.output


def test_feeds_status_shows_health_and_the_reason_of_failures(tmp_path, feed_server, cli, monkeypatch) -> None:
    url = feed_server.serve("/feed/", "wordpress-blog.rss")
    config = write_feed_project(tmp_path, url)
    monkeypatch.chdir(tmp_path)
    before = cli("feeds", "status").output
    assert ("never polled" if ON_POSTGRES else "no database yet: no feed has been polled") in before
    clock = FakeClock(datetime(2026, 3, 1, 10, tzinfo=UTC))
    dispatcher = dispatcher_for(config, clock)
    run(dispatcher)
    feed_server.fail("/feed/", 500)
    clock.set(datetime(2026, 3, 1, 10, 30, tzinfo=UTC))
    run(dispatcher)
    result = cli("feeds", "status")
    assert result.exit_code == 0, result.output
    state = feed_state(dispatcher, url)
    assert result.output.splitlines() == [
        f"shop  {url}",
        "  last poll 2026-03-01 10:30 UTC, last good 2026-03-01 10:00 UTC; next poll 2026-03-01 11:30 UTC",
        f"  ETag {state.etag}, Last-Modified {state.last_modified}; 2 entries in the last document, 2 seen in all, "
        "0 waiting for a slot",
        "  FAILING: HTTP 500 Internal Server Error (1 failed poll(s) in a row; the last good state is kept)",
    ]


def test_run_once_posts_the_backfill_then_nothing_more(tmp_path, feed_server, cli, monkeypatch) -> None:
    url = feed_server.serve("/feed/", "wordpress-blog.rss")
    write_feed_project(tmp_path, url, "backfill: 1")
    monkeypatch.chdir(tmp_path)
    for _ in range(2):
        result = cli("run", "--once")
        assert result.exit_code == 0, result.output
    assert [r["text"].split(" https://")[0] for r in outbox(tmp_path, "social")] == [
        "New: How to wash merino without shrinking it"]
    assert len(outbox(tmp_path, "forum")) == 1


def test_send_and_preview_explain_a_feed_only_campaign(tmp_path, feed_server, cli, monkeypatch) -> None:
    url = feed_server.serve("/feed/", "wordpress-blog.rss")
    write_feed_project(tmp_path, url)
    monkeypatch.chdir(tmp_path)
    sent = cli("send", "shop")
    assert sent.exit_code == 2
    assert "campaign 'shop' has no scheduled posts to send: it only posts new entries of its feeds" in sent.output
    shown = cli("preview", "shop")
    assert f"it only posts new entries of its feeds: try `drainage feeds check {url}`" in shown.output


def test_the_daemon_keeps_running_when_a_feed_fails_and_posts_when_it_works(tmp_path, feed_server) -> None:
    broken = feed_server.serve("/broken/", "broken-xml.rss")
    url = feed_server.serve("/feed/", "wordpress-blog.rss")
    config = write_feed_project(tmp_path, url, "backfill: 1")
    campaign = tmp_path / "campaigns" / "shop.yaml"
    campaign.write_text(campaign.read_text() + campaign.read_text().split("feeds:\n", 1)[1].replace(url, broken))
    config.write_text(config.read_text() + "daemon:\n  sweep_every: 1s\n  watch: false\n")
    engine = make_engine(database_url(tmp_path))
    ensure_schema(engine)
    daemon = Daemon(config, load_project(config), engine)

    async def main() -> None:
        task = asyncio.create_task(daemon.run())
        try:
            await eventually_async(lambda: len(outbox(tmp_path, "social")) == 1
                                   and feed_state(daemon.dispatcher, broken) is not None,
                                   interval=0.1, what="the healthy feed's post and the broken feed's state")
        finally:
            daemon.request_stop("test")
            await task

    log = io.StringIO()
    logs.setup("plain", stream=log)
    asyncio.run(main())
    assert [r["text"].split(" https://")[0] for r in outbox(tmp_path, "social")] == [
        "New: How to wash merino without shrinking it"]
    assert feed_state(daemon.dispatcher, broken).error == "malformed feed: mismatched tag at line 10, column 4"
    events = [line.split()[2] for line in log.getvalue().splitlines()]
    assert "feed.failed" in events and "daemon.stopped" in events and "dispatch.error" not in events
    assert [r.status for r in deliveries(daemon.dispatcher)] == ["sent", "sent"]


def test_an_existing_database_is_migrated_to_the_feed_tables(tmp_path) -> None:
    engine = make_engine(database_url(tmp_path))
    upgrade(engine, "0001")
    assert "feed_states" not in inspect(engine).get_table_names()
    upgrade(engine)
    assert current_revision(engine) == head_revision(engine)
    assert {"feed_states", "feed_entries", "feed_queue"} <= set(inspect(engine).get_table_names())


def test_an_entry_linking_outside_the_store_fails_with_the_reason(tmp_path, feed_server, cli, monkeypatch) -> None:
    body = (FEEDS / "wordpress-blog.rss").read_text(encoding="utf-8").replace(
        "https://blog.example.com/2026/02/merino-care/", "https://elsewhere.example.org/merino-care/")
    url = feed_server.serve("/feed/", body.encode())
    config = write_feed_project(tmp_path, url, "backfill: 1")
    monkeypatch.chdir(tmp_path)
    checked = cli("feeds", "check", url)
    assert checked.exit_code == 0, checked.output
    assert "shop -> social | entry 'How to wash merino without shrinking it': cannot render: link host " \
           "'elsewhere.example.org' is not one of the store's hosts" in " ".join(checked.output.split())
    dispatcher = dispatcher_for(config, FakeClock(datetime(2026, 3, 1, 10, tzinfo=UTC)))
    run(dispatcher)
    rows = deliveries(dispatcher)
    assert [r.status for r in rows] == ["failed", "failed"]
    assert rows[0].error.startswith("render: LinkError: link host 'elsewhere.example.org' is not one of the store's")
    assert outbox(tmp_path, "social") == []
