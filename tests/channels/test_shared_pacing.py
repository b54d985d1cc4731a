"""Three real daemons on one database posting to one Telegram channel: its rate limit is shared, not tripled."""

from __future__ import annotations

import signal
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from drainage.store.db import make_engine
from drainage.store.migrate import ensure_schema
from drainage.store.models import Cursor
from tests.daemon_process import start
from tests.databases import database_url
from tests.fake_platform import FakePlatform
from tests.social_crash import TOKEN, telegram_config
from tests.waiting import eventually

POSTS, COUNT, PERIOD = 18, 3, 2.0


def write_project(root: Path, fake: FakePlatform, slot: datetime) -> None:
    (root / "campaigns").mkdir()
    (root / "templates").mkdir()
    (root / "templates" / "post.j2").write_text("{{ item.name }} {{ link(item) }}\n")
    (root / "config.yaml").write_text(telegram_config(root, fake, f"{COUNT}/{PERIOD:g}s"))
    items = "".join(f"  - id: p{n}\n    name: Product {n}\n    url: /products/{n}\n" for n in range(POSTS))
    (root / "campaigns" / "burst.yaml").write_text(
        f"title: Burst\nrotation: all\nitems:\n{items}schedule:\n  - at: {slot:%Y-%m-%dT%H:%M:%S+00:00}\n"
        "channels:\n  - channel: tg\n    template: post.j2\n")
    engine = make_engine(database_url(root))
    ensure_schema(engine)
    with engine.begin() as conn:
        conn.execute(Cursor.__table__.insert().values(campaign="burst", channel="tg",  # type: ignore[attr-defined]
                                                      until=slot - timedelta(minutes=1)))
    engine.dispose()


@pytest.mark.slow
def test_three_daemons_post_at_the_configured_rate_not_three_times_it(tmp_path, fake, monkeypatch) -> None:
    monkeypatch.setenv("TG_TOKEN", TOKEN)
    write_project(tmp_path, fake, datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=5))
    daemons = [start(tmp_path) for _ in range(3)]
    try:
        eventually(lambda: len(fake.posts("telegram")) >= POSTS, timeout=120, what="every post")
    finally:
        for proc in daemons:
            proc.send_signal(signal.SIGTERM)
        for proc in daemons:
            proc.wait(60)
    texts = Counter(p["shown"].split()[1] for p in fake.posts("telegram"))
    assert texts == {str(n): 1 for n in range(POSTS)}  # each once
    arrivals = sorted(r.at for r in fake.received("telegram", "/sendMessage"))
    # A sliding window of COUNT per PERIOD: the last of POSTS goes out at least (POSTS / COUNT - 1) periods after
    # the first (10 s here; three unshared limits would allow 2 s). One period of slack for the way to the fake.
    span = arrivals[-1] - arrivals[0]
    assert span >= (POSTS / COUNT - 1) * PERIOD - PERIOD, f"{POSTS} posts in {span:.1f} s"
    log = (tmp_path / "daemon.log").read_text()
    assert log.count("daemon.started") == 3 and "dispatch.error" not in log
