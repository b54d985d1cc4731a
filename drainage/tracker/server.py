"""Serving the tracker: uvicorn (uvloop + httptools), alone or as a child process of `drainage run`.

uvicorn is used rather than granian because it is driven from Python like the rest of drainage (the lifespan
that flushes clicks on SIGTERM, the same logging and signals); with uvloop and httptools its per-request cost
is the floor bench/tracker.py compares the tracker against (see the README for the figures).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import uvicorn
from sqlalchemy import Engine

from drainage.config import LoadedConfig
from drainage.logs import event
from drainage.tracker.app import Tracker

GC_THRESHOLD = 20_000
"""Allocations between two young-generation collections (CPython: 700)."""


def uvicorn_config(app: Tracker, host: str, port: int, proxy_ips: list[str]) -> uvicorn.Config:
    """The production server settings: fast parsers, no access log, proxy headers only from trusted peers."""
    return uvicorn.Config(app, host=host, port=port, loop="uvloop", http="httptools", lifespan="on",
                          access_log=False, server_header=False, proxy_headers=bool(proxy_ips),
                          forwarded_allow_ips=proxy_ips or None, timeout_keep_alive=5, timeout_graceful_shutdown=10,
                          log_level="warning", backlog=4096)


def serve(config: LoadedConfig, engine: Engine, host: str | None = None, port: int | None = None) -> None:
    """Run the tracker in this process until SIGTERM/SIGINT (which flush every buffered click)."""
    cfg = config.config.tracker
    tracker = Tracker(config, engine)
    server = uvicorn.Server(uvicorn_config(tracker, host or cfg.host, port or cfg.port, cfg.proxy_ips))
    tune_garbage_collector()
    server.run()


def tune_garbage_collector() -> None:
    """A redirect allocates a few dozen short-lived objects that reference counting frees; the cyclic collector
    only needs to run rarely, and never over the code and configuration loaded at start (frozen)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, 20, 20)


class TrackerProcess:
    """The tracker as a child of `drainage run`: its own process, so sends never slow a redirect.

    Restarted with a growing delay if it exits by itself; stopped with SIGTERM (it flushes its clicks).
    """

    def __init__(self, config_path: Path) -> None:
        self.config_path = config_path
        self.process: subprocess.Popen[bytes] | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._supervise(), name="tracker-process")

    def _spawn(self) -> subprocess.Popen[bytes]:
        command = [sys.executable, "-m", "drainage", "tracker", "--config", str(self.config_path)]
        return subprocess.Popen(command, env=os.environ.copy())

    async def _supervise(self) -> None:
        delay = 1.0
        while not self._stopping:
            self.process = self._spawn()
            event("tracker.spawned", pid=self.process.pid)
            code = await asyncio.to_thread(self.process.wait)
            if self._stopping:
                return
            event("tracker.exited", logging.ERROR, code=code, restart_in=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 60.0)

    async def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM the tracker and wait for it to write its clicks (SIGKILL after `timeout`)."""
        self._stopping = True
        process = self.process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(asyncio.to_thread(process.wait), timeout)
            except TimeoutError:
                process.kill()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
