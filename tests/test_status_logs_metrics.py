"""`drainage status` and `resume`, structured logs with secrets masked, and the metrics endpoint."""

from __future__ import annotations

import asyncio
import io
import json
import socket

import httpx
import pytest

from drainage import logs
from drainage.clock import FakeClock
from drainage.errors import AuthError, PermanentError
from drainage.metrics import Metrics
from drainage.status import collect
from tests.daemon_helpers import at, make_dispatcher, scripted_plugin, write_project


@pytest.fixture
def plat():
    with scripted_plugin() as plugin:
        yield plugin


def test_status_shows_next_runs_counts_failures_and_pauses(tmp_path, plat) -> None:
    clock = FakeClock(at("2026-03-01T10:30:00+00:00"))
    config = write_project(tmp_path)
    project, dispatcher = make_dispatcher(config, clock)
    asyncio.run(dispatcher.run_all())
    plat.script = [None, PermanentError("message is too long"), AuthError("token revoked")]
    for _ in range(3):
        clock.advance(hours=1)
        asyncio.run(dispatcher.run_all())
    st = collect(project, dispatcher.engine, clock.now())
    assert [(n.campaign, n.channel, n.local) for n in st.next_runs] == [("c", "plat", "Sun 2026-03-01 14:00 UTC")]
    assert st.counts == {"plat": {"sent": 1, "failed": 1, "retrying": 1}}
    assert [(r.status, r.error) for r in st.problems] == [
        ("retrying", "auth: token revoked"), ("failed", "permanent: message is too long")]
    assert [(p.channel, p.reason) for p in st.paused] == [("plat", "auth: token revoked")]


def test_status_and_resume_commands(tmp_path, plat, cli, monkeypatch) -> None:
    clock = FakeClock(at("2026-03-01T10:30:00+00:00"))
    config = write_project(tmp_path)
    _, dispatcher = make_dispatcher(config, clock)
    asyncio.run(dispatcher.run_all())
    plat.script = [AuthError("token revoked")]
    clock.advance(hours=1)
    asyncio.run(dispatcher.run_all())
    monkeypatch.chdir(tmp_path)
    shown = cli("status", "--days", "100000")
    assert shown.exit_code == 0, shown.output
    assert "PAUSED plat: auth: token revoked (since 2026-03-01 11:30 UTC); fix it, then run `drainage resume plat`" \
        in shown.output
    assert "retrying  c|plat|i0|-|2026-03-01T11:00:00Z: auth: token revoked" in shown.output
    resumed = cli("resume", "plat")
    assert resumed.exit_code == 0, resumed.output
    assert "resumed plat: 0 post(s) will be sent by the daemon, 1 recorded as missed" in resumed.output
    assert "PAUSED" not in cli("status").output
    wrong = cli("resume", "plta")
    assert wrong.exit_code == 2
    assert "no channel 'plta' (did you mean 'plat'?)" in wrong.output


def test_plain_and_json_log_lines_mask_secrets() -> None:
    stream = io.StringIO()
    logs.setup("plain", secrets=["s3cret-token-value"], stream=stream)
    logs.event("channel.paused", channel="tg", reason="auth: bad token s3cret-token-value")
    logs.setup("json", secrets=["s3cret-token-value"], stream=stream)
    logs.event("delivery.sent", key="a|b", attempt=1)
    plain, as_json = stream.getvalue().splitlines()
    assert plain.endswith(' info channel.paused channel=tg reason="auth: bad token ***"')
    assert "s3cret" not in stream.getvalue()
    record = json.loads(as_json)
    assert {k: record[k] for k in ("level", "event", "key", "attempt")} == {
        "level": "info", "event": "delivery.sent", "key": "a|b", "attempt": 1}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_metrics_endpoint_serves_prometheus_text() -> None:
    metrics = Metrics()
    metrics.delivery("tg", "sent")
    metrics.delivery("tg", "sent")
    metrics.sent("tg", 0.25)
    port = _free_port()
    metrics.serve("127.0.0.1", port)
    body = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    assert 'drainage_deliveries_total{channel="tg",status="sent"} 2.0' in body
    assert 'drainage_send_seconds_count{channel="tg"} 1.0' in body
