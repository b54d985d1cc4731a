"""Fixtures for store-feed tests: a real local feed server, and a small project whose campaign polls it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.feeds.server import FeedServer


@pytest.fixture
def feed_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FeedServer]:
    """A feed server on 127.0.0.1 (proxies bypassed, so requests really go there)."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    with FeedServer().running() as server:
        yield server
