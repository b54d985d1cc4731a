"""`drainage status --unknown` lists every unknown post and email recipient with how to resolve it, and
`drainage resolve` settles them."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlmodel import select

from drainage.store.db import session
from drainage.store.models import Delivery
from tests.email_helpers import engine_for, ledger, slot_arg, subscribe, write_project
from tests.fakes.smtp import SmtpRecorder, smtp_server

POST_KEY = "spring|social|scarf|-|2026-12-01T09:00:00Z"


@pytest.fixture
def smtp() -> Iterator[SmtpRecorder]:
    with smtp_server() as (recorder, port):
        recorder.port = port  # type: ignore[attr-defined]
        yield recorder


def test_every_unknown_recipient_and_post_is_listed_with_how_to_resolve_it_and_resolve_settles_them(
        tmp_path: Path, smtp: SmtpRecorder, cli: Callable[..., object]) -> None:
    config = str(write_project(tmp_path, smtp.port))  # type: ignore[attr-defined]
    engine = engine_for(tmp_path)
    addresses = [f"user{i:02d}@example.com" for i in range(14)]
    subscribe(engine, addresses)
    assert cli("send", "spring", "--at", slot_arg(), "--config", config).exit_code == 0  # type: ignore
    message_ids = {r.recipient: r.message["Message-ID"] for r in smtp.received}
    with engine.begin() as conn:  # a crash left 12 recipients unknown (more than `status` shows inline)...
        conn.execute(text("UPDATE email_recipients SET status = 'unknown', error = 'in flight at a crash' "
                          "WHERE id > 2"))
        key = conn.execute(text("SELECT key FROM deliveries")).scalar_one()
    with session(engine) as s:  # ...and one social post
        s.add(Delivery(key=POST_KEY, campaign="spring", channel="social", item="scarf", status="unknown",
                       slot_at=datetime(2026, 12, 1, 9, tzinfo=UTC), payload="{}", error="crashed mid-post"))
        s.commit()
    listed = cli("status", "--unknown", "--format", "csv", "--config", config)
    assert listed.exit_code == 0, listed.output  # type: ignore[attr-defined]
    rows = list(csv.DictReader(io.StringIO(listed.stdout)))  # type: ignore[attr-defined]
    assert [(r["kind"], r["key"], r["recipient"]) for r in rows] == [("post", POST_KEY, "")] + [
        ("recipient", key, a) for a in addresses[2:]]
    assert all(r["message_id"] == message_ids[r["recipient"]] for r in rows[1:])  # what the relay's log shows
    assert rows[0]["resolve"] == (f"look on social: there, `drainage resolve '{POST_KEY}' --sent`; not there, "
                                  f"`drainage resolve '{POST_KEY}' --not-sent` (posted again)")
    assert rows[1]["resolve"] == (f"search the relay's log for {message_ids['user02@example.com']}: accepted, "
                                  f"`drainage resolve '{key}' --recipient user02@example.com --sent`; not, "
                                  "`... --not-sent` (mailed again)")
    assert rows[1]["why"] == "in flight at a crash" and rows[0]["slot"] == "2026-12-01T09:00:00+00:00"
    shown = cli("status", "--unknown", "--config", config).output  # type: ignore[attr-defined]
    assert shown.rstrip().endswith("13 unknown outcome(s)")
    assert "and 2 more; `drainage status --unknown` lists them all" in cli(  # type: ignore[attr-defined]
        "status", "--config", config).output
    # resolve: one recipient the relay accepted, the rest mailed again; the post was found on the platform
    one = cli("resolve", key, "--recipient", "USER02@example.com", "--sent", "--config", config)
    assert one.output.strip() == f"1 unknown recipient(s) of {key} recorded as sent"  # type: ignore[attr-defined]
    rest = cli("resolve", key, "--all-recipients", "--not-sent", "--config", config)
    assert rest.output.startswith(f"11 unknown recipient(s) of {key} queued")  # type: ignore[attr-defined]
    post = cli("resolve", POST_KEY, "--sent", "--config", config)
    assert post.output.strip() == f"{POST_KEY}: recorded as sent"  # type: ignore[attr-defined]
    smtp.received.clear()
    again = cli("send", "spring", "--at", slot_arg(), "--config", config)
    assert again.exit_code == 0, again.output  # type: ignore[attr-defined]
    assert sorted(r.recipient for r in smtp.received) == addresses[3:]
    assert set(ledger(engine).values()) == {"sent"}
    with session(engine) as s:
        assert {d.key: d.status for d in s.exec(select(Delivery)).all()} == {key: "sent", POST_KEY: "sent"}
    empty = cli("status", "--unknown", "--config", config).output  # type: ignore[attr-defined]
    assert empty.strip() == "0 unknown outcome(s): nothing to resolve"
    missing = cli("resolve", "no-such-key", "--sent", "--config", config)
    assert missing.exit_code == 2  # type: ignore[attr-defined]
