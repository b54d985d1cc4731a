"""The tracker's email routes, through the real Tracker app: unsubscribe pages, bounce webhook, double opt-in."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from sqlmodel import select

from drainage.email.tokens import Tokens
from drainage.store.db import make_engine, session
from drainage.store.email_models import Subscriber, Suppression
from drainage.tracker.orders import sign_generic
from tests.email_helpers import subscribe
from tests.fakes.smtp import smtp_server
from tests.tracker_helpers import load, run, running

BOUNCE_SECRET = "bounce-secret-for-tests"
EMAIL = """email:
  token_secret: token-secret-for-tests
  bounce_secret: {bounce}
  signup: {{list: newsletter, channel: news}}
channels:
  news:
    type: email
    host: 127.0.0.1
    port: {port}
    security: none
    from_address: "Northwind <news@shop.example.com>"
"""


def config(tmp_path: Path, port: int = 2525, bounce: str = BOUNCE_SECRET):  # type: ignore[no-untyped-def]
    loaded = load(tmp_path, writer="thread")  # the web surface is the subject, not the click writer
    path = loaded.path
    path.write_text(path.read_text() + EMAIL.format(port=port, bounce=bounce))
    return load_from(path)


def load_from(path: Path):  # type: ignore[no-untyped-def]
    from drainage.config import load_config

    loaded, problems = load_config(path, "config.yaml", {})
    assert loaded is not None, problems
    return loaded


def suppressions(loaded) -> list[tuple[str, str, str]]:  # type: ignore[no-untyped-def]
    engine = make_engine(loaded.database_url)
    with session(engine) as s:
        rows = [(r.email, r.reason, r.source) for r in s.exec(select(Suppression).order_by(Suppression.email))]
    engine.dispose()
    return rows


def test_unsubscribe_link_get_asks_post_unsubscribes_and_bad_tokens_are_404_without_echo(tmp_path: Path) -> None:
    loaded = config(tmp_path)

    async def scenario() -> None:
        async with running(loaded) as (tracker, client):
            subscribe(tracker.engine, ["ann@example.com"])
            with session(tracker.engine) as s:
                ref = s.exec(select(Subscriber.ref)).one()
            token = Tokens("token-secret-for-tests").unsubscribe(ref, "spring")
            page = await client.get(f"/u/{token}")
            assert page.status_code == 200 and '<form method="post">' in page.text
            assert "ann@example.com" not in page.text
            head = await client.head(f"/u/{token}")
            assert head.status_code == 200
            assert suppressions(loaded) == []  # opening the link (a scanner) unsubscribes nobody
            done = await client.post(f"/u/{token}", data={"List-Unsubscribe": "One-Click"})
            assert done.status_code == 200 and "You are unsubscribed" in done.text
            again = await client.post(f"/u/{token}")
            assert again.status_code == 200  # idempotent
            forged = Tokens("another-key").unsubscribe(ref, "spring")
            for bad in (forged, token[:-2], "<script>alert(1)</script>", "x" * 500):
                answer = await client.post(f"/u/{bad}")
                assert answer.status_code == 404
                assert "<script>" not in answer.text and bad not in answer.text

    run(scenario)
    assert suppressions(loaded) == [("ann@example.com", "unsubscribed", "one-click")]


def test_bounce_webhook_generic_and_ses_shapes_suppress_hard_bounces_and_complaints(tmp_path: Path) -> None:
    loaded = config(tmp_path)
    generic = json.dumps({"events": [
        {"type": "bounce", "email": "Hard@Example.com", "detail": "550 5.1.1 user unknown"},
        {"type": "bounce", "email": "soft@example.com", "hard": False},
        {"type": "complaint", "email": "angry@example.com"},
        {"type": "bounce", "email": "IDN@Bücher.example"}]}).encode()  # stored as idn@xn--bcher-kva.example
    ses = json.dumps({"Type": "Notification", "Message": json.dumps({
        "notificationType": "Bounce",
        "bounce": {"bounceType": "Permanent", "bounceSubType": "General",
                   "bouncedRecipients": [{"emailAddress": "gone@example.com", "diagnosticCode": "smtp; 550"}]}})})
    complaint = json.dumps({"Type": "Notification", "Message": json.dumps({
        "notificationType": "Complaint",
        "complaint": {"complainedRecipients": [{"emailAddress": "spam@example.com"}]}})})

    async def scenario() -> None:
        async with running(loaded) as (_tracker, client):
            now = int(time.time())
            unsigned = await client.post("/hooks/bounce", content=generic)
            assert unsigned.status_code == 401
            forged = await client.post("/hooks/bounce", content=generic,
                                       headers={"x-drainage-signature": sign_generic("wrong", generic, now)})
            assert forged.status_code == 401
            old = sign_generic(BOUNCE_SECRET, generic, now - 3600)
            stale = await client.post("/hooks/bounce", content=generic, headers={"x-drainage-signature": old})
            assert stale.status_code == 401
            assert suppressions(loaded) == []
            ok = await client.post("/hooks/bounce", content=generic,
                                   headers={"x-drainage-signature": sign_generic(BOUNCE_SECRET, generic, now)})
            assert ok.status_code == 200 and ok.json() == {"events": 4, "suppressed": 3, "ignored_soft": 1}
            wrong_key = await client.post("/hooks/bounce?key=nope", content=ses)
            assert wrong_key.status_code == 401
            for body in (ses, complaint):  # SNS cannot sign: it posts to a URL carrying the secret
                answer = await client.post(f"/hooks/bounce?key={BOUNCE_SECRET}", content=body)
                assert answer.status_code == 200 and answer.json()["suppressed"] == 1
            confirm = json.dumps({"Type": "SubscriptionConfirmation",
                                  "SubscribeURL": "https://sns.example.com/confirm?x=1"})
            answer = await client.post(f"/hooks/bounce?key={BOUNCE_SECRET}", content=confirm)
            assert answer.json()["subscribe_url"] == "https://sns.example.com/confirm?x=1"
            broken = b'{"type": "bounce"}'
            answer = await client.post("/hooks/bounce", content=broken,
                                       headers={"x-drainage-signature": sign_generic(BOUNCE_SECRET, broken, now)})
            assert answer.status_code == 422 and answer.json() == {"error": "each event needs an email address"}

    run(scenario)
    assert suppressions(loaded) == [("angry@example.com", "complained", "webhook"),
                                    ("gone@example.com", "bounced", "webhook"),
                                    ("hard@example.com", "bounced", "webhook"),
                                    ("idn@xn--bcher-kva.example", "bounced", "webhook"),
                                    ("spam@example.com", "complained", "webhook")]


def test_bounce_webhook_is_off_without_a_secret(tmp_path: Path) -> None:
    loaded = config(tmp_path, bounce="''")

    async def scenario() -> int:
        async with running(loaded) as (_tracker, client):
            return (await client.post("/hooks/bounce", content=b"{}")).status_code

    assert run(scenario) == 503


def test_double_opt_in_mails_a_confirmation_link_and_only_a_confirmed_address_becomes_active(
        tmp_path: Path) -> None:
    with smtp_server() as (smtp, port):
        loaded = config(tmp_path, port)

        async def scenario() -> None:
            async with running(loaded) as (tracker, client):
                form = await client.get("/subscribe")
                assert form.status_code == 200 and 'name="email"' in form.text
                bad = await client.post("/subscribe", data={"email": "<b>not an address</b>"})
                assert bad.status_code == 422 and "<b>" not in bad.text
                answer = await client.post("/subscribe", data={"email": "New@Example.com", "name": "Nina"})
                assert answer.status_code == 200 and "Check your inbox" in answer.text
                assert [r.recipient for r in smtp.received] == ["new@example.com"]
                again = await client.post("/subscribe", data={"email": "new@example.com"})
                assert "Check your inbox" in again.text and len(smtp.received) == 1  # no mail bombing
                with session(tracker.engine) as s:
                    assert s.exec(select(Subscriber.status)).one() == "pending"
                text = smtp.received[0].message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
                link = re.search(r"https://go\.example\.com(/subscribe/confirm/\S+)", text)
                assert link is not None
                page = await client.get(link.group(1))  # a scanner opening it confirms nothing
                assert page.status_code == 200 and "<form" in page.text
                with session(tracker.engine) as s:
                    assert s.exec(select(Subscriber.status)).one() == "pending"
                confirmed = await client.post(link.group(1))
                assert confirmed.status_code == 200 and "You are subscribed" in confirmed.text
                with session(tracker.engine) as s:
                    row = s.exec(select(Subscriber)).one()
                assert (row.email, row.name, row.status) == ("new@example.com", "Nina", "active")
                assert row.consent_source == "sign-up form (confirmed by email)"
                forged = await client.post("/subscribe/confirm/" + Tokens("other").confirm(row.ref))
                assert forged.status_code == 404

        run(scenario)


def test_sign_up_routes_without_a_list_are_not_found(tmp_path: Path) -> None:
    loaded = load(tmp_path, writer="thread")  # the web surface is the subject, not the click writer

    async def scenario() -> list[int]:
        async with running(loaded) as (_tracker, client):
            return [(await client.get(path)).status_code for path in ("/subscribe", "/subscribe/confirm/abc")]

    assert run(scenario) == [404, 404]
