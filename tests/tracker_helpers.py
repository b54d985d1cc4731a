"""Helpers for tracker tests: a config and database in a temp folder, links in it, and an in-process client."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from sqlmodel import select

from drainage.config import LoadedConfig, load_config
from drainage.links import tracked_link
from drainage.store.db import make_engine, session
from drainage.store.migrate import ensure_schema
from drainage.store.models import Click, Link
from drainage.tracker.app import Tracker
from tests.project_files import block, config_yaml, write_project
from tests.waiting import eventually

SECRET = "order-hook-secret-for-tests"

def write_config(root: Path, *, flush_every: str = "1h", batch_size: int = 100_000, extra: str = "",
                 writer: str | None = None) -> Path:
    """config.yaml of a tracker project; `extra`: more tracker keys as YAML text; `writer`: the click writer
    (default: a process, as in production; "thread" where the test is about the web surface, not the writer,
    since spawning a writer process costs about a second)."""
    return write_project(root, config_yaml(root, store={"name": "Northwind <Knits>"}, tracker={
        "flush_every": flush_every, "batch_size": batch_size, "order_secret": "${DRAINAGE_ORDER_SECRET:-}",
        **({"writer": writer} if writer else {}), **block(extra)}))


def load(root: Path, environ: dict[str, str] | None = None, **kwargs: Any) -> LoadedConfig:
    path = write_config(root, **kwargs)
    loaded, problems = load_config(path, "config.yaml", environ if environ is not None else
                                   {"DRAINAGE_ORDER_SECRET": SECRET})
    assert loaded is not None, problems
    return loaded


def add_link(config: LoadedConfig, target: str, campaign: str = "spring", channel: str = "social",
             item: str = "scarf", variant: str = "a") -> str:
    """Store a tracked link as the daemon would; return its code."""
    link = tracked_link(config.config.tracker.public_url, target, campaign, channel, item, variant)
    engine = make_engine(config.database_url)
    ensure_schema(engine)
    with session(engine) as s:
        if s.get(Link, link.code) is None:
            s.add(Link(code=link.code, target=target, campaign=campaign, channel=channel, item=item,
                       variant=variant))
            s.commit()
    engine.dispose()
    return link.code


def clicks(config: LoadedConfig) -> list[Click]:
    engine = make_engine(config.database_url)
    with session(engine) as s:
        rows = list(s.exec(select(Click).order_by(Click.id)).all())  # type: ignore[arg-type]
    engine.dispose()
    return rows


@asynccontextmanager
async def running(config: LoadedConfig) -> AsyncIterator[tuple[Tracker, httpx.AsyncClient]]:
    """The tracker app started (visitor key, click writer), with a client that calls it in-process."""
    engine = make_engine(config.database_url)
    ensure_schema(engine)
    tracker = Tracker(config, engine)
    await tracker.startup()
    transport = httpx.ASGITransport(app=tracker, client=("203.0.113.7", 50000))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="https://go.example.com") as client:
            yield tracker, client
    finally:
        await tracker.shutdown()
        engine.dispose()


def run(scenario: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    return asyncio.run(scenario())


# -- real server processes ---------------------------------------------------------------------------------------
def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_drainage(root: Path, *args: str, log_name: str = "tracker.log") -> subprocess.Popen[bytes]:
    """`python -m drainage ARGS` in `root`, in its own process group (so its children can be waited for)."""
    env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost", "DRAINAGE_ORDER_SECRET": SECRET}
    with open(root / log_name, "ab") as log:
        return subprocess.Popen([sys.executable, "-m", "drainage", *args], cwd=root, env=env,
                                stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)


HEALTHY_WITHIN = 120.0
"""Deadline for a server process to answer /healthz (a loaded two-core runner imports slowly)."""


def wait_healthy(base: str, proc: subprocess.Popen[bytes], root: Path, log_name: str = "tracker.log") -> None:
    """Wait until the server at `base` answers /healthz; fail with its log if the process ends first."""

    def healthy() -> bool:
        if proc.poll() is not None:
            raise AssertionError((root / log_name).read_text())
        try:
            return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    eventually(healthy, timeout=HEALTHY_WITHIN, interval=0.05, what=f"{base}/healthz to answer 200")


def group_gone(pgid: int) -> bool:
    """No process of the group `pgid` is left (a writer finishing its batch included)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass
    return False


def wait_group_gone(pgid: int, within: float = 60.0) -> None:
    eventually(lambda: group_gone(pgid), timeout=within, interval=0.05, what=f"every process of group {pgid} to end")
