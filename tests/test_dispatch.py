"""The dispatcher driven by a controllable clock: catch-up, grace, retries, rate limits, pauses, crashes."""

from __future__ import annotations

import asyncio

import pytest
from sqlmodel import select

from drainage.clock import FakeClock
from drainage.dispatch import Dispatcher, resume_channel
from drainage.errors import AuthError, PermanentError, RateLimited, TransientError
from drainage.store.db import session
from drainage.store.models import ChannelState, Delivery
from drainage.store.models import DeliveryStatus as S
from tests.daemon_helpers import at, make_dispatcher, rows, scripted_plugin, write_project


@pytest.fixture
def plat():
    with scripted_plugin() as plugin:
        yield plugin


def run(dispatcher: Dispatcher) -> None:
    asyncio.run(dispatcher.run_all())


def start(tmp_path, clock: FakeClock, **kwargs) -> Dispatcher:
    config = write_project(tmp_path, **kwargs)
    _, dispatcher = make_dispatcher(config, clock)
    run(dispatcher)  # first sight: the cursor starts now
    return dispatcher


def test_first_sight_does_not_backfill_history(tmp_path, plat) -> None:
    clock = FakeClock(at("2026-03-01T10:30:00+00:00"))
    dispatcher = start(tmp_path, clock)
    assert rows(dispatcher) == []
    assert plat.received == []


def test_each_due_slot_is_sent_once(tmp_path, plat) -> None:
    clock = FakeClock(at("2026-03-01T10:30:00+00:00"))
    dispatcher = start(tmp_path, clock)
    for _ in range(3):
        clock.advance(hours=1)
        run(dispatcher)
        run(dispatcher)  # a second pass at the same moment finds nothing new
    assert [p.slot.isoformat() for p in plat.received] == [
        "2026-03-01T11:00:00+00:00", "2026-03-01T12:00:00+00:00", "2026-03-01T13:00:00+00:00"]
    assert [r.status for r in rows(dispatcher)] == [S.SENT] * 3


def test_catch_up_inside_grace_sends_and_outside_grace_records_missed(tmp_path, plat) -> None:
    clock = FakeClock(at("2026-03-01T10:30:00+00:00"))
    dispatcher = start(tmp_path, clock)
    clock.set(at("2026-03-01T13:20:00+00:00"))  # down from 10:30 to 13:20: slots 11:00, 12:00, 13:00
    run(dispatcher)
    result = [(r.slot_at.strftime("%H:%M"), r.status, r.error) for r in rows(dispatcher)]
    assert result == [
        ("11:00", S.MISSED, "not sent: 2h20m late, beyond misfire_grace 1h (the daemon was not running)"),
        ("12:00", S.MISSED, "not sent: 1h20m late, beyond misfire_grace 1h (the daemon was not running)"),
        ("13:00", S.SENT, None),
    ]
    assert len(plat.received) == 1


def test_transient_errors_retry_with_growing_jittered_backoff(tmp_path, plat) -> None:
    clock = FakeClock(at("2026-03-01T10:30:00+00:00"))
    dispatcher = start(tmp_path, clock)
    plat.script = [TransientError("HTTP 502"), TransientError("timed out")]
    clock.set(at("2026-03-01T11:00:00+00:00"))
    run(dispatcher)
    (row,) = rows(dispatcher)
    assert (row.status, row.attempts, row.error) == (S.RETRYING, 1, "transient: HTTP 502")
    first_wait = (row.next_attempt_at.replace(tzinfo=clock.now().tzinfo) - clock.now()).total_seconds()
    assert 15 <= first_wait <= 30
    run(dispatcher)  # not yet due: nothing happens
    assert rows(dispatcher)[0].attempts == 1
    clock.advance(first_wait)
    run(dispatcher)
    (row,) = rows(dispatcher)
    second_wait = (row.next_attempt_at.replace(tzinfo=clock.now().tzinfo) - clock.now()).total_seconds()
    assert (row.status, row.attempts, row.error) == (S.RETRYING, 2, "transient: timed out")
    assert 30 <= second_wait <= 60
    clock.advance(second_wait)
    run(dispatcher)
    (row,) = rows(dispatcher)
    assert (row.status, row.attempts, row.error) == (S.SENT, 3, None)
    assert len(plat.received) == 1


def test_gives_up_after_max_attempts_with_the_reason(tmp_path, plat) -> None:
    clock = FakeClock(at("2026-03-01T10:30:00+00:00"))
    dispatcher = start(tmp_path, clock)
    plat.script = [TransientError("HTTP 503")] * 3
    clock.set(at("2026-03-01T11:00:00+00:00"))
    for _ in range(3):
        run(dispatcher)
        clock.advance(minutes=5)
    (row,) = rows(dispatcher)
    assert (row.status, row.attempts) == (S.FAILED, 3)
    assert row.error == "transient: HTTP 503 (gave up after 3 attempts)"
    assert plat.received == []


def test_permanent_error_fails_at_once(tmp_path, plat) -> None:
    clock = FakeClock(at("2026-03-01T10:30:00+00:00"))
    dispatcher = start(tmp_path, clock)
    plat.script = [PermanentError("chat not found")]
    clock.set(at("2026-03-01T11:00:00+00:00"))
    run(dispatcher)
    clock.advance(hours=0.5)
    run(dispatcher)
    (row,) = rows(dispatcher)
    assert (row.status, row.attempts, row.error) == (S.FAILED, 1, "permanent: chat not found")


def test_rate_limit_waits_its_retry_after_and_is_not_counted(tmp_path, plat) -> None:
    clock = FakeClock(at("2026-03-01T10:30:00+00:00"))
    dispatcher = start(tmp_path, clock)
    plat.script = [RateLimited("too many requests", retry_after=120)]
    clock.set(at("2026-03-01T11:00:00+00:00"))
    run(dispatcher)
    (row,) = rows(dispatcher)
    assert (row.status, row.attempts) == (S.RETRYING, 0)
    assert row.next_attempt_at.replace(tzinfo=clock.now().tzinfo) == at("2026-03-01T11:02:00+00:00")
    clock.advance(119)
    run(dispatcher)
    assert plat.received == []
    clock.advance(1)
    run(dispatcher)
    (row,) = rows(dispatcher)
    assert (row.status, row.attempts) == (S.SENT, 1)


def test_rate_limit_is_a_sliding_window(tmp_path, plat) -> None:
    clock = FakeClock(at("2026-03-01T10:30:00+00:00"))
    dispatcher = start(tmp_path, clock, items=5, rotation="all", rate_limit="2/minute")
    clock.set(at("2026-03-01T11:00:00+00:00"))
    run(dispatcher)
    assert len(plat.received) == 5
    sent = sorted(r.sent_at.replace(tzinfo=clock.now().tzinfo) for r in rows(dispatcher))
    offsets = [(t - at("2026-03-01T11:00:00+00:00")).total_seconds() for t in sent]
    assert offsets == pytest.approx([0, 0, 60, 60, 120])  # never more than 2 in any minute


def test_auth_error_pauses_the_channel_until_resumed(tmp_path, plat) -> None:
    clock = FakeClock(at("2026-03-01T10:30:00+00:00"))
    dispatcher = start(tmp_path, clock)
    plat.script = [AuthError("token revoked")]
    clock.set(at("2026-03-01T11:00:00+00:00"))
    run(dispatcher)
    clock.advance(minutes=10)
    run(dispatcher)
    run(dispatcher)
    assert plat.script == [] and plat.received == []  # tried once, not hammered
    with session(dispatcher.engine) as s:
        state = s.get(ChannelState, "plat")
    assert state is not None and state.paused and state.reason == "auth: token revoked"
    (row,) = rows(dispatcher)
    assert (row.status, row.next_attempt_at) == (S.RETRYING, None)
    released, missed = resume_channel(dispatcher.project, dispatcher.engine, "plat", clock.now())
    assert (released, missed) == (1, 0)
    run(dispatcher)
    assert [r.status for r in rows(dispatcher)] == [S.SENT]


def test_resume_after_the_grace_records_missed_not_a_stale_burst(tmp_path, plat) -> None:
    clock = FakeClock(at("2026-03-01T10:30:00+00:00"))
    dispatcher = start(tmp_path, clock)
    plat.script = [AuthError("expired")]
    clock.set(at("2026-03-01T11:00:00+00:00"))
    run(dispatcher)
    clock.set(at("2026-03-01T14:30:00+00:00"))
    run(dispatcher)  # plans 12:00 (missed), 13:00 (missed), 14:00 (pending: channel paused)
    released, missed = resume_channel(dispatcher.project, dispatcher.engine, "plat", clock.now())
    assert (released, missed) == (1, 1)
    run(dispatcher)
    assert [(r.slot_at.strftime("%H:%M"), r.status) for r in rows(dispatcher)] == [
        ("11:00", S.MISSED), ("12:00", S.MISSED), ("13:00", S.MISSED), ("14:00", S.SENT)]
    assert [p.slot.strftime("%H:%M") for p in plat.received] == ["14:00"]


def test_paused_and_draft_campaigns_post_nothing_and_do_not_burst_when_activated(tmp_path, plat) -> None:
    clock = FakeClock(at("2026-03-01T10:30:00+00:00"))
    dispatcher = start(tmp_path, clock, status="paused")
    clock.set(at("2026-03-01T12:30:00+00:00"))
    run(dispatcher)
    assert rows(dispatcher) == []
    config = write_project(tmp_path, status="active")
    from drainage.project import load_project

    dispatcher.set_project(load_project(config))
    clock.set(at("2026-03-01T13:00:00+00:00"))
    run(dispatcher)
    assert [p.slot.strftime("%H:%M") for p in plat.received] == ["13:00"]


@pytest.mark.parametrize(("lookup", "on_unknown", "published", "expected", "sends"), [
    (True, "skip", True, S.SENT, 0),        # the platform has it: settled as sent, not resent
    (True, "skip", False, S.SENT, 1),       # the platform does not have it: sent (once)
    (False, "skip", False, S.UNKNOWN, 0),   # cannot ask: skip policy records unknown
    (False, "resend", False, S.SENT, 1),    # cannot ask: resend policy sends it
])
def test_crash_mid_send_is_settled(tmp_path, plat, lookup, on_unknown, published, expected, sends) -> None:
    clock = FakeClock(at("2026-03-01T10:30:00+00:00"))
    config = write_project(tmp_path, on_unknown=on_unknown)
    if lookup:
        config.write_text(config.read_text().replace("type: scripted\n", "type: scripted\n    lookup: true\n"))
    _, dispatcher = make_dispatcher(config, clock)
    run(dispatcher)
    clock.set(at("2026-03-01T11:00:00+00:00"))
    dispatcher.plan_due("plat")
    with session(dispatcher.engine) as s:  # simulate a crash after the claim, before the outcome was stored
        row = s.exec(select(Delivery)).one()
        row.status, row.attempts = S.SENDING, 1
        s.add(row)
        s.commit()
        key = row.key
    if published:
        plat.published.add(key)
    run(dispatcher)
    (row,) = rows(dispatcher)
    assert row.status == expected
    assert len(plat.received) == sends
    if expected == S.UNKNOWN:
        assert row.error == ("outcome unknown after a crash and the platform cannot be asked; not resent "
                             "(on_unknown: skip)")


def test_quiet_hours_and_window_in_the_campaign_time_zone(tmp_path, plat) -> None:
    clock = FakeClock(at("2026-03-01T00:30:00+00:00"))
    config = write_project(tmp_path, tz="Asia/Tokyo", schedule="  - every: 1h")
    text = config.parent / "campaigns" / "c.yaml"
    text.write_text(text.read_text().replace("    template: post.j2\n",
                                             "    template: post.j2\n    quiet_hours: '22:00-08:00'\n")
                    .replace("misfire_grace: 1h\n", "misfire_grace: 1h\nend: 2026-03-01 20:00\n"))
    _, dispatcher = make_dispatcher(config, clock)
    run(dispatcher)
    for _ in range(24):
        clock.advance(hours=1)
        run(dispatcher)
    local_hours = [p.slot.astimezone(dispatcher.project.campaigns["c"].tz).hour for p in plat.received]
    assert local_hours == list(range(10, 20))  # 09:30 JST start; quiet until 08:00; end at 20:00 JST


def test_daily_post_once_across_fall_back_in_berlin(tmp_path, plat) -> None:
    clock = FakeClock(at("2026-10-23T12:00:00+00:00"))
    dispatcher = start(tmp_path, clock, tz="Europe/Berlin", schedule="  - cron: '30 2 * * *'")
    for _ in range(4 * 24 * 4):
        clock.advance(minutes=15)
        run(dispatcher)
    slots = [p.slot.isoformat() for p in plat.received]
    assert slots == ["2026-10-24T00:30:00+00:00", "2026-10-25T00:30:00+00:00", "2026-10-26T01:30:00+00:00",
                     "2026-10-27T01:30:00+00:00"]


def test_every_failure_is_counted_in_metrics(tmp_path, plat) -> None:
    clock = FakeClock(at("2026-03-01T10:30:00+00:00"))
    dispatcher = start(tmp_path, clock)
    plat.script = [PermanentError("no")]
    clock.set(at("2026-03-01T11:00:00+00:00"))
    run(dispatcher)
    clock.set(at("2026-03-01T12:00:00+00:00"))
    run(dispatcher)
    registry = dispatcher.metrics.registry
    assert registry.get_sample_value("drainage_deliveries_total", {"channel": "plat", "status": "failed"}) == 1
    assert registry.get_sample_value("drainage_deliveries_total", {"channel": "plat", "status": "sent"}) == 1
    assert registry.get_sample_value("drainage_queue_depth") == 0


def test_two_daemons_planning_the_same_slot_is_a_quiet_race_and_the_pass_goes_on(tmp_path, plat, caplog) -> None:
    clock = FakeClock(at("2026-03-01T10:30:00+00:00"))
    first = start(tmp_path, clock, items=3, rotation="all")
    _, second = make_dispatcher(tmp_path / "config.yaml", clock)
    compose = second.project.compose

    def compose_after_the_first_daemon_planned(planned):  # type: ignore[no-untyped-def]
        if not rows(first):  # between the second daemon's check for the row and its insert
            first.plan_due("plat")
        return compose(planned)

    second.project.compose = compose_after_the_first_daemon_planned  # type: ignore[method-assign]
    clock.advance(hours=1)
    with caplog.at_level("DEBUG", logger="drainage"):
        run(second)
    assert [r.message for r in caplog.records if r.levelname not in ("DEBUG", "INFO")] == []
    assert [r.message for r in caplog.records if r.message == "plan.raced"] == ["plan.raced"]
    assert sorted(p.item for p in plat.received) == ["i0", "i1", "i2"]  # the pass went on and sent them
    assert [r.status for r in rows(second)] == [S.SENT] * 3
