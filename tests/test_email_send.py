"""Sending campaign email through a real SMTP server (aiosmtpd): messages, links, unsubscribes, replies, pauses."""

from __future__ import annotations

import asyncio
import io
import logging
import re
import socket
from collections.abc import Callable, Iterator
from email.utils import parsedate_to_datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import Engine, text
from sqlmodel import select

from drainage.config import load_config
from drainage.email import suppression
from drainage.email.subscribers import ImportReport, import_subscribers, read_csv
from drainage.logs import LOGGER
from drainage.store.db import session
from drainage.store.email_models import Subscriber, Suppression
from drainage.store.models import Delivery, Link
from drainage.tracker.app import Tracker
from tests.email_helpers import engine_for, fanouts, ledger, slot_arg, subscribe, write_project
from tests.fakes.smtp import SmtpRecorder, free_port, smtp_server

LINK = re.compile(r"https://go\.example\.com/c/[a-z2-7]{12}")
UNSUBSCRIBE = re.compile(r"https://go\.example\.com/u/[A-Za-z0-9_~-]+")


@pytest.fixture
def smtp() -> SmtpRecorder:
    with smtp_server() as (recorder, port):
        recorder.port = port  # type: ignore[attr-defined]
        yield recorder


def send(cli: Callable[..., object], root: Path, *extra: str) -> object:
    return cli("send", "spring", "--at", slot_arg(), "--config", str(root / "config.yaml"), *extra)


def test_each_subscriber_gets_one_personal_message_with_one_click_unsubscribe_headers(
        tmp_path: Path, smtp: SmtpRecorder, cli: Callable[..., object]) -> None:
    write_project(tmp_path, smtp.port)  # type: ignore[attr-defined]
    engine = engine_for(tmp_path)
    subscribe(engine, ["ann@example.com", "bob@example.com", "carl@bücher.example"])  # an IDN domain
    result = send(cli, tmp_path)
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    assert "3 sent" in result.output  # type: ignore[attr-defined]
    assert sorted(r.recipient for r in smtp.received) == ["ann@example.com", "bob@example.com",
                                                          "carl@xn--bcher-kva.example"]
    ann = smtp.to("ann@example.com")[0]
    message = ann.message
    assert ann.sender == "news@shop.example.com"
    assert message["From"] == "Nörthwind Knits <news@shop.example.com>"
    assert b"From: =?utf-8?q?N=C3=B6rthwind_Knits?= <news@shop.example.com>" in ann.data  # encoded on the wire
    assert message["To"] == "Ann <ann@example.com>"
    assert message["Subject"] == "Für Ann: Merino scarf"
    assert b"\r\nSubject: =?utf-8?" in ann.data and ann.data.isascii()
    assert parsedate_to_datetime(message["Date"]).tzinfo is not None
    assert re.fullmatch(r"<[0-9a-f]{32}@shop\.example\.com>", message["Message-ID"])
    unsubscribe = message["List-Unsubscribe"]
    assert re.fullmatch(r"<https://go\.example\.com/u/[0-9a-f]{16}~[A-Za-z0-9_-]+~[A-Za-z0-9_-]{22}>", unsubscribe)
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # multipart/alternative: a text part and an HTML part, both with the same links and a visible unsubscribe
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert text.startswith("Hello Ann,")
    assert "<h1>Hello Ann</h1>" in html
    assert unsubscribe.strip("<>") in text and unsubscribe.strip("<>") in html
    assert LINK.findall(text) == LINK.findall(html)[:1] + LINK.findall(html)[1:2]
    # every recipient has their own tracked links, attributed to email, campaign, variant and recipient
    codes = {r.recipient: set(LINK.findall(r.message.get_body(("plain",)).get_content()))  # type: ignore[union-attr]
             for r in smtp.received}
    assert all(len(c) == 2 for c in codes.values())
    assert not codes["ann@example.com"] & codes["bob@example.com"]
    with session(engine) as s:
        rows = {link.code: link for link in s.exec(select(Link)).all()}
        refs = {r.email: r.ref for r in s.exec(select(Subscriber)).all()}
    for url in codes["ann@example.com"]:
        link = rows[url.rsplit("/", 1)[1]]
        assert (link.campaign, link.channel, link.variant, link.recipient) == ("spring", "news", "warm",
                                                                               refs["ann@example.com"])
        assert "ann" not in link.recipient and "@" not in link.target
        assert parse_qs(urlsplit(link.target).query)["utm_medium"] == ["email"]
    # a Message-ID is stable per campaign slot and recipient, distinct between recipients
    assert len({r.message["Message-ID"] for r in smtp.received}) == 3
    # the same slot again is refused by the journal: nobody gets it twice
    again = send(cli, tmp_path)
    assert "already sent" in again.output  # type: ignore[attr-defined]
    assert len(smtp.received) == 3


def test_unsubscribe_by_one_click_post_through_the_tracker_then_the_next_send_skips_the_address(
        tmp_path: Path, smtp: SmtpRecorder, cli: Callable[..., object]) -> None:
    config_path = write_project(tmp_path, smtp.port)  # type: ignore[attr-defined]
    engine = engine_for(tmp_path)
    subscribe(engine, ["ann@example.com", "bob@example.com"])
    assert send(cli, tmp_path).exit_code == 0  # type: ignore[attr-defined]
    url = smtp.to("bob@example.com")[0].message["List-Unsubscribe"].strip("<>")
    async def one_click() -> tuple[int, int, str]:
        loaded, problems = load_config(config_path, "config.yaml", {})
        assert loaded is not None, problems
        tracker = Tracker(loaded, engine)
        await tracker.startup()
        try:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=tracker),
                                         base_url="https://go.example.com") as client:
                scanner = await client.get(urlsplit(url).path)  # a mail scanner following the link
                suppressed_after_get = len(_suppressions(engine))
                post = await client.post(urlsplit(url).path, content=b"List-Unsubscribe=One-Click",
                                         headers={"content-type": "application/x-www-form-urlencoded"})
                return scanner.status_code, suppressed_after_get, f"{post.status_code} {post.text}"
        finally:
            await tracker.shutdown()

    get_status, after_get, posted = asyncio.run(one_click())
    assert get_status == 200 and after_get == 0
    assert posted.startswith("200 ") and "You are unsubscribed" in posted
    assert [(s.email, s.reason, s.source, s.campaign) for s in _suppressions(engine)] == [
        ("bob@example.com", "unsubscribed", "one-click", "spring")]
    # the next campaign email (a forced resend of the slot: a new delivery) leaves bob out of its audience
    smtp.received.clear()
    result = send(cli, tmp_path, "--force", "--include-sent")
    assert result.output.rstrip().endswith("| 1 sent")  # type: ignore[attr-defined]
    assert [r.recipient for r in smtp.received] == ["ann@example.com"]


@pytest.fixture
def events() -> Iterator[list[logging.LogRecord]]:
    """The drainage events logged during the test (`drainage send` does not set up logging itself)."""
    logger = logging.getLogger(LOGGER)
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield records
    logger.removeHandler(handler)
    logger.setLevel(level)


def _done_event(records: list[logging.LogRecord]) -> dict[str, object]:
    [done] = [r for r in records if r.getMessage() == "email.fanout_done"]
    return done.fields  # type: ignore[attr-defined,no-any-return]


def test_throttling_replies_are_retried_and_hard_bounces_suppressed(
        tmp_path: Path, smtp: SmtpRecorder, cli: Callable[..., object], events: list[logging.LogRecord]) -> None:
    write_project(tmp_path, smtp.port)  # type: ignore[attr-defined]
    engine = engine_for(tmp_path)
    addresses = [f"user{i}@example.com" for i in range(12)]
    subscribe(engine, addresses)
    smtp.data_replies["user1@example.com"] = ["421 4.7.0 too many messages, slow down"]
    smtp.rcpt_replies["user2@example.com"] = ["451 4.7.1 greylisted, try again later", "450 4.2.0 mailbox busy"]
    smtp.data_replies["user3@example.com"] = ["452 4.3.1 insufficient storage", "454 4.7.0 TLS not available"]
    smtp.rcpt_replies["user4@example.com"] = ["550 5.1.1 no such user"]
    smtp.data_replies["user5@example.com"] = ["554 5.7.1 message refused"]
    result = send(cli, tmp_path)
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    assert "10 sent, 2 bounced" in result.output  # type: ignore[attr-defined]
    got = sorted(r.recipient for r in smtp.received)
    assert got == sorted(set(addresses) - {"user4@example.com", "user5@example.com"})  # each exactly once
    assert [a for a, _ in smtp.attempts].count("user2@example.com") == 2
    states = ledger(engine)
    assert states["user4@example.com"] == states["user5@example.com"] == "bounced"
    # 421 (user1) and 454 (user3's second reply) concern the session: the relay slows; 451/450/452 do not
    assert _done_event(events)["relay_slowed"] == 2
    assert {(s.email, s.reason, s.source) for s in _suppressions(engine)} == {
        ("user4@example.com", "bounced", "smtp"), ("user5@example.com", "bounced", "smtp")}
    from sqlmodel import Session, select

    from drainage.store.models import Delivery

    with Session(engine) as s:  # the recipients reached: the denominator of the email CTR in reports
        assert [d.recipients for d in s.exec(select(Delivery)).all()] == [10]


@pytest.mark.slow  # 300 messages at the relay's 100/second: three seconds by design
def test_greylisting_at_rcpt_retries_each_recipient_on_its_own_and_never_slows_the_relay(
        tmp_path: Path, smtp: SmtpRecorder, cli: Callable[..., object], events: list[logging.LogRecord]) -> None:
    """30 consecutive recipients answer 451 once at RCPT (greylisting): each waits its own short backoff, the
    relay keeps its rate (halving it 30 times would leave 0.2 msg/s), and all 300 get the message once."""
    write_project(tmp_path, smtp.port, connections=2, in_flight=20,  # type: ignore[attr-defined]
                  channel_extra="rate: 100/second\n")
    engine = engine_for(tmp_path)
    addresses = [f"user{i:03d}@example.com" for i in range(300)]
    subscribe(engine, addresses)
    greylisted = addresses[100:130]
    for address in greylisted:
        smtp.rcpt_replies[address] = ["451 4.7.1 greylisted, try again later"]
    result = send(cli, tmp_path)
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    assert "300 sent" in result.output  # type: ignore[attr-defined]
    assert sorted(r.recipient for r in smtp.received) == addresses  # each exactly once
    assert sorted(a for a, _ in smtp.attempts) == greylisted  # one deferral each
    assert set(ledger(engine).values()) == {"sent"}
    done = _done_event(events)
    assert (done["retried"], done["relay_slowed"]) == (30, 0)


def test_a_recipient_that_keeps_deferring_fails_after_max_attempts(
        tmp_path: Path, smtp: SmtpRecorder, cli: Callable[..., object]) -> None:
    write_project(tmp_path, smtp.port, channel_extra="max_attempts: 3\n")  # type: ignore[attr-defined]
    engine = engine_for(tmp_path)
    subscribe(engine, ["ann@example.com", "slow@example.com"])
    smtp.rcpt_replies["slow@example.com"] = ["451 4.7.1 later"] * 5
    result = send(cli, tmp_path)
    assert "1 sent, 1 failed" in result.output  # type: ignore[attr-defined]
    assert [a for a, _ in smtp.attempts] == ["slow@example.com"] * 3
    assert ledger(engine)["slow@example.com"] == "failed"
    assert not _suppressions(engine)  # a deferral is not a bounce


def test_campaign_auto_pauses_on_a_high_failure_rate_status_says_why_and_resume_carries_on(
        tmp_path: Path, smtp: SmtpRecorder, cli: Callable[..., object]) -> None:
    write_project(tmp_path, smtp.port, connections=1, in_flight=1,  # type: ignore[attr-defined]
                  channel_extra="pause_failure_rate: 0.2\npause_min_sample: 5\n")
    engine = engine_for(tmp_path)
    addresses = [f"user{i:02d}@example.com" for i in range(30)]
    subscribe(engine, addresses)
    for address in addresses[:4]:
        smtp.rcpt_replies[address] = ["550 5.1.1 no such user"]
    result = send(cli, tmp_path)
    assert result.exit_code == 1
    assert "paused" in result.output and "auto-paused: 4 of 5 messages failed or bounced (80%)" in \
        result.output  # type: ignore[attr-defined]
    assert len(smtp.received) == 1  # it stopped right there
    config = str(tmp_path / "config.yaml")
    status = cli("status", "--config", config)
    assert "PAUSED spring: auto-paused: 4 of 5 messages failed or bounced (80%), over pause_failure_rate 20%" in \
        status.output  # type: ignore[attr-defined]
    # an unsubscribe while the fan-out waits is honoured: the ledger claims no suppressed address
    assert suppression.suppress(engine, addresses[10], "unsubscribed", source="test")
    resumed = cli("resume", "spring", "--config", config)
    assert "resumed 1 paused email fan-out(s) of campaign spring" in resumed.output  # type: ignore[attr-defined]
    with session(engine) as s:
        assert s.exec(select(Delivery.status)).one() == "retrying"
    daemon = cli("run", "--once", "--config", config)
    assert daemon.exit_code == 0
    assert sorted(r.recipient for r in smtp.received) == addresses[4:10] + addresses[11:]  # the rest, each once
    assert fanouts(engine)[0].status == "done"
    assert ledger(engine)[addresses[10]] == "suppressed"


def test_validate_renders_email_templates_for_a_sample_subscriber_and_reports_file_line(
        tmp_path: Path, cli: Callable[..., object], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write_project(tmp_path, 2525)
    campaign = tmp_path / "campaigns" / "spring.yaml"
    good = campaign.read_text()
    campaign.write_text(good.replace("text_template: email/spring.txt.j2", "text_template: email/sprong.txt.j2"))
    result = cli("validate")
    assert result.exit_code == 2  # type: ignore[attr-defined]
    assert result.output.splitlines() == [  # type: ignore[attr-defined]
        "campaigns/spring.yaml:14:20: no such template 'templates/email/sprong.txt.j2' (did you mean "
        "'email/spring.txt.j2'?)", "1 problem in 1 file"]
    campaign.write_text(good)
    config = (tmp_path / "config.yaml").read_text()
    assert "    lists:\n    - newsletter\n" in config
    (tmp_path / "config.yaml").write_text(config.replace("    lists:\n    - newsletter\n", ""))
    (tmp_path / "templates" / "email" / "spring.html.j2").write_text(
        "<p>{{ item.name }}</p>\n<p>{{ subscriber.nmae }}</p>\n", encoding="utf-8")
    result = cli("validate")
    assert result.output.splitlines() == [  # type: ignore[attr-defined]
        "campaigns/spring.yaml:12:5: channel 'news' sends email but no subscriber list is named (add 'lists: "
        "[newsletter]' here or to channel 'news' in config.yaml)", "1 problem in 1 file"]
    campaign.write_text(good.replace("    subject: ", "    lists: [newsletter]\n    subject: "))
    result = cli("validate")
    assert result.output.splitlines() == [  # type: ignore[attr-defined]
        "templates/email/spring.html.j2:2: 'subscriber.nmae' is undefined (while rendering campaigns/spring.yaml: "
        "channel 'news', item 'scarf', variant 'warm') (did you mean 'name'?)", "1 problem in 1 file"]
    (tmp_path / "templates" / "email" / "spring.html.j2").write_text("<p>{{ subscriber.name }}</p>\n")
    assert cli("validate").exit_code == 0  # type: ignore[attr-defined]
    preview = cli("preview", "spring", "--at", "2020-01-01")
    assert "Subject: Für Sam Sample: Merino scarf" in preview.output  # type: ignore[attr-defined]


def test_html_is_autoescaped_and_the_text_part_can_be_converted_from_html(
        tmp_path: Path, smtp: SmtpRecorder, cli: Callable[..., object]) -> None:
    write_project(tmp_path, smtp.port)  # type: ignore[attr-defined]
    campaign = tmp_path / "campaigns" / "spring.yaml"
    campaign.write_text(campaign.read_text().replace("    text_template: email/spring.txt.j2\n", ""))
    engine = engine_for(tmp_path)
    report = ImportReport()
    rows = 'email,name,consent_source,consent_at\nx@example.com,"<script>alert(1)</script> & Co",form,2025-01-01\n'
    import_subscribers(engine, read_csv(io.StringIO(rows), report), ["newsletter"], report)
    assert send(cli, tmp_path).exit_code == 0  # type: ignore[attr-defined]
    message = smtp.received[0].message
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co" in html
    assert "Hello <script>alert(1)</script> & Co" in text  # plain text, converted from the HTML (inscriptis)
    assert "Unsubscribe" in text and UNSUBSCRIBE.search(text)


def _suppressions(engine) -> list[Suppression]:  # type: ignore[no-untyped-def]
    with session(engine) as s:
        return list(s.exec(select(Suppression)).all())


def _said(output: str) -> list[str]:
    """The lines `drainage send` printed (without log lines a warning may add to the captured output)."""
    return [line for line in output.splitlines() if line.startswith(("resuming", "--force", "sent", "already",
                                                                     "interrupted", "sending", "failed"))]


def _crash_leftovers(engine: Engine) -> list[str]:
    """Make the slot's finished fan-out look like its sender was killed mid-way: the delivery `sending` under a
    dead process; of 10 recipients 4 sent, 2 `sending` (unknown), 1 claimed and 3 queued. Returns the addresses
    that were never handed to the relay (claimed or queued)."""
    dead = f"{socket.gethostname()}:{2**22 + 12345}:dead00"  # a pid that cannot exist here
    with engine.begin() as conn:
        conn.execute(text("UPDATE deliveries SET status = 'sending', claimed_by = :dead, lease_until = NULL"),
                     {"dead": dead})
        conn.execute(text("UPDATE email_fanouts SET status = 'running', finished_at = NULL"))
        ids = [row[0] for row in conn.execute(text("SELECT id FROM email_recipients ORDER BY id"))]
        for state, chunk in (("sending", ids[4:6]), ("claimed", ids[6:7]), ("queued", ids[7:])):
            conn.execute(text("UPDATE email_recipients SET status = :state, lease = :lease WHERE id = :id"),
                         [{"state": state, "lease": None if state == "queued" else f"{dead}:1", "id": i}
                          for i in chunk])
        return list(conn.execute(text(
            "SELECT s.email FROM email_recipients r JOIN subscribers s ON s.id = r.subscriber_id "
            "WHERE r.status IN ('claimed', 'queued') ORDER BY r.id")).scalars())


def test_send_after_a_crash_resumes_tells_what_is_known_and_force_never_remails_the_sent(
        tmp_path: Path, smtp: SmtpRecorder, cli: Callable[..., object]) -> None:
    write_project(tmp_path, smtp.port)  # type: ignore[attr-defined]
    engine = engine_for(tmp_path)
    addresses = [f"user{i}@example.com" for i in range(10)]
    subscribe(engine, addresses)
    assert send(cli, tmp_path).exit_code == 0  # type: ignore[attr-defined]
    left = _crash_leftovers(engine)
    smtp.received.clear()
    resumed = send(cli, tmp_path)
    assert resumed.exit_code == 0, resumed.output  # type: ignore[attr-defined]
    lines = _said(resumed.output)  # type: ignore[attr-defined]
    assert lines[0] == ("resuming the fan-out: 4 sent, 2 unknown, 4 left (only the 4 left are mailed; unknown "
                        "ones are not resent)")
    assert lines[1].endswith("| 8 sent, 2 unknown (2 unknown: `drainage status --unknown` lists them)")
    assert sorted(r.recipient for r in smtp.received) == sorted(left)  # the 4 never handed over, no one else
    unknown = sorted(a for a, state in ledger(engine).items() if state == "unknown")
    assert len(unknown) == 2
    # sent: refused, with what is known and what to do; nothing is mailed
    smtp.received.clear()
    again = send(cli, tmp_path)
    assert again.exit_code == 0  # type: ignore[attr-defined]
    assert " ".join(_said(again.output)).split(" | ")[-1].split(" was already sent: ")[1].rstrip() == (  # type: ignore
        "8 sent, 2 unknown, 0 left. `drainage status --unknown` lists the 2 whose outcome is unknown; "
        "`drainage send spring --force` mails them (and anyone not reached), never the 8 sent; add --include-sent "
        "to mail everyone again")
    assert smtp.received == []
    # --force: only who did not get it, said before mailing
    forced = send(cli, tmp_path, "--force")
    assert forced.exit_code == 0, forced.output  # type: ignore[attr-defined]
    assert _said(forced.output)[0] == (  # type: ignore[attr-defined]
        "--force: mailing 2 recipient(s); 8 who already got this slot are left out (--include-sent mails them too)")
    assert sorted(r.recipient for r in smtp.received) == unknown
    # --force --include-sent: everyone, said first too
    smtp.received.clear()
    everyone = send(cli, tmp_path, "--force", "--include-sent")
    assert _said(everyone.output)[0] == "--force: mailing 10 recipient(s)"  # type: ignore[attr-defined]
    assert sorted(r.recipient for r in smtp.received) == sorted(addresses)
    lonely = send(cli, tmp_path, "--include-sent")
    assert lonely.exit_code == 2  # type: ignore[attr-defined]


def test_a_fan_out_stopped_by_a_relay_outage_resumes_under_send_and_run_once(
        tmp_path: Path, cli: Callable[..., object]) -> None:
    port = free_port()
    config = write_project(tmp_path, port)
    engine = engine_for(tmp_path)
    addresses = [f"user{i:03d}@example.com" for i in range(200)]
    subscribe(engine, addresses)
    down = send(cli, tmp_path)  # nothing listens on the port: the relay is down
    assert down.exit_code == 1  # type: ignore[attr-defined]
    assert down.output.startswith("interrupted")  # type: ignore[attr-defined]
    assert down.output.rstrip().endswith(  # type: ignore[attr-defined]
        "0 sent, 0 unknown, 200 left: `drainage run` (or this command again) resumes it")
    with session(engine) as s:
        assert [(d.status, d.next_attempt_at is not None) for d in s.exec(select(Delivery)).all()] == [
            ("retrying", True)]
    recorder = SmtpRecorder()
    controller = Controller(recorder, hostname="127.0.0.1", port=port, ready_timeout=10)
    controller.start()
    try:
        # the relay is back: the daemon picks the delivery up (retrying, due now) and resumes the fan-out
        first = cli("run", "--once", "--config", str(config))
        assert first.exit_code == 0, first.output  # type: ignore[attr-defined]
    finally:
        controller.stop()
    assert sorted(r.recipient for r in recorder.received) == addresses
    with session(engine) as s:
        assert [d.status for d in s.exec(select(Delivery)).all()] == ["sent"]


def test_send_again_resumes_a_fan_out_the_relay_interrupted(tmp_path: Path, cli: Callable[..., object]) -> None:
    port = free_port()
    write_project(tmp_path, port)
    engine = engine_for(tmp_path)
    addresses = [f"user{i:03d}@example.com" for i in range(50)]
    subscribe(engine, addresses)
    assert send(cli, tmp_path).exit_code == 1  # type: ignore[attr-defined]
    recorder = SmtpRecorder()
    controller = Controller(recorder, hostname="127.0.0.1", port=port, ready_timeout=10)
    controller.start()
    try:
        again = send(cli, tmp_path)
    finally:
        controller.stop()
    assert again.exit_code == 0, again.output  # type: ignore[attr-defined]
    assert _said(again.output)[0] == (  # type: ignore[attr-defined]
        "resuming the fan-out: 0 sent, 0 unknown, 50 left (only the 50 left are mailed; unknown ones are not resent)")
    assert sorted(r.recipient for r in recorder.received) == addresses
