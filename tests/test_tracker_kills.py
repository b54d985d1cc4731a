"""Hard kills of real tracker processes under load, and how `drainage run` stops, dies and restarts its tracker.

What a SIGKILL may lose: the clicks the tracker had not yet handed to its writer process, which are always the
newest ones (the writer finishes the batch it holds). So after every kill, no committed click is newer than a
lost one, nothing is written twice, and the rollups still equal the raw clicks.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from drainage.store.db import make_engine
from drainage.tracker.clickids import SORTABLE, TIME_CHARS
from drainage.tracker.supervisor import EXIT_PORT_IN_USE
from tests.tracker_helpers import (
    add_link,
    free_port,
    load,
    start_drainage,
    wait_group_gone,
    wait_healthy,
    write_config,
)
from tests.waiting import eventually

pytestmark = pytest.mark.slow

KILLS = 20
FLUSH_EVERY = "100ms"
CLIENTS = 8
BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"


@dataclass
class Load:
    """Keep-alive connections clicking as fast as the tracker answers (raw HTTP/1.1 on an event loop of its own,
    so the load is the tracker's peak, not a client library's); each 302's click id is kept."""

    base: str
    code: str
    answered: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def start(self, clients: int = CLIENTS) -> None:
        self.thread = threading.Thread(target=asyncio.run, args=(self._run(clients),), daemon=True)
        self.thread.start()

    async def _run(self, clients: int) -> None:
        await asyncio.gather(*(self._click() for _ in range(clients)), return_exceptions=True)

    async def _click(self) -> None:
        host, port = self.base.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        request = (f"GET /c/{self.code} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {BROWSER}\r\n\r\n").encode()
        try:
            while not self.stop.is_set():
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                for line in head.split(b"\r\n"):
                    if line[:9].lower() == b"location:":
                        self.answered.append(line.rsplit(b"dr_click=", 1)[1].decode())
        except (OSError, asyncio.IncompleteReadError):  # the tracker was killed
            return
        finally:
            writer.close()

    def finish(self) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(30)


def _committed(database_url: str) -> list[str]:
    engine = make_engine(database_url)
    with engine.connect() as conn:
        ids = [row[0] for row in conn.execute(text("SELECT click_id FROM clicks"))]
        rollup = conn.execute(text("SELECT COALESCE(SUM(clicks), 0) FROM click_rollups")).scalar_one()
        uniques = conn.execute(text("SELECT COALESCE(SUM(visitors), 0) FROM unique_days WHERE scope = ''")
                               ).scalar_one()
        people = conn.execute(text("SELECT count(*) FROM (SELECT DISTINCT c.visitor FROM clicks c JOIN links l "
                                   "ON l.code = c.code WHERE c.agent_class = 'human') AS d")).scalar_one()
    engine.dispose()
    assert rollup == len(ids)  # the rollups are the sum of the raw clicks, whatever was cut off
    assert uniques == people  # and so are the unique visitors (visitor ids are daily: distinct ids = daily sums)
    return ids


@dataclass
class KillTrial:
    answered: int
    lost: int
    lost_span_ms: int
    """Milliseconds between the first and the last lost click's issue."""


def kill_trials(root: Path, kills: int, seed: int = 17) -> list[KillTrial]:
    """SIGKILL a real tracker `kills` times at random moments under load; check each kill's losses (see the
    module docstring) and return them."""
    rng = random.Random(seed)
    port = free_port()
    config = load(root, flush_every=FLUSH_EVERY, batch_size=5000, extra=f"port: {port}")
    code = add_link(config, "https://shop.example.com/p/scarf")
    base = f"http://127.0.0.1:{port}"
    trials: list[KillTrial] = []
    before: set[str] = set()
    for _trial in range(kills):
        proc = start_drainage(root, "tracker")
        wait_healthy(base, proc, root)
        load_ = Load(base, code)
        load_.start()
        eventually(lambda: len(load_.answered) >= 100, what="clicks answered")  # noqa: B023
        time.sleep(rng.uniform(0.0, 1.0))  # a random moment under load
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        load_.finish()
        wait_group_gone(proc.pid)  # the writer process finishes the batch it holds, then ends
        committed = set(_committed(config.database_url))
        assert before <= committed
        new = committed - before
        answered = set(load_.answered)
        # nothing written twice (ids are unique) and nothing that was not answered, but for the requests in
        # flight at the kill (one per client: the click was recorded, the 302 not yet received)
        assert len(new - answered) <= CLIENTS
        lost = answered - new
        if lost and new:  # a kill loses the newest clicks only: no committed click is newer than a lost one
            assert max(c[:TIME_CHARS] for c in new) <= min(c[:TIME_CHARS] for c in lost)
        span = _milliseconds(max(lost)) - _milliseconds(min(lost)) if lost else 0
        trials.append(KillTrial(len(answered), len(lost), span))
        before = committed
    return trials


def _milliseconds(click_id: str) -> int:
    value = 0
    for char in click_id[:TIME_CHARS]:
        value = value * 64 + SORTABLE.index(char)
    return value


@pytest.mark.timeout(900)  # each kill starts a real tracker: 250 s measured on a two-core machine at load 8
def test_twenty_hard_kills_under_load_lose_only_the_newest_clicks(tmp_path: Path) -> None:
    trials = kill_trials(tmp_path, KILLS)
    answered, lost = sum(t.answered for t in trials), sum(t.lost for t in trials)
    assert answered > 0
    assert lost <= answered / 2, trials


def _run_daemon(root: Path, port: int) -> None:
    write_config(root, flush_every="1h", extra=f"port: {port}")
    (root / "campaigns").mkdir(exist_ok=True)
    (root / "templates").mkdir(exist_ok=True)


def _tracker_pid(root: Path) -> int:
    def spawned() -> int | None:
        lines = [line for line in (root / "tracker.log").read_text().splitlines() if "tracker.spawned" in line]
        return int(lines[-1].rsplit("pid=", 1)[1].split()[0]) if lines else None

    return int(eventually(spawned, what="tracker.spawned in the log"))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is not alive
        return " Z " not in Path(f"/proc/{pid}/stat").read_text().split(")", 1)[1][:4]
    except OSError:
        return True


def test_sigterm_to_run_under_load_writes_every_answered_click_before_it_exits(tmp_path: Path) -> None:
    port = free_port()
    _run_daemon(tmp_path, port)
    config = load(tmp_path, flush_every="1h", extra=f"port: {port}")
    code = add_link(config, "https://shop.example.com/p/scarf")
    base = f"http://127.0.0.1:{port}"
    proc = start_drainage(tmp_path, "run")
    wait_healthy(base, proc, tmp_path)
    load_ = Load(base, code)
    load_.start()
    eventually(lambda: len(load_.answered) >= 2000, what="2,000 answered clicks")
    load_.finish()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(300) == 0
    assert set(_committed(config.database_url)) == set(load_.answered)  # all written when the daemon is gone
    wait_group_gone(proc.pid, within=5)  # and nothing is left running (no orphaned writer)


def test_a_sigkilled_daemon_leaves_no_tracker_and_a_restarted_one_serves_again(tmp_path: Path) -> None:
    port = free_port()
    _run_daemon(tmp_path, port)
    config = load(tmp_path, flush_every="1h", extra=f"port: {port}")
    code = add_link(config, "https://shop.example.com/p/scarf")
    base = f"http://127.0.0.1:{port}"
    proc = start_drainage(tmp_path, "run")
    wait_healthy(base, proc, tmp_path)
    tracker = _tracker_pid(tmp_path)
    with httpx.Client(base_url=base, headers={"user-agent": BROWSER}) as client:
        assert all(client.get(f"/c/{code}").status_code == 302 for _ in range(50))
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    eventually(lambda: not _alive(tracker), what="the tracker's end after its daemon's")
    wait_group_gone(proc.pid)
    assert len(_committed(config.database_url)) == 50  # it was told to stop (SIGTERM), so it wrote its clicks

    again = start_drainage(tmp_path, "run")
    try:
        wait_healthy(base, again, tmp_path)  # the port was free again
    finally:
        again.send_signal(signal.SIGTERM)
        assert again.wait(120) == 0
    assert (tmp_path / "tracker.log").read_text().count("tracker.spawned") == 2


def test_a_held_port_is_one_clear_error_not_a_restart_loop(tmp_path: Path) -> None:
    port = free_port()
    _run_daemon(tmp_path, port)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", port))
        holder.listen()
        alone = start_drainage(tmp_path, "tracker")
        assert alone.wait(120) == EXIT_PORT_IN_USE
        log = (tmp_path / "tracker.log").read_text()
        assert "tracker.port_in_use" in log and f"port={port}" in log
        assert "tracker.started" not in log

        daemon = start_drainage(tmp_path, "run", log_name="run.log")
        try:
            eventually(lambda: "tracker.not_restarted" in (tmp_path / "run.log").read_text(),
                       what="the daemon's tracker.not_restarted")
        finally:
            daemon.send_signal(signal.SIGTERM)
            assert daemon.wait(120) == 0
    log = (tmp_path / "run.log").read_text()
    assert log.count("tracker.spawned") == 1 and log.count("tracker.port_in_use") == 1
