"""Store feeds through the dispatcher on a controllable clock, against a real local HTTP server.

Each test asserts the journal rows and what the outbox channels wrote. "Restart" means a new Dispatcher and a
new engine on the same database file, which is all a new process would have.
"""

from __future__ import annotations

import re
from datetime import datetime

import pytest
from sqlmodel import select

from drainage.clock import FakeClock
from drainage.store.db import session
from drainage.store.models import DeliveryStatus as S
from drainage.store.models import Link
from tests.feeds.helpers import (
    deliveries,
    dispatcher_for,
    feed_state,
    outbox,
    queued,
    run,
    texts,
    write_feed_project,
)

SHOP = "/collections/all.atom"
TRACKED = r"https://go\.example\.com/c/[a-z2-7]{12}"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def shopify_price(document: str, old: str, new: str) -> bytes:
    """The Shopify fixture with one variant price changed."""
    from tests.feeds.server import FEEDS

    body = (FEEDS / document).read_text(encoding="utf-8")
    assert f'currency="USD">{old}<' in body
    return body.replace(f'currency="USD">{old}<', f'currency="USD">{new}<').encode()


def rss(*items: tuple[str, str]) -> bytes:
    """A minimal RSS document with (guid, title) items, newest first, each with a link on the store."""
    parts = [f"<item><title>{title}</title><link>https://shop.example.com/products/{guid}</link>"
             f"<guid isPermaLink=\"false\">{guid}</guid>"
             f"<pubDate>Sun, 01 Mar 2026 {12 - n % 12:02d}:00:00 +0000</pubDate></item>"
             for n, (guid, title) in enumerate(items)]
    return ("<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>Shop</title>"
            f"<link>https://shop.example.com</link>{''.join(parts)}</channel></rss>").encode()


def test_first_poll_posts_nothing_and_a_new_product_goes_to_each_channel_once(tmp_path, feed_server) -> None:
    url = feed_server.serve(SHOP, "shopify-all.atom")
    config = write_feed_project(tmp_path, url)
    clock = FakeClock(at("2026-03-01T10:07:00+00:00"))
    dispatcher = dispatcher_for(config, clock)

    run(dispatcher)  # first poll: the whole catalogue is recorded, nothing is posted
    state = feed_state(dispatcher, url)
    assert state is not None and state.entries == 3 and state.etag and state.error is None
    assert state.next_poll_at == at("2026-03-01T10:30:00+00:00")
    assert deliveries(dispatcher) == [] and outbox(tmp_path, "social") == []

    feed_server.serve(SHOP, "shopify-all-2.atom")  # a new product; a price change; a fixed typo in a title
    clock.set(at("2026-03-01T10:30:00+00:00"))
    run(dispatcher)
    social = texts(tmp_path, "social")
    assert len(social) == 1 and re.fullmatch(rf"New: Lambswool mittens for \$29\.00 {TRACKED}", social[0])
    forum = outbox(tmp_path, "forum")
    assert len(forum) == 1
    # Shopify's protocol-relative image takes the feed's scheme (http here, from the local server)
    assert re.fullmatch(rf"\*\*Lambswool mittens\*\*\n\nWarm hands, all winter\.\n"
                        rf"!\[\]\(http://shop\.example\.com/cdn/shop/products/mittens_compact\.jpg\)\n"
                        rf"{TRACKED} \(Gloves\)", forum[0]["text"])
    assert forum[0]["image"] == "http://shop.example.com/cdn/shop/products/mittens_compact.jpg"
    rows = deliveries(dispatcher)
    assert [(r.channel, r.status, r.slot_at) for r in rows] == [
        ("forum", S.SENT, at("2026-03-01T10:30:00+00:00")), ("social", S.SENT, at("2026-03-01T10:30:00+00:00"))]
    assert all(re.fullmatch(r"shop\|(social|forum)\|feed:[0-9a-f]{32}", r.key) for r in rows)
    with session(dispatcher.engine) as s:
        targets = {link.channel: link.target for link in s.exec(select(Link)).all()}
    assert targets["social"] == ("https://shop.example.com/products/lambswool-mittens?utm_source=social"
                                 "&utm_medium=social&utm_campaign=shop")
    assert targets["forum"].endswith("utm_source=forum&utm_medium=forum&utm_campaign=shop")

    for moment in ("2026-03-01T11:00:00+00:00", "2026-03-01T11:30:00+00:00"):  # unchanged feed: 304s
        clock.set(at(moment))
        run(dispatcher)
    assert feed_server.statuses(SHOP) == [200, 200, 304, 304]
    conditional = feed_server.requests[-1].headers
    assert conditional["if-none-match"] == feed_state(dispatcher, url).etag
    assert "if-modified-since" in conditional
    assert feed_server.requests[0].headers["user-agent"].startswith("drainage/")
    assert "if-none-match" not in feed_server.requests[0].headers
    assert len(texts(tmp_path, "social")) == 1 and len(texts(tmp_path, "forum")) == 1


def test_price_drop_is_announced_once_per_price_when_the_campaign_asks(tmp_path, feed_server) -> None:
    url = feed_server.serve(SHOP, "shopify-all.atom")
    config = write_feed_project(tmp_path, url, "repost_on: [price_drop]")
    clock = FakeClock(at("2026-03-01T10:00:00+00:00"))
    dispatcher = dispatcher_for(config, clock)
    run(dispatcher)

    feed_server.serve(SHOP, shopify_price("shopify-all.atom", "35.00", "29.00"))  # the hat: 35 -> 29
    clock.set(at("2026-03-01T10:30:00+00:00"))
    run(dispatcher)
    feed_server.serve(SHOP, shopify_price("shopify-all.atom", "35.00", "39.00"))  # up again: not announced
    clock.set(at("2026-03-01T11:00:00+00:00"))
    run(dispatcher)
    feed_server.serve(SHOP, shopify_price("shopify-all.atom", "35.00", "29.00"))  # 29 again: announced already
    clock.set(at("2026-03-01T11:30:00+00:00"))
    run(dispatcher)
    feed_server.serve(SHOP, shopify_price("shopify-all.atom", "35.00", "25.00"))  # lower still: announced
    clock.set(at("2026-03-01T12:00:00+00:00"))
    run(dispatcher)

    social = texts(tmp_path, "social")
    assert [re.sub(TRACKED, "LINK", t) for t in social] == [
        "Price drop: Chunky knit hat now $29.00 (was $35.00) LINK",
        "Price drop: Chunky knit hat now $25.00 (was $29.00) LINK",  # the last price seen
    ]
    keys = [r.key for r in deliveries(dispatcher) if r.channel == "social"]
    assert [k.rsplit("|", 1)[1] for k in keys] == ["price_drop:29.00", "price_drop:25.00"]


def test_without_repost_on_a_changed_entry_is_never_posted_again(tmp_path, feed_server) -> None:
    url = feed_server.serve("/feed/", "wordpress-blog.rss")
    config = write_feed_project(tmp_path, url, "backfill: 1")
    clock = FakeClock(at("2026-03-01T10:00:00+00:00"))
    dispatcher = dispatcher_for(config, clock)
    run(dispatcher)  # backfill: 1 posts the newest article only
    assert [re.sub(TRACKED, "LINK", t) for t in texts(tmp_path, "social")] == [
        "New: How to wash merino without shrinking it LINK"]

    feed_server.serve("/feed/", "wordpress-blog-2.rss")  # a new article, and the old one's title edited
    clock.set(at("2026-03-01T10:30:00+00:00"))
    run(dispatcher)
    assert [re.sub(TRACKED, "LINK", t) for t in texts(tmp_path, "social")] == [
        "New: How to wash merino without shrinking it LINK", "New: Free pattern: the Fjord cowl LINK"]
    forum = outbox(tmp_path, "forum")[1]["text"]
    assert "A weekend project for beginners: one skein, two needles & a cosy cowl." in forum
    assert "![](https://blog.example.com/wp-content/uploads/2026/03/cowl.jpg)" in forum
    assert forum.endswith("(Patterns, free pattern)")


def test_cap_per_slot_queues_the_rest_for_later_slots_oldest_first(tmp_path, feed_server) -> None:
    url = feed_server.serve("/feed/", rss(("a", "Alpaca socks")))
    config = write_feed_project(tmp_path, url, "cap: 2")
    clock = FakeClock(at("2026-03-01T10:00:00+00:00"))
    dispatcher = dispatcher_for(config, clock)
    run(dispatcher)
    feed_server.serve("/feed/", rss(("f", "Felt slippers"), ("e", "Eyelet shawl"), ("d", "Dye kit"),
                                    ("c", "Cowl"), ("b", "Beanie"), ("a", "Alpaca socks")))
    for moment in ("10:30", "11:00", "11:30", "12:00"):
        clock.set(at(f"2026-03-01T{moment}:00+00:00"))
        run(dispatcher)
    social = [(r.slot_at.strftime("%H:%M"), r.status) for r in deliveries(dispatcher) if r.channel == "social"]
    assert social == [("10:30", S.SENT), ("10:30", S.SENT), ("11:00", S.SENT), ("11:00", S.SENT),
                      ("11:30", S.SENT)]
    assert [re.sub(f" {TRACKED}", "", t) for t in texts(tmp_path, "social")] == [
        "New: Beanie", "New: Cowl", "New: Dye kit", "New: Eyelet shawl", "New: Felt slippers"]
    assert all(q.released_at is not None for q in queued(dispatcher))


def test_entries_wait_for_the_allowed_posting_times(tmp_path, feed_server) -> None:
    url = feed_server.serve("/feed/", rss(("a", "Alpaca socks")))
    config = write_feed_project(tmp_path, url, """
        cap: 1
        schedule:
          - cron: "0 9,17 * * 1-5"
    """)
    clock = FakeClock(at("2026-03-06T16:00:00+00:00"))  # a Friday
    dispatcher = dispatcher_for(config, clock)
    run(dispatcher)
    feed_server.serve("/feed/", rss(("c", "Cowl"), ("b", "Beanie"), ("a", "Alpaca socks")))
    clock.set(at("2026-03-06T16:30:00+00:00"))
    run(dispatcher)  # found, but not a posting time
    assert deliveries(dispatcher) == []
    for moment in ("2026-03-06T17:00:00", "2026-03-06T17:30:00", "2026-03-07T09:00:00", "2026-03-09T09:00:00"):
        clock.set(at(moment + "+00:00"))
        run(dispatcher)
    slots = [r.slot_at.isoformat() for r in deliveries(dispatcher) if r.channel == "social"]
    assert slots == ["2026-03-06T17:00:00+00:00", "2026-03-09T09:00:00+00:00"]  # no weekend post


def test_an_outage_longer_than_the_grace_delays_entries_instead_of_bursting(tmp_path, feed_server) -> None:
    url = feed_server.serve("/feed/", rss(("a", "Alpaca socks")))
    config = write_feed_project(tmp_path, url, "cap: 1")
    clock = FakeClock(at("2026-03-01T10:00:00+00:00"))
    dispatcher = dispatcher_for(config, clock)
    run(dispatcher)
    feed_server.serve("/feed/", rss(("e", "Eyelet shawl"), ("d", "Dye kit"), ("c", "Cowl"), ("b", "Beanie"),
                                    ("a", "Alpaca socks")))
    clock.set(at("2026-03-01T10:30:00+00:00"))
    dispatcher = dispatcher_for(config, clock)
    asyncio_poll_only(dispatcher)  # polled and queued, then the daemon was down for a day
    clock.set(at("2026-03-02T10:40:00+00:00"))
    dispatcher = dispatcher_for(config, clock)
    run(dispatcher)
    rows = [(r.slot_at.isoformat(), r.status) for r in deliveries(dispatcher) if r.channel == "social"]
    # the poll of yesterday 10:30 is far beyond the 1h misfire_grace: only today's poll is a slot, for one entry
    assert rows == [("2026-03-02T10:40:00+00:00", S.SENT)]
    assert [re.sub(f" {TRACKED}", "", t) for t in texts(tmp_path, "social")] == ["New: Beanie"]
    assert len([q for q in queued(dispatcher) if q.channel == "social" and q.released_at is None]) == 3


def asyncio_poll_only(dispatcher) -> None:  # type: ignore[no-untyped-def]
    import asyncio

    asyncio.run(dispatcher.poll_feeds())


def test_restart_between_polls_loses_nothing_and_duplicates_nothing(tmp_path, feed_server) -> None:
    url = feed_server.serve(SHOP, "shopify-all.atom")
    config = write_feed_project(tmp_path, url, "repost_on: [price_drop]")
    clock = FakeClock(at("2026-03-01T10:00:00+00:00"))
    run(dispatcher_for(config, clock))  # process 1: first poll
    feed_server.serve(SHOP, "shopify-all-2.atom")
    clock.set(at("2026-03-01T10:30:00+00:00"))
    asyncio_poll_only(dispatcher_for(config, clock))  # process 2: polls and queues, dies before sending
    clock.set(at("2026-03-01T10:31:00+00:00"))
    run(dispatcher_for(config, clock))  # process 3: releases and sends
    clock.set(at("2026-03-01T11:00:00+00:00"))
    run(dispatcher_for(config, clock))  # process 4: 304, nothing new
    clock.set(at("2026-03-01T11:30:00+00:00"))
    dispatcher = dispatcher_for(config, clock)
    run(dispatcher)
    social = [re.sub(f" {TRACKED}", "", t) for t in texts(tmp_path, "social")]
    assert sorted(social) == ["New: Lambswool mittens for $29.00",
                              "Price drop: Merino scarf now $39.00 (was $45.00)"]
    assert len(outbox(tmp_path, "forum")) == 2
    assert [r.status for r in deliveries(dispatcher)] == [S.SENT] * 4
    assert feed_server.statuses(SHOP) == [200, 200, 304, 304]


def test_a_paused_campaign_neither_polls_nor_posts_and_queued_entries_wait(tmp_path, feed_server) -> None:
    url = feed_server.serve("/feed/", rss(("a", "Alpaca socks")))
    config = write_feed_project(tmp_path, url)
    clock = FakeClock(at("2026-03-01T10:00:00+00:00"))
    run(dispatcher_for(config, clock))
    feed_server.serve("/feed/", rss(("b", "Beanie"), ("a", "Alpaca socks")))
    clock.set(at("2026-03-01T10:30:00+00:00"))
    asyncio_poll_only(dispatcher_for(config, clock))
    write_feed_project(tmp_path, url, status="paused")
    clock.set(at("2026-03-01T11:00:00+00:00"))
    dispatcher = dispatcher_for(config, clock)
    run(dispatcher)
    assert deliveries(dispatcher) == [] and feed_server.statuses("/feed/") == [200, 200]
    write_feed_project(tmp_path, url)
    clock.set(at("2026-03-01T12:00:00+00:00"))
    dispatcher = dispatcher_for(config, clock)
    run(dispatcher)
    assert [re.sub(f" {TRACKED}", "", t) for t in texts(tmp_path, "social")] == ["New: Beanie"]


@pytest.mark.parametrize(("filters", "posted"), [
    ("categories: [hats, gloves]", ["Chunky knitted hat", "Lambswool mittens"]),
    ("tags: [LAMBSWOOL]", ["Lambswool mittens"]),
    ("min_price: 30", ["Chunky knitted hat", "Merino scarf"]),
    ("max_price: 30", ["Lambswool mittens"]),
    ("title: '^chunky'", ["Chunky knitted hat"]),
])
def test_filters_choose_what_is_posted(tmp_path, feed_server, filters, posted) -> None:
    document = (tmp_path / "first.atom")
    from tests.feeds.server import FEEDS

    # the first poll knows only the gift card, so the hat and the mittens are new at the second
    body = (FEEDS / "shopify-all.atom").read_text(encoding="utf-8")
    start, end = body.index("  <entry>"), body.rindex("  <entry>")
    document.write_bytes((body[:start] + body[end:]).encode())
    url = feed_server.serve(SHOP, document.read_bytes())
    config = write_feed_project(tmp_path, url, f"filters: {{{filters}}}")
    clock = FakeClock(at("2026-03-01T10:00:00+00:00"))
    dispatcher = dispatcher_for(config, clock)
    run(dispatcher)
    feed_server.serve(SHOP, "shopify-all-2.atom")
    clock.set(at("2026-03-01T10:30:00+00:00"))
    run(dispatcher)
    titles = [re.sub(r"^New: (.*?)( for .*)? https://.*$", r"\1", t) for t in texts(tmp_path, "social")]
    assert sorted(titles) == posted


def test_entries_without_guids_and_with_duplicate_guids_are_posted_once(tmp_path, feed_server) -> None:
    from tests.feeds.server import FEEDS

    url = feed_server.serve("/feed/", "duplicate-guids.rss")
    config = write_feed_project(tmp_path, url)
    clock = FakeClock(at("2026-03-01T10:00:00+00:00"))
    dispatcher = dispatcher_for(config, clock)
    run(dispatcher)
    body = (FEEDS / "duplicate-guids.rss").read_text(encoding="utf-8")
    added = body.replace("\t<item>", "\t<item>\n\t\t<title>Open studio</title>\n\t\t<link>"
                         "https://blog.example.com/open-studio/</link>\n\t\t<guid>https://blog.example.com/</guid>"
                         "\n\t</item>\n\t<item>", 1)
    feed_server.serve("/feed/", added.encode())
    for moment in ("10:30", "11:00"):
        clock.set(at(f"2026-03-01T{moment}:00+00:00"))
        feed_server.serve("/feed/", added.encode() + b"\n" * (moment == "11:00"))  # a new ETag, same entries
        run(dispatcher)
    assert [re.sub(f" {TRACKED}", "", t) for t in texts(tmp_path, "social")] == ["New: Open studio"]

    url2 = feed_server.serve("/noguid/", "missing-guids.rss")
    config = write_feed_project(tmp_path, url2)
    dispatcher = dispatcher_for(config, clock)
    run(dispatcher)
    body = (FEEDS / "missing-guids.rss").read_text(encoding="utf-8")
    edited = body.replace("<title>Lace shawl</title>", "<title>Lace shawl, hand-dyed</title>")
    feed_server.serve("/noguid/", edited.encode())
    clock.set(at("2026-03-01T11:30:00+00:00"))
    run(dispatcher)
    assert len(texts(tmp_path, "social")) == 1  # identified by its link, the edited shawl is not new


def test_quiet_hours_hold_entries_until_a_poll_outside_them(tmp_path, feed_server) -> None:
    url = feed_server.serve("/feed/", rss(("a", "Alpaca socks")))
    config = write_feed_project(tmp_path, url)
    campaign = tmp_path / "campaigns" / "shop.yaml"
    campaign.write_text(campaign.read_text().replace("        template: social.j2\n",
                                                     "        template: social.j2\n        quiet_hours: "
                                                     "['22:00-08:00']\n"))
    clock = FakeClock(at("2026-03-01T21:30:00+00:00"))
    dispatcher = dispatcher_for(config, clock)
    run(dispatcher)
    feed_server.serve("/feed/", rss(("b", "Beanie"), ("a", "Alpaca socks")))
    for moment in ("2026-03-01T22:00:00", "2026-03-01T23:30:00", "2026-03-02T07:30:00", "2026-03-02T08:00:00"):
        clock.set(at(moment + "+00:00"))
        run(dispatcher)
    sent = {r.channel: r.slot_at.isoformat() for r in deliveries(dispatcher)}
    assert sent == {"forum": "2026-03-01T22:00:00+00:00", "social": "2026-03-02T08:00:00+00:00"}


def test_feed_posts_do_not_move_the_rotation_of_scheduled_items(tmp_path, feed_server) -> None:
    url = feed_server.serve("/feed/", rss(("a", "Alpaca socks")))
    config = write_feed_project(tmp_path, url)
    campaign = tmp_path / "campaigns" / "shop.yaml"
    campaign.write_text(campaign.read_text() + (
        "items:\n  - {id: one, name: Item one, url: /products/one}\n  - {id: two, name: Item two, url: /products/two}\n"
        "schedule:\n  - cron: '15 * * * *'\nchannels:\n  - channel: social\n    template: item.j2\n"))
    (tmp_path / "templates" / "item.j2").write_text("Scheduled: {{ item.name }}\n")
    clock = FakeClock(at("2026-03-01T10:00:00+00:00"))
    dispatcher = dispatcher_for(config, clock)
    run(dispatcher)
    feed_server.serve("/feed/", rss(("c", "Cowl"), ("b", "Beanie"), ("a", "Alpaca socks")))
    for moment in ("10:15", "10:30", "11:00", "11:15", "12:00", "12:15"):
        clock.set(at(f"2026-03-01T{moment}:00+00:00"))
        run(dispatcher)
    social = [re.sub(f" {TRACKED}", "", t) for t in texts(tmp_path, "social")]
    assert social == ["Scheduled: Item one", "New: Beanie", "New: Cowl", "Scheduled: Item two",
                      "Scheduled: Item one"]


def test_two_daemons_poll_a_due_feed_once_and_a_dead_pollers_claim_expires(tmp_path, feed_server) -> None:
    import asyncio
    from datetime import timedelta

    from drainage.feeds.poller import POLL_LEASE, FeedPoller
    from drainage.project import load_project

    url = feed_server.serve(SHOP, "shopify-all.atom")
    config = write_feed_project(tmp_path, url)
    clock = FakeClock(at("2026-03-01T10:00:00+00:00"))
    project = load_project(config)
    engine = dispatcher_for(config, clock).engine
    first, second = FeedPoller(engine, clock), FeedPoller(engine, clock)

    async def both() -> list[str]:
        results = await asyncio.gather(first.poll_due(project), second.poll_due(project))
        return sorted(r.status for rs in results for r in rs)

    assert asyncio.run(both()) == ["fetched", "skipped"]
    assert len(feed_server.statuses(SHOP)) == 1  # the feed was fetched by one daemon only
    clock.advance(hours=1)  # due again: still one fetch between the two
    assert asyncio.run(both()) == ["not modified", "skipped"]
    assert len(feed_server.statuses(SHOP)) == 2
    clock.advance(hours=1)
    [campaign] = project.campaigns.values()
    assert first._claim(campaign.id, url, clock.now())  # a daemon claims the poll, then dies
    assert asyncio.run(second.poll_due(project)) == []  # not due for anyone while the claim holds
    clock.advance(seconds=POLL_LEASE.total_seconds() + 1)
    assert [r.status for r in asyncio.run(second.poll_due(project))] == ["not modified"]  # taken over
    assert timedelta(0) < POLL_LEASE
