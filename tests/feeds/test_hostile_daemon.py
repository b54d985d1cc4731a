"""The real daemon process polls an entity bomb and a feed that never answers beside a healthy campaign: the
healthy campaign's new entry is posted while the slow feed still hangs, the bomb is refused with the reason,
and neither the daemon nor its parser workers grow past 300 MB at their peak."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from drainage.store.db import make_engine, session
from drainage.store.models import FeedState
from tests.daemon_process import DRAINAGE
from tests.databases import database_url
from tests.feeds.helpers import texts
from tests.feeds.hostile import entity_bomb, item, rss
from tests.project_files import config_yaml, write_project
from tests.waiting import eventually

PEAK_LIMIT = 300 * 2**20

FEED = """\
  - url: {url}
    every: 1h
    backfill: {backfill}
    timeout: 2m
    channels:
      - channel: social
        template: social.j2
"""


def peak_bytes(pid: int) -> int:
    """VmHWM (peak resident memory) of a live process, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM for {pid}")


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(p) for p in (task / "children").read_text().split()]
    return found


@pytest.mark.slow
def test_an_entity_bomb_and_a_hanging_feed_do_not_delay_a_healthy_campaign_nor_grow_the_daemon(
        tmp_path, feed_server) -> None:
    if not Path("/proc/self/status").exists():
        pytest.skip("needs /proc to read peak memory")
    bomb = feed_server.serve("/bomb.rss", entity_bomb())
    assert 100_000 < len(entity_bomb()) < 120_000
    hanging = feed_server.serve("/hanging.rss", rss(item("h1", "Never seen")))
    held = feed_server.hold("/hanging.rss")
    healthy = feed_server.serve("/healthy.rss", rss(item("p1", "Merino scarf")))
    config = config_yaml(tmp_path, store={"name": "Northwind Knits"}, tracker={"enabled": False},
                         daemon={"sweep_every": "1s", "shutdown_timeout": "5s", "watch": False},
                         channels={"social": {"type": "outbox", "kind": "social"}})
    write_project(tmp_path, config, templates={"social.j2": "New: {{ entry.title }} {{ entry.link }}\n"}, campaigns={
        "hostile.yaml": "title: Hostile\nfeeds:\n" + FEED.format(url=bomb, backfill=5) + FEED.format(url=hanging,
                                                                                                     backfill=5),
        "healthy.yaml": "title: Healthy\nfeeds:\n" + FEED.format(url=healthy, backfill=1)})
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"}
    with open(tmp_path / "daemon.log", "wb") as log:
        daemon = subprocess.Popen([*DRAINAGE, "run"], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=log)
    engine = make_engine(database_url(tmp_path))
    try:
        def bomb_state() -> FeedState | None:
            with session(engine) as s:
                return s.get(FeedState, ("hostile", bomb))

        eventually(lambda: texts(tmp_path, "social") != [], timeout=60, what="the healthy campaign's post")
        eventually(lambda: (state := bomb_state()) is not None and state.error is not None, timeout=60,
                   what="the bomb's poll")
        assert daemon.poll() is None
        assert [t.split(" https://")[0] for t in texts(tmp_path, "social")] == ["New: Merino scarf"]
        assert not held.is_set()  # the hanging feed is still being fetched: it held up nothing
        state = bomb_state()
        assert state is not None and state.error == (
            "the document declares entities (<!ENTITY ...>): refused, as entity expansion can exhaust memory; no "
            "RSS or Atom feed needs one")
        peaks = {pid: peak_bytes(pid) for pid in [daemon.pid, *children(daemon.pid)]}
        assert sum(peaks.values()) < PEAK_LIMIT, peaks
    finally:
        held.set()
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(30)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
        engine.dispose()
    assert daemon.returncode == 0, (tmp_path / "daemon.log").read_text()[-3000:]
