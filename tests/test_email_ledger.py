"""The ledger's claims: the lowest ids among the recipients ready now, retries due included, none claimed twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from drainage.email.ledger import Ledger, Result, open_fanout
from drainage.store.email_models import RecipientStatus as R
from tests.email_helpers import engine_for, subscribe, write_project


def test_a_claim_takes_the_lowest_ready_ids_fresh_or_due_and_skips_retries_not_due(tmp_path: Path) -> None:
    write_project(tmp_path, 2525)
    engine = engine_for(tmp_path)
    subscribe(engine, [f"u{i}@example.com" for i in range(10)])
    fanout = open_fanout(engine, "spring|news|scarf|warm|slot", "spring", "news", ["newsletter"])
    assert fanout.id is not None
    ledger = Ledger(engine, fanout.id, "spring")
    first, _ = ledger.step([], [], 4)  # ids 1-4
    now = datetime.now(UTC)
    retries = [Result(first[0].row_id, R.QUEUED, first[0].email, 451, "later", now - timedelta(seconds=1)),  # due
               Result(first[1].row_id, R.QUEUED, first[1].email, 451, "later", now + timedelta(hours=1)),  # not
               Result(first[2].row_id, R.SENT, first[2].email, 250),
               Result(first[3].row_id, R.QUEUED, first[3].email, 451, "later", now - timedelta(seconds=2))]  # due
    claimed, _ = ledger.step(retries, [], 3)
    ids = [c.row_id for c in first]
    assert [c.row_id for c in claimed] == [ids[0], ids[3], ids[3] + 1]  # due retries and the next fresh one
    assert claimed[0].attempts == 2 and claimed[2].attempts == 1
    rest, _ = ledger.step([], [], 100)
    assert [c.row_id for c in rest] == list(range(ids[3] + 2, ids[3] + 7))  # never the one not due, nor twice
    assert ledger.step([], [], 100) == ([], [])
    engine.dispose()
