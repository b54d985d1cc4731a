"""Running the real daemon as a subprocess against the outbox: start, kill, restart, and what it posted.

Used by tests/test_daemon_process.py and by bench/crash_trials.py (more trials).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlmodel import select

from drainage.store.db import make_engine, session
from drainage.store.migrate import ensure_schema
from drainage.store.models import Cursor, Delivery
from tests.databases import database_url
from tests.project_files import config_yaml
from tests.project_files import write_project as write_project_files
from tests.waiting import eventually

DRAINAGE = [sys.executable, "-m", "drainage"]

CAMPAIGN = """\
title: Trial {name}
rotation: all
items:
{items}
schedule:
  - at: {at}
channels:
  - channel: box
    template: post.j2
"""


def write_project(root: Path, *, latency: float = 0.0, sweep: str = "1h", watch: bool = False) -> Path:
    config = config_yaml(root, store={"name": "Crash test store"}, tracker={"enabled": False},
                         daemon={"sweep_every": sweep, "shutdown_timeout": "10s", "watch": watch},
                         channels={"box": {"type": "outbox", "path": "outbox", "latency": latency}})
    return write_project_files(root, config,
                               templates={"post.j2": "{{ campaign.id }}: {{ item.name }} {{ link(item) }}\n"})


def add_campaign(root: Path, name: str, at: datetime, items: int, *, due_now: bool) -> None:
    """A campaign with one slot at `at` posting `items` posts; `due_now` makes the daemon treat it as
    already seen (a cursor before the slot), as after a restart."""
    lines = "\n".join(f"  - id: p{n}\n    name: Product {n}\n    url: /products/{n}" for n in range(items))
    local = at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    (root / "campaigns" / f"{name}.yaml").write_text(CAMPAIGN.format(name=name, items=lines, at=local))
    if due_now:
        engine = make_engine(database_url(root))
        ensure_schema(engine)
        with session(engine) as s:
            s.add(Cursor(campaign=name, channel="box", until=at - timedelta(minutes=10)))
            s.commit()
        engine.dispose()


def start(root: Path, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with open(root / "daemon.log", "ab") as log:  # the child keeps its own copy of the descriptor
        return subprocess.Popen([*DRAINAGE, "run", *args], cwd=root, env=env, stdout=subprocess.DEVNULL,
                                stderr=log)


def received(root: Path) -> list[dict]:
    """What the outbox platform received: whole JSON lines (a line torn by a kill was never received)."""
    path = root / "outbox" / "box.jsonl"
    if not path.exists():
        return []
    out = []
    for line in path.read_bytes().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


@dataclass
class CrashReport:
    trials: int
    posts: int
    duplicates: dict[str, int]
    not_final: list[str]
    missing: list[str]
    killed_mid_batch: int = 0


def crash_trials(root: Path, trials: int, items: int = 20, seed: int = 0) -> CrashReport:
    """Run `trials` daemon lives, each SIGKILLed at a random moment while dispatching a new batch of posts
    (one more fixed slot of a `rotation: all` campaign), then one clean `run --once`; report duplicates and
    posts neither sent nor recorded with a reason."""
    rng = random.Random(seed)
    mid_batch = 0
    write_project(root, latency=0.005)
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    slots = [base + timedelta(seconds=trial) for trial in range(trials)]
    for trial, slot in enumerate(slots):
        set_slots(root, "crash", slots[: trial + 1], items, seen_until=slots[max(0, trial - 1)])
        marker = f"|{slot.strftime('%Y-%m-%dT%H:%M:%SZ')}".encode()
        proc = start(root)
        try:
            eventually(lambda m=marker, p=proc: m in _outbox_bytes(root) or p.poll() is not None, timeout=30,
                       what=f"the daemon to start sending trial {trial}")
            time.sleep(rng.uniform(0, 0.2))
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        done = _outbox_bytes(root).count(marker)
        mid_batch += 0 < done < items
    final = subprocess.run([*DRAINAGE, "run", "--once"], cwd=root, capture_output=True, timeout=300)
    if final.returncode != 0:
        raise AssertionError(f"final run failed: {final.stderr.decode()[-2000:]}")
    keys = Counter(r["key"] for r in received(root))
    engine = make_engine(database_url(root))
    with session(engine) as s:
        rows = s.exec(select(Delivery)).all()
    engine.dispose()
    expected = {f"crash|box|p{n}|-|{slot.strftime('%Y-%m-%dT%H:%M:%SZ')}" for slot in slots for n in range(items)}
    return CrashReport(
        trials=trials, posts=sum(keys.values()),
        duplicates={k: c for k, c in keys.items() if c > 1},
        not_final=[f"{r.key}: {r.status} {r.error}" for r in rows
                   if r.status != "sent" and not (r.status in ("missed", "failed", "unknown") and r.error)],
        missing=sorted(expected - {r.key for r in rows}), killed_mid_batch=mid_batch)


def _outbox_bytes(root: Path) -> bytes:
    path = root / "outbox" / "box.jsonl"
    return path.read_bytes() if path.exists() else b""


def set_slots(root: Path, name: str, slots: list[datetime], items: int, *, seen_until: datetime) -> None:
    """A `rotation: all` campaign with fixed slots; the daemon's cursor is moved back to `seen_until` (never
    forward), as if the daemon had last run then."""
    items_yaml = "".join(f"  - id: p{n}\n    name: Product {n}\n    url: /products/{n}\n" for n in range(items))
    schedule = "".join(f"  - at: {s.strftime('%Y-%m-%dT%H:%M:%S+00:00')}\n" for s in slots)
    (root / "campaigns" / f"{name}.yaml").write_text(
        f"title: Crash trials\nrotation: all\nitems:\n{items_yaml}schedule:\n{schedule}"
        "channels:\n  - channel: box\n    template: post.j2\n")
    engine = make_engine(database_url(root))
    ensure_schema(engine)
    with session(engine) as s:
        cursor = s.get(Cursor, (name, "box")) or Cursor(campaign=name, channel="box", until=seen_until)
        cursor.until = min(cursor.until.replace(tzinfo=UTC), seen_until)
        s.add(cursor)
        s.commit()
    engine.dispose()
