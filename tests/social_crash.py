"""Kill trials on a social channel: the real daemon posting to a slow fake Telegram is SIGKILLed again and again.

Used by tests/channels/test_social_crash.py and by bench/crash_trials.py --platform telegram.
"""

from __future__ import annotations

import random
import signal
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlmodel import select

from drainage.store.db import make_engine, session
from drainage.store.migrate import ensure_schema
from drainage.store.models import Cursor, Delivery
from drainage.store.models import DeliveryStatus as S
from tests.daemon_process import DRAINAGE, start
from tests.databases import database_url
from tests.fake_platform import FakePlatform
from tests.project_files import config_yaml
from tests.waiting import eventually

TOKEN = "123456:AAFakeTokenThatMustNeverBeLogged"


@dataclass
class Trials:
    kills: int = 0
    while_preparing: int = 0  # kills that left a row `preparing`
    while_sending: int = 0  # kills that left a row `sending`
    most_sending: int = 0  # the most rows `sending` one kill left
    statuses: Counter[str] = field(default_factory=Counter)
    duplicates: dict[str, int] = field(default_factory=dict)


def telegram_config(root: Path, fake: FakePlatform, rate_limit: str = "1000/minute") -> str:
    """config.yaml of a real daemon posting to the fake Telegram (token from $TG_TOKEN, no tracker)."""
    return config_yaml(root, store={"name": "Telegram test store"}, tracker={"enabled": False},
                       daemon={"sweep_every": "1s", "shutdown_timeout": "10s"},
                       channels={"tg": {"type": "telegram", "token": "${TG_TOKEN}", "chat_id": "@northwind",
                                        "base_url": f"{fake.base_url}/bot", "rate_limit": rate_limit}})


def write_project(root: Path, fake: FakePlatform, posts: int) -> None:
    (root / "campaigns").mkdir(parents=True)
    (root / "templates").mkdir()
    (root / "templates" / "post.j2").write_text("{{ item.name }} {{ link(item) }}\n")
    (root / "config.yaml").write_text(telegram_config(root, fake))
    slot = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=5)
    items = "".join(f"  - id: p{n}\n    name: Product {n}\n    url: /products/{n}\n" for n in range(posts))
    (root / "campaigns" / "crash.yaml").write_text(
        f"title: Crash\nrotation: all\nmisfire_grace: 1h\non_unknown: skip\nitems:\n{items}schedule:\n"
        f"  - at: {slot:%Y-%m-%dT%H:%M:%S+00:00}\nchannels:\n  - channel: tg\n    template: post.j2\n")
    engine = make_engine(database_url(root))
    ensure_schema(engine)
    with session(engine) as s:
        s.add(Cursor(campaign="crash", channel="tg", until=slot - timedelta(minutes=1)))
        s.commit()
    engine.dispose()


def _rows(root: Path) -> list[Delivery]:
    engine = make_engine(database_url(root))
    with session(engine) as s:
        rows = list(s.exec(select(Delivery)).all())
    engine.dispose()
    return rows


def kill_trials(root: Path, fake: FakePlatform, kills: int, posts: int, seed: int = 0) -> Trials:
    """SIGKILL the daemon `kills` times at random moments while it sends (getMe slow, sendMessage slower
    than a local platform), then let one `run --once` settle; count what each kill left behind."""
    rng = random.Random(seed)
    write_project(root, fake, posts)
    fake.set_delay("telegram:getMe", 0.3)  # building the bot and checking the token takes time
    fake.set_delay("telegram:sendMessage", 0.1)
    trials = Trials()
    for _ in range(kills):
        seen = len(fake.received("telegram"))
        proc = start(root)
        try:
            eventually(lambda p=proc, n=seen: len(fake.received("telegram")) > n or p.poll() is not None, timeout=60,
                       what="the daemon to call Telegram")
            time.sleep(rng.uniform(0, 0.5))
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        trials.kills += 1
        left = Counter(r.status for r in _rows(root))
        trials.while_preparing += left[S.PREPARING] > 0
        trials.while_sending += left[S.SENDING] > 0
        trials.most_sending = max(trials.most_sending, left[S.SENDING])
    fake.set_delay("telegram:getMe", 0)
    fake.set_delay("telegram:sendMessage", 0)
    final = subprocess.run([*DRAINAGE, "run", "--once"], cwd=root, capture_output=True, timeout=300)
    if final.returncode != 0:
        raise AssertionError(f"final run failed: {final.stderr.decode()[-2000:]}")
    trials.statuses = Counter(r.status for r in _rows(root))
    shown = Counter(p["shown"] for p in fake.posts("telegram"))
    trials.duplicates = {text: n for text, n in shown.items() if n > 1}
    return trials
