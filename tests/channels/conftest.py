"""Fixtures for channel tests: the fake platform server (one per session, reset for each test)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.fake_platform import FakePlatform, running_fake_platform

LOOPBACK = "127.0.0.1,localhost"


@pytest.fixture(scope="session")
def fake_platform_server() -> Iterator[FakePlatform]:
    saved = {name: os.environ.get(name) for name in ("NO_PROXY", "no_proxy")}
    os.environ["NO_PROXY"] = os.environ["no_proxy"] = LOOPBACK  # the clients must never go through a proxy
    try:
        with running_fake_platform() as platform:
            yield platform
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture
def fake(fake_platform_server: FakePlatform, monkeypatch: pytest.MonkeyPatch) -> FakePlatform:
    """The fake platform, with no requests, posts, faults or revoked credentials left from other tests."""
    monkeypatch.setenv("NO_PROXY", LOOPBACK)
    monkeypatch.setenv("no_proxy", LOOPBACK)
    fake_platform_server.reset()
    return fake_platform_server
