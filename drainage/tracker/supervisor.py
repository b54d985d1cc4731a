"""The tracker as a child process of `drainage run`: spawned, restarted when it exits by itself, stopped with
SIGTERM (it writes every click it answered first). The daemon owns this; the tracker's server (`server`) is the
child's side.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

from drainage.logs import event

STOP_LIMIT = 600.0
"""Seconds the tracker spends at shutdown writing every click it answered, before it gives up and logs how many
are at risk."""
EXIT_PORT_IN_USE = 69
"""Exit status of a tracker whose port another process holds (EX_UNAVAILABLE): its supervisor does not retry."""
SUPERVISOR_ENV = "DRAINAGE_SUPERVISOR_PID"
"""Set by `drainage run` for its tracker: the process id the tracker must not outlive."""


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
        # the tracker ends with this process, even if it is SIGKILLed (see `die_with_parent`)
        return subprocess.Popen(command, env={**os.environ, SUPERVISOR_ENV: str(os.getpid())})

    async def _supervise(self) -> None:
        delay = 1.0
        while not self._stopping:
            self.process = self._spawn()
            event("tracker.spawned", pid=self.process.pid)
            code = await asyncio.to_thread(self.process.wait)
            if self._stopping:
                return
            if code == EXIT_PORT_IN_USE:  # the tracker said why; restarting would only say it again
                event("tracker.not_restarted", logging.ERROR, code=code,
                      reason="the tracker's port is held by another process; stop it, then restart the daemon")
                return
            event("tracker.exited", logging.ERROR, code=code, restart_in=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 60.0)

    async def stop(self, timeout: float = STOP_LIMIT + 30.0) -> None:
        """SIGTERM the tracker and wait until it has written every answered click (it gives up by itself after
        `STOP_LIMIT`, logging the clicks at risk); SIGKILL only if it still runs after `timeout`."""
        self._stopping = True
        process = self.process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(asyncio.to_thread(process.wait), timeout)
            except TimeoutError:
                process.kill()
                event("tracker.killed", logging.ERROR, pid=process.pid, after_seconds=timeout,
                      reason="the tracker did not end after SIGTERM; the clicks it had not written are lost")
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
