"""Hostile and messy feeds: entity bombs refused, parsing bounded in time and memory, each feed polled on its
own, entries that cannot make a good post skipped with the reason, and what `validate`, `feeds check` and
`feeds status` say about them."""

from __future__ import annotations

import asyncio
import os
import re
from datetime import UTC, datetime

import pytest

from drainage.clock import FakeClock
from drainage.feeds.entries import read_document
from drainage.feeds.parse import FeedError
from drainage.feeds.sandbox import ParserPool
from tests.feeds.helpers import dispatcher_for, feed_state, outbox, run, texts, write_feed_project
from tests.feeds.hostile import big_feed, entity_bomb, item, rss
from tests.feeds.server import FEEDS
from tests.waiting import eventually_async

URL = "https://shop.example.com/feed/"
REFUSED = ("the document declares entities (<!ENTITY ...>): refused, as entity expansion can exhaust memory; no "
           "RSS or Atom feed needs one")


def test_a_document_declaring_entities_is_refused_before_any_parser_expands_them() -> None:
    with pytest.raises(FeedError) as caught:
        read_document(entity_bomb(), URL)
    assert str(caught.value) == REFUSED
    utf16 = entity_bomb(10).decode().replace('encoding="utf-8"', "").encode("utf-16")  # BOM-marked UTF-16
    with pytest.raises(FeedError, match=re.escape(REFUSED)):
        read_document(utf16, URL)


def test_a_declaration_commented_out_before_the_first_element_is_refused_too() -> None:
    # expat skips the comment, then feedparser's loose parser would find the declaration by its pattern
    body = entity_bomb(10).replace(b'<!ENTITY big "', b'<!--\n<!ENTITY big "').replace(b'\n<!ENTITY lol0',
                                                                                        b'-->\n<!ENTITY lol0')
    assert b"<!--\n<!ENTITY big" in body
    with pytest.raises(FeedError, match=re.escape(REFUSED)):
        read_document(body, URL)
    hidden = b"<![CDATA[\n" + entity_bomb(10)
    with pytest.raises(FeedError, match=re.escape(REFUSED)):
        read_document(hidden, URL)


def test_an_entity_declaration_quoted_in_cdata_or_a_comment_is_only_text() -> None:
    body = rss(item("p1", "XXE explained").replace(
        "</item>", "<description><![CDATA[<p>Write <!ENTITY x \"y\"> in a DTD</p>]]></description></item>"),
        "<!-- <!ENTITY z 'not a declaration'> -->")
    (entry,) = read_document(body, URL).entries
    assert entry.summary == 'Write <!ENTITY x "y"> in a DTD'  # text of the post, not a declaration


def test_html_named_entities_read_as_feedparser_reads_them() -> None:
    body = rss(item("p1", "Caf&eacute; cr&egrave;me&nbsp;set &hellip; &amp; more"), title="Caf&eacute;")
    document = read_document(body, URL)
    assert document.title == "Café"
    assert document.entries[0].title == "Café crème set … & more"  # whitespace collapsed, as for every title
    # the store fields (read with ElementTree from the same bytes) survive an entity too
    shopify = (FEEDS / "shopify-all.atom").read_text(encoding="utf-8").replace("Merino scarf", "Merino&nbsp;scarf")
    scarf = read_document(shopify.encode(), "https://shop.example.com/collections/all.atom").entries[0]
    assert (scarf.title, scarf.price) == ("Merino scarf", 45.0)


def test_xhtml_and_html_titles_become_plain_text() -> None:
    atom = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Shop</title><id>urn:shop</id><updated>2026-03-01T12:00:00Z</updated>
<entry><id>urn:1</id><updated>2026-03-01T12:00:00Z</updated><link href="https://shop.example.com/products/1"/>
<title type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml">Wool <b>&amp;</b> silk scarf</div></title></entry>
<entry><id>urn:2</id><updated>2026-03-01T11:00:00Z</updated><link href="https://shop.example.com/products/2"/>
<title type="html">Mohair &lt;i&gt;cloud&lt;/i&gt; hat</title></entry>
</feed>"""
    assert [e.title for e in read_document(atom, URL).entries] == ["Wool & silk scarf", "Mohair cloud hat"]


def test_parsing_longer_than_the_time_limit_kills_the_worker_and_the_next_document_gets_a_new_one() -> None:
    pool = ParserPool(timeout=0.05, workers=1)
    try:
        pool.read_blocking(rss(item("warm-up", "Warm-up")), URL)  # the worker is started (not timed)
        (first,) = pool.pids()
        with pytest.raises(FeedError) as caught:
            pool.read_blocking(big_feed(20_000), URL)
        assert str(caught.value) == "parsing the document took longer than 0.05s: refused"
        assert pool.pids() == [] and not os.path.exists(f"/proc/{first}")
        pool.timeout = 60
        assert [e.title for e in pool.read_blocking(rss(item("p1", "Scarf")), URL).entries] == ["Scarf"]
        assert pool.pids() != [first]
    finally:
        pool.close()


def test_a_document_needing_more_memory_than_the_cap_is_refused_and_the_worker_replaced() -> None:
    pool = ParserPool(memory=16 * 2**20, workers=1)
    try:
        with pytest.raises(FeedError, match=r"^parsing the document (needed more than 16 MB|exhausted the parser's "
                                            r"memory or crashed it): refused$"):
            pool.read_blocking(big_feed(40_000), URL)
        assert [e.title for e in pool.read_blocking(rss(item("p1", "Scarf")), URL).entries] == ["Scarf"]
    finally:
        pool.close()


FORUM_WITH_AUTHOR = """\
**{{ entry.title }}** by {{ entry.author }}

{{ entry.link }}
"""


def test_entries_that_cannot_make_a_good_post_are_skipped_with_the_reason(tmp_path, feed_server, cli,
                                                                          monkeypatch) -> None:
    url = feed_server.serve("/feed/", rss(item("old", "Old scarf", author="Ann")))
    config = write_feed_project(tmp_path, url)
    (tmp_path / "templates" / "forum.j2").write_text(FORUM_WITH_AUTHOR)
    clock = FakeClock(datetime(2026, 3, 1, 10, tzinfo=UTC))
    dispatcher = dispatcher_for(config, clock)
    run(dispatcher)  # first poll: recorded
    feed_server.serve("/feed/", rss(
        item("good", "Good hat", author="Ann", hour=13),
        item("no-link", "Gift card", link=None, author="Ann", hour=14),
        item("no-title", "", author="Ann", hour=15),
        item("not-web", "Mittens", link="mailto:shop@example.com", author="Ann", hour=16),
        item("no-author", "Lambswool socks", hour=17),
        item("old", "Old scarf", author="Ann")))
    clock.set(datetime(2026, 3, 1, 10, 30, tzinfo=UTC))
    run(dispatcher)

    assert [t.split(" https://")[0] for t in texts(tmp_path, "social")] == ["New: Good hat"]
    assert [r["text"].splitlines()[0] for r in outbox(tmp_path, "forum")] == ["**Good hat** by Ann"]
    every = [text for channel in ("social", "forum") for text in texts(tmp_path, channel)]
    assert not any("None" in text for text in every)

    monkeypatch.chdir(tmp_path)
    status = cli("feeds", "status")
    assert status.exit_code == 0, status.output
    lines = status.output.splitlines()
    assert lines[3] == "  4 entries skipped, never posted (newest first):"
    assert sorted(lines[4:]) == [  # one poll saw them all: in any order
        "    Gift card: skipped: no link: the post would send readers nowhere",
        "    Lambswool socks: skipped: templates/forum.j2:1: 'entry.author' is missing here and would print 'None'",
        "    Mittens: skipped: its link is not a web address: mailto:shop@example.com",
        "    id:no-title: skipped: no title: a post needs a headline",
    ]


def test_validate_catches_a_template_that_would_print_none_and_warns_of_a_feed_off_the_stores_hosts(
        tmp_path, feed_server, cli, monkeypatch) -> None:
    url = feed_server.serve("/feed/", "wordpress-blog.rss")
    write_feed_project(tmp_path, url)
    (tmp_path / "templates" / "forum.j2").write_text(FORUM_WITH_AUTHOR)
    monkeypatch.chdir(tmp_path)
    result = cli("validate")
    assert result.exit_code == 2
    lines = result.output.splitlines()
    assert lines[0] == (
        "warning: campaigns/shop.yaml:5:10: feed host '127.0.0.1' is not one of the store's hosts (shop.example.com, "
        "blog.example.com): its entries' posts fail if their links point there too (if the feed and its links are "
        "yours, add the host to store.link_hosts in config.yaml)")
    assert " ".join(lines[1:]).startswith(
        "templates/forum.j2:1: 'entry.author' is missing here and would print 'None' (while rendering "
        f"campaigns/shop.yaml: channel 'forum', feed '{url}', sample entry (with only a title and a link)) (test it "
        "first, e.g. {% if entry.author %}{{ entry.author }}{% endif %})")


def test_a_feed_timeout_is_bounded(tmp_path, feed_server, cli, monkeypatch) -> None:
    url = feed_server.serve("/feed/", "wordpress-blog.rss")
    write_feed_project(tmp_path, url, "timeout: 5m")
    monkeypatch.chdir(tmp_path)
    result = cli("validate")
    assert result.exit_code == 2
    assert "'5m' is not between 1s and the longest feed timeout, 2m" in result.output


def test_feeds_check_shows_which_entries_go_at_the_next_slot_and_which_wait(tmp_path, feed_server, cli,
                                                                            monkeypatch) -> None:
    url = feed_server.serve("/feed/", rss(item("old", "Old scarf")))
    config = write_feed_project(tmp_path, url, "cap: 2")
    run(dispatcher_for(config, FakeClock(datetime(2026, 3, 1, 10, tzinfo=UTC))))
    feed_server.serve("/feed/", rss(*(item(f"p{n}", f"Product {n}", hour=10 + n) for n in range(5)),
                                    item("old", "Old scarf")))
    monkeypatch.chdir(tmp_path)
    result = cli("feeds", "check", url)
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    going = re.findall(r"Product (\d) │ \S+ \S+ UTC │ - │ POST at (\S+ \S+) UTC: new entry", text)
    waiting = re.findall(r"Product (\d) │ \S+ \S+ UTC │ - │ WAITS for (\S+ \S+) UTC \(cap 2 per slot\): new entry",
                         text)
    assert sorted(n for n, _ in going) == ["0", "1"]  # the oldest two
    assert sorted(n for n, _ in waiting) == ["2", "3", "4"]
    first, = {at for _, at in going}
    later = sorted({at for _, at in waiting})
    assert len(later) == 2 and first < later[0] < later[1]  # two, then one more slot


def test_one_slow_feed_does_not_hold_up_another_campaigns_feed(tmp_path, feed_server) -> None:
    fast = feed_server.serve("/fast/", "wordpress-blog.rss")
    slow = feed_server.serve("/slow/", "wordpress-blog.rss")
    held = feed_server.hold("/slow/")
    config = write_feed_project(tmp_path, fast)
    shop = (tmp_path / "campaigns" / "shop.yaml").read_text()
    (tmp_path / "campaigns" / "slow.yaml").write_text(shop.replace(fast, slow).replace("title: New in the shop",
                                                                                         "title: Slow"))
    dispatcher = dispatcher_for(config, FakeClock(datetime(2026, 3, 1, 10, tzinfo=UTC)))
    results: list[str] = []

    async def main() -> None:
        assert dispatcher.feeds.start_due(dispatcher.project, lambda r: results.append(r.url)) == 2
        try:
            await eventually_async(lambda: fast in results, timeout=30, what="the fast feed's poll")
            assert results == [fast] and len(dispatcher.feeds.in_flight()) == 1  # the slow one is still waiting
            assert dispatcher.feeds.start_due(dispatcher.project, results.append) == 0  # not started twice
        finally:
            held.set()
        await eventually_async(lambda: len(results) >= 2, timeout=30, what="both polls")

    asyncio.run(main())
    assert sorted(results) == sorted([fast, slow])
    assert feed_state(dispatcher, fast).error is None and feed_state(dispatcher, slow, "slow").error is None
