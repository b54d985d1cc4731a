"""Polling against a real local server: conditional GET, errors with their reasons, backoff, and the last good
state kept when a feed breaks."""

from __future__ import annotations

import asyncio
import socket
from datetime import datetime, timedelta

import pytest

from drainage.clock import FakeClock
from drainage.feeds import fetch as fetch_module
from drainage.feeds.fetch import FeedError, fetch, new_client, retry_after
from tests.feeds.helpers import deliveries, dispatcher_for, feed_state, run, texts, write_feed_project

T0 = datetime.fromisoformat("2026-03-01T10:00:00+00:00")


def poll(dispatcher) -> list:  # type: ignore[no-untyped-def]
    return asyncio.run(dispatcher.poll_feeds())


def start(tmp_path, feed_server, document: str = "wordpress-blog.rss", options: str = "", **serve):  # type: ignore[no-untyped-def]
    url = feed_server.serve("/feed/", document, **serve)
    config = write_feed_project(tmp_path, url, options)
    clock = FakeClock(T0)
    dispatcher = dispatcher_for(config, clock)
    run(dispatcher)
    return url, clock, dispatcher


@pytest.mark.parametrize(("status", "headers", "error", "wait"), [
    (500, {}, "HTTP 500 Internal Server Error", timedelta(hours=1)),
    (404, {}, "HTTP 404 Not Found: check the feed URL", timedelta(hours=1)),
    (429, {"Retry-After": "7200"}, "HTTP 429 Too Many Requests", timedelta(hours=2)),
    (503, {"Retry-After": "60"}, "HTTP 503 Service Unavailable", timedelta(hours=1)),
])
def test_an_http_error_is_recorded_with_its_reason_and_backs_off(tmp_path, feed_server, status, headers, error,
                                                                  wait) -> None:
    url, clock, dispatcher = start(tmp_path, feed_server)
    good = feed_state(dispatcher, url)
    feed_server.fail("/feed/", status, headers)
    clock.set(T0 + timedelta(minutes=30))
    (result,) = poll(dispatcher)
    state = feed_state(dispatcher, url)
    assert (result.status, result.error) == ("failed", error)
    assert (state.errors, state.error) == (1, error)
    assert state.next_poll_at == clock.now() + wait
    assert (state.etag, state.last_modified, state.ok_at) == (good.etag, good.last_modified, good.ok_at)
    clock.set(state.next_poll_at - timedelta(seconds=1))
    assert poll(dispatcher) == []  # backing off: not polled before its time


def test_backoff_doubles_and_a_good_poll_resets_it(tmp_path, feed_server) -> None:
    url, clock, dispatcher = start(tmp_path, feed_server)
    feed_server.fail("/feed/", 502)
    waits = []
    clock.set(T0 + timedelta(minutes=30))
    for _ in range(7):
        poll(dispatcher)
        state = feed_state(dispatcher, url)
        waits.append(state.next_poll_at - clock.now())
        clock.set(state.next_poll_at)
    assert waits == [timedelta(hours=h) for h in (1, 2, 4, 8, 16, 24, 24)]
    feed_server.heal("/feed/")
    poll(dispatcher)
    state = feed_state(dispatcher, url)
    assert (state.errors, state.error) == (0, None)
    assert state.next_poll_at - clock.now() <= timedelta(minutes=30)


def test_a_malformed_document_keeps_the_last_good_state_and_posts_nothing(tmp_path, feed_server) -> None:
    url, clock, dispatcher = start(tmp_path, feed_server)
    good = feed_state(dispatcher, url)
    feed_server.serve("/feed/", "broken-xml.rss")
    clock.set(T0 + timedelta(minutes=30))
    run(dispatcher)
    state = feed_state(dispatcher, url)
    assert state.error == "malformed feed: mismatched tag at line 10, column 4"
    assert (state.etag, state.last_modified, state.entries, state.errors) == (
        good.etag, good.last_modified, good.entries, 1)
    assert deliveries(dispatcher) == []
    feed_server.serve("/feed/", "wordpress-blog-2.rss")  # fixed, with one new article
    clock.set(state.next_poll_at)
    run(dispatcher)
    assert [t.split(" https://")[0] for t in texts(tmp_path, "social")] == ["New: Free pattern: the Fjord cowl"]
    assert feed_state(dispatcher, url).error is None


def test_a_web_page_instead_of_a_feed_is_explained(tmp_path, feed_server) -> None:
    url, _, dispatcher = start(tmp_path, feed_server, "not-a-feed.html")
    state = feed_state(dispatcher, url)
    assert state.error == ("not an RSS or Atom feed: the URL returns an HTML page (look for the feed's own URL, "
                           "e.g. /collections/all.atom or /feed/)")
    assert state.ok_at is None  # never baselined: the first good poll will record, not post


def test_a_slow_feed_times_out(tmp_path, feed_server) -> None:
    _, clock, dispatcher = start(tmp_path, feed_server, options="timeout: 1s")
    feed_server.delay("/feed/", 3)
    clock.set(T0 + timedelta(minutes=30))
    (result,) = poll(dispatcher)
    assert result.error == "timed out after 1s"


def test_a_refused_connection_is_reported(tmp_path, feed_server) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = write_feed_project(tmp_path, f"http://127.0.0.1:{port}/feed/")
    dispatcher = dispatcher_for(config, FakeClock(T0))
    (result,) = poll(dispatcher)
    assert result.error is not None and result.error.startswith("cannot fetch: ConnectError: ")


def test_last_modified_alone_makes_a_conditional_get(tmp_path, feed_server) -> None:
    url, clock, dispatcher = start(tmp_path, feed_server, etag=False)
    clock.set(T0 + timedelta(minutes=30))
    (result,) = poll(dispatcher)
    assert result.status == "not modified"
    request = feed_server.requests[-1]
    assert "if-none-match" not in request.headers
    assert request.headers["if-modified-since"] == feed_state(dispatcher, url).last_modified
    assert feed_server.statuses("/feed/") == [200, 304]


def test_an_oversized_document_is_refused(feed_server, monkeypatch) -> None:
    monkeypatch.setattr(fetch_module, "MAX_BYTES", 1024)
    url = feed_server.serve("/feed/", "wordpress-blog.rss")

    async def get() -> None:
        async with new_client() as client:
            await fetch(client, url, timeout=5)

    with pytest.raises(FeedError, match="the document is larger than 1024 bytes"):
        asyncio.run(get())


def test_retry_after_reads_seconds_and_http_dates() -> None:
    now = datetime.fromisoformat("2026-03-01T10:00:00+00:00")
    assert retry_after("120") == 120
    assert retry_after("Sun, 01 Mar 2026 10:05:00 GMT", now) == 300
    assert retry_after("soon") is None and retry_after(None) is None
