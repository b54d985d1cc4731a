"""Order webhooks and /healthz on a real tracker process: bodies limited while streaming, malformed signed bodies
answered 422, UTM attribution by the tags the links carry, and every answered click counted until committed."""

from __future__ import annotations

import json
import re
import signal
import socket
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from drainage.links import add_utm
from drainage.store.db import make_engine
from drainage.store.migrate import ensure_schema
from drainage.tracker.app import MAX_ORDER_BYTES
from drainage.tracker.orders import sign_generic
from tests.databases import ON_POSTGRES
from tests.tracker_helpers import SECRET, add_link, free_port, load, start_drainage, wait_healthy
from tests.waiting import eventually

pytestmark = pytest.mark.slow

BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"


def _start(root: Path, config_kwargs: dict) -> tuple[str, object, subprocess.Popen[bytes]]:
    port = free_port()
    config = load(root, extra=f"port: {port}", **config_kwargs)
    engine = make_engine(config.database_url)
    ensure_schema(engine)  # before the tracker starts: it refuses a database that is not migrated
    engine.dispose()
    return f"http://127.0.0.1:{port}", config, start_drainage(root, "tracker")


def _peak_memory(pid: int) -> int:
    """Peak resident memory of a process, in bytes (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def _declared_too_large(base: str) -> bytes:
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(f"POST /hooks/order HTTP/1.1\r\nHost: {host}\r\nContent-Length: {MAX_ORDER_BYTES + 1}\r\n"
                     "Content-Type: application/json\r\n\r\n".encode())
        return sock.recv(65536)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(120)


def _signed(body: bytes) -> dict[str, str]:
    return {"x-drainage-signature": sign_generic(SECRET, body, int(time.time())), "content-type": "application/json"}


def test_order_bodies_are_limited_while_streaming_and_malformed_signed_bodies_are_422(tmp_path: Path) -> None:
    config_kwargs: dict = {}
    base, _config, proc = _start(tmp_path, config_kwargs)
    sent = {"bytes": 0}

    def endless() -> Iterator[bytes]:  # chunked, no Content-Length: far more than the limit if read whole
        chunk = b"x" * 65536
        while sent["bytes"] < 64 * MAX_ORDER_BYTES:
            sent["bytes"] += len(chunk)
            yield chunk

    try:
        wait_healthy(base, proc, tmp_path)
        peak_before = _peak_memory(proc.pid)
        with httpx.Client(base_url=base, timeout=60) as client:
            try:
                chunked = client.post("/hooks/order", content=endless(), headers={"x-drainage-signature": "t=1,v1=0"})
            except (httpx.RemoteProtocolError, httpx.WriteError):  # closed on us once the limit was passed
                chunked = None
            if chunked is not None:
                assert chunked.status_code == 413 and chunked.json() == {"error": "body too large"}
            # the body was never held whole (64 MiB sent): the tracker's peak memory barely moved
            assert _peak_memory(proc.pid) - peak_before < 16 * MAX_ORDER_BYTES

            assert _declared_too_large(base).startswith(b"HTTP/1.1 413 ")  # answered before any body is sent
            just_over = b'{"a": "' + b"x" * MAX_ORDER_BYTES + b'"}'
            assert client.post("/hooks/order", content=just_over, headers=_signed(just_over)).status_code == 413

            malformed = [
                {"order_id": "1", "amount": "5", "utm": [1, 2]},
                {"order_id": "1", "amount": "5", "utm": {"campaign": {"x": 1}}},
                {"order_id": ["1"], "amount": "5"},
                {"order_id": "1", "amount": "5", "landing_url": 7},
                {"order_id": "1", "amount": {"value": 5}},
            ]
            bodies = [json.dumps(m).encode() for m in malformed]
            bodies.append(b'{"order_id": "1", "amount": "5", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")
            bodies.append(b"[" * 50_000)
            for body in bodies:
                answer = client.post("/hooks/order", content=body, headers=_signed(body))
                assert answer.status_code == 422, (body[:80], answer.status_code, answer.text)
            assert client.get("/healthz").status_code == 200  # still serving
    finally:
        _stop(proc)
    assert "Traceback" not in (tmp_path / "tracker.log").read_text()


def test_utm_attribution_matches_the_tags_the_links_carry(tmp_path: Path) -> None:
    base, config, proc = _start(tmp_path, {})
    # as campaigns/launch.yaml renders its links: utm.campaign overrides the campaign id
    tags = {"utm_source": "social-outbox", "utm_medium": "social", "utm_campaign": "merino-launch-2026",
            "utm_content": "b"}
    add_link(config, add_utm("https://shop.example.com/p/scarf", tags), campaign="scarf-launch",  # type: ignore[arg-type]
             channel="social-outbox", item="merino-scarf-red", variant="b")
    add_link(config, add_utm("https://shop.example.com/p/hat", {**tags, "utm_campaign": "hats"}),  # type: ignore[arg-type]
             campaign="hat-sale", channel="social-outbox", item="hat", variant="a")
    try:
        wait_healthy(base, proc, tmp_path)
        with httpx.Client(base_url=base) as client:
            order = {"order_id": "A1", "amount": "49.00", "currency": "EUR",
                     "landing_url": "https://shop.example.com/p/scarf?utm_source=social-outbox&utm_medium=social"
                                    "&utm_campaign=merino-launch-2026&utm_content=b"}
            body = json.dumps(order).encode()
            answer = client.post("/hooks/order", content=body, headers=_signed(body))
            assert answer.status_code == 201, answer.text
            assert answer.json() == {"order_id": "A1", "result": "stored", "attributed_by": "utm",
                                     "campaign": "scarf-launch", "channel": "social-outbox", "variant": "b"}
            by_id = json.dumps({"order_id": "A2", "amount": "1", "utm": {"campaign": "scarf-launch"}}).encode()
            answer = client.post("/hooks/order", content=by_id, headers=_signed(by_id))
            assert answer.json()["attributed_by"] == "none"  # no link carries utm_campaign=scarf-launch
    finally:
        _stop(proc)


@contextmanager
def _database_locked(database_url: str) -> Iterator[None]:
    """Hold the database's write lock, so the writer process blocks (or fails and retries) with its batch."""
    if ON_POSTGRES:
        import psycopg

        url = re.sub(r"^postgresql(\+\w+)?://", "postgresql://", database_url)
        with psycopg.connect(url) as conn:
            conn.execute("LOCK TABLE clicks IN ACCESS EXCLUSIVE MODE")
            yield
            conn.rollback()
    else:
        conn = sqlite3.connect(database_url.removeprefix("sqlite:///"), isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")
            conn.close()


def _metric(base: str, name: str) -> float:
    text = httpx.get(f"{base}/metrics").text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))


def test_healthz_counts_every_answered_click_until_it_is_committed(tmp_path: Path) -> None:
    base, config, proc = _start(tmp_path, {"flush_every": "50ms"})
    code = add_link(config, "https://shop.example.com/p/scarf")  # type: ignore[arg-type]
    try:
        wait_healthy(base, proc, tmp_path)
        with _database_locked(config.database_url), httpx.Client(base_url=base) as client:  # type: ignore[attr-defined]
            for _ in range(120):
                assert client.get(f"/c/{code}", headers={"user-agent": BROWSER}).status_code == 302
            for _ in range(10):  # flushes come and go (held by the writer, or back in line after a failure)
                health = client.get("/healthz").json()
                assert (health["queued_clicks"], health["clicks_written"]) == (120, 0)
                time.sleep(0.05)
        health = eventually(lambda: (h := httpx.get(f"{base}/healthz").json())["clicks_written"] == 120 and h,
                          what="the 120 clicks written")
        assert health["queued_clicks"] == 0
        assert _metric(base, "drainage_tracker_clicks_total{") == 120
    finally:
        _stop(proc)
