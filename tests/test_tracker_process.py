"""The tracker as a real server process: SIGTERM writes every click, a hard kill loses at most what /healthz
showed as queued, and `drainage run` serves it beside the scheduler."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest

from tests.tracker_helpers import add_link, clicks, free_port, load, start_drainage, wait_healthy, write_config
from tests.waiting import eventually

pytestmark = pytest.mark.slow


def _click(base: str, code: str, n: int) -> None:
    with httpx.Client(base_url=base, timeout=5) as client:
        for _ in range(n):
            response = client.get(f"/c/{code}", headers={"user-agent": "Mozilla/5.0 (X11; Linux x86_64)"})
            assert response.status_code == 302


def test_sigterm_writes_every_buffered_click(tmp_path: Path) -> None:
    port = free_port()
    config = load(tmp_path, flush_every="1h", batch_size=100_000, extra=f"port: {port}")
    code = add_link(config, "https://shop.example.com/p/scarf")
    base = f"http://127.0.0.1:{port}"
    proc = start_drainage(tmp_path, "tracker")
    try:
        wait_healthy(base, proc, tmp_path)
        _click(base, code, 250)
        assert httpx.get(f"{base}/healthz").json()["queued_clicks"] == 250  # nothing written yet (flush_every 1h)
        assert clicks(config) == []
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal after a clean shutdown
    assert len(clicks(config)) == 250


def test_a_hard_kill_loses_at_most_the_queued_clicks(tmp_path: Path) -> None:
    port = free_port()
    config = load(tmp_path, flush_every="100ms", batch_size=100_000, extra=f"port: {port}")
    code = add_link(config, "https://shop.example.com/p/scarf")
    base = f"http://127.0.0.1:{port}"
    proc = start_drainage(tmp_path, "tracker")
    try:
        wait_healthy(base, proc, tmp_path)
        _click(base, code, 300)
        # within flush_every the queue is written
        eventually(lambda: httpx.get(f"{base}/healthz").json()["queued_clicks"] == 0, timeout=30,
                   what="the tracker's queue to be written")
        queued = httpx.get(f"{base}/healthz").json()["queued_clicks"]
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    assert queued == 0
    assert len(clicks(config)) == 300  # what was written before the kill survives it


def test_run_serves_the_tracker_beside_the_scheduler_and_stops_it(tmp_path: Path) -> None:
    port = free_port()
    write_config(tmp_path, flush_every="1h", extra=f"port: {port}")
    config = load(tmp_path, flush_every="1h", extra=f"port: {port}")  # with empty campaigns/ and templates/
    code = add_link(config, "https://shop.example.com/p/scarf")
    base = f"http://127.0.0.1:{port}"
    proc = start_drainage(tmp_path, "run")
    try:
        wait_healthy(base, proc, tmp_path)
        _click(base, code, 7)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    assert len(clicks(config)) == 7  # the daemon's SIGTERM reached the tracker, which flushed
    log = (tmp_path / "tracker.log").read_text()
    assert "tracker.spawned" in log and "tracker.stopped" in log
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{base}/healthz", timeout=1)


def test_two_trackers_on_one_database_lose_no_click_and_keep_rollups_exact(tmp_path: Path) -> None:
    import threading

    from sqlmodel import func, select

    from drainage.store.db import make_engine, session
    from drainage.store.models import ClickRollup

    ports = [free_port(), free_port()]
    config = load(tmp_path, flush_every="50ms", batch_size=200)
    codes = [add_link(config, f"https://shop.example.com/p/{n}", item=str(n)) for n in range(5)]
    procs = []
    for n, port in enumerate(ports):
        root = tmp_path / f"t{n}"
        root.mkdir()
        write_config(root, flush_every="50ms", batch_size=200, extra=f"port: {port}")
        text = (root / "config.yaml").read_text()  # both on the first project's database
        (root / "config.yaml").write_text(text.replace(f"url: {database_url_of(root)}", f"url: {config.database_url}"))
        procs.append(start_drainage(root, "tracker"))
    per_thread, errors = 300, []

    def hammer(base: str, code: str) -> None:
        try:
            _click(base, code, per_thread)
        except Exception as exc:  # surfaced below
            errors.append(exc)

    try:
        for n, (port, proc) in enumerate(zip(ports, procs, strict=True)):
            wait_healthy(f"http://127.0.0.1:{port}", proc, tmp_path / f"t{n}")
        threads = [threading.Thread(target=hammer, args=(f"http://127.0.0.1:{port}", code))
                   for port in ports for code in codes[:2]]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(30)
    assert errors == []
    sent = per_thread * len(ports) * 2
    assert len(clicks(config)) == sent
    engine = make_engine(config.database_url)
    with session(engine) as s:
        assert s.exec(select(func.sum(ClickRollup.clicks))).one() == sent
    engine.dispose()


def database_url_of(root: Path) -> str:
    from tests.databases import database_url

    return database_url(root)
