"""Outcomes nobody knows: every email recipient and every post left `unknown` by a crash, and how to settle them.

`drainage status --unknown [--format csv]` lists them all (no time limit, streamed); `drainage resolve` settles
them once the marketer has looked at the relay's log or the platform:

    post       KEY --sent                   it is on the platform: recorded as sent
               KEY --not-sent               it is not: queued again (the daemon or `drainage send` posts it)
    recipient  KEY --recipient ADDR --sent  the relay's log has the Message-ID: recorded as sent
               KEY --recipient ADDR --not-sent (or --all-recipients): queued again, the fan-out reopened
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, text

from drainage.email.addresses import comparable
from drainage.email.fanout import message_id
from drainage.email.ledger import stamper
from drainage.store.email_models import FanoutStatus
from drainage.store.email_models import RecipientStatus as R
from drainage.store.models import DeliveryStatus as S

COLUMNS = ["kind", "key", "campaign", "channel", "slot", "recipient", "message_id", "since", "why", "resolve"]
BATCH = 1000


@dataclass(frozen=True)
class Unknown:
    """One outcome nobody knows: a post (`recipient` empty) or an email recipient."""

    kind: str  # post | recipient
    key: str
    campaign: str
    channel: str
    slot: datetime
    recipient: str
    message_id: str
    since: datetime | None
    why: str
    resolve: str

    def row(self) -> list[str]:
        return [self.kind, self.key, self.campaign, self.channel, _iso(self.slot), self.recipient, self.message_id,
                _iso(self.since), self.why, self.resolve]


def _iso(moment: datetime | str | None) -> str:
    if moment is None:
        return ""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat(timespec="seconds")


def unknowns(engine: Engine, message_id_domain: Callable[[str], str | None]) -> Iterator[Unknown]:
    """Every unknown post, then every unknown recipient (by fan-out, in id order), read in batches.
    `message_id_domain(channel)`: the domain of that email channel's Message-IDs (None: not configured)."""
    with engine.connect() as conn:
        posts = conn.execute(text(
            "SELECT key, campaign, channel, slot_at, updated_at, error FROM deliveries WHERE status = :unknown "
            "ORDER BY slot_at, id"), {"unknown": S.UNKNOWN}).all()
    for key, campaign, channel, slot, since, error in posts:
        yield Unknown("post", key, campaign, channel, slot, "", "", since, error or "",
                      f"look on {channel}: there, `drainage resolve '{key}' --sent`; not there, `drainage resolve "
                      f"'{key}' --not-sent` (posted again)")
    last = 0
    while True:
        with engine.connect() as conn:
            rows = conn.execute(text(
                "SELECT r.id, f.delivery_key, f.campaign, f.channel, d.slot_at, s.email, s.ref, r.updated_at, r.error "
                "FROM email_recipients r JOIN email_fanouts f ON f.id = r.fanout_id "
                "LEFT JOIN subscribers s ON s.id = r.subscriber_id LEFT JOIN deliveries d ON d.key = f.delivery_key "
                "WHERE r.status = :unknown AND r.id > :last ORDER BY r.id LIMIT :n"),
                {"unknown": R.UNKNOWN, "last": last, "n": BATCH}).all()
        if not rows:
            return
        for row_id, key, campaign, channel, slot, email, ref, since, error in rows:
            domain = message_id_domain(channel)
            mid = message_id(key, ref, domain) if domain and ref else ""
            address = email or "(subscriber deleted)"
            yield Unknown("recipient", key, campaign, channel, slot, address, mid, since, error or "",
                          f"search the relay's log for {mid or 'the message'}: accepted, `drainage resolve '{key}' "
                          f"--recipient {address} --sent`; not, `... --not-sent` (mailed again)")
            last = row_id


def resolve_post(engine: Engine, key: str, sent: bool) -> int:
    """An unknown post: recorded as sent, or queued again (due now). Returns 1, or 0 if `key` is not unknown."""
    now = stamper(engine)(datetime.now(UTC))
    with engine.begin() as conn:
        if sent:
            result = conn.execute(text(
                "UPDATE deliveries SET status = :sent, error = :why, sent_at = :now, updated_at = :now "
                "WHERE key = :key AND status = :unknown"),
                {"sent": S.SENT, "why": "resolved: found sent after a crash", "now": now, "key": key,
                 "unknown": S.UNKNOWN})
        else:
            result = conn.execute(text(
                "UPDATE deliveries SET status = :retrying, next_attempt_at = :now, claimed_by = NULL, "
                "error = :why, updated_at = :now WHERE key = :key AND status = :unknown"),
                {"retrying": S.RETRYING, "why": "resolved: not sent after a crash; sending again", "now": now,
                 "key": key, "unknown": S.UNKNOWN})
    return int(result.rowcount)  # type: ignore[attr-defined]


def resolve_recipients(engine: Engine, key: str, addresses: Sequence[str] | None, sent: bool) -> int:
    """Unknown recipients of the fan-out of delivery `key` (`addresses`, or all when None): recorded as sent, or
    queued again with the fan-out reopened and its delivery due now. Returns how many changed."""
    now = stamper(engine)(datetime.now(UTC))
    params: dict[str, object] = {"key": key, "unknown": R.UNKNOWN, "now": now}
    which = ""
    if addresses is not None:
        names = {f"a{i}": comparable(a) for i, a in enumerate(addresses)}
        if not names:
            return 0
        which = (" AND subscriber_id IN (SELECT id FROM subscribers WHERE email IN "
                 f"({', '.join(':' + k for k in names)}))")
        params.update(names)
    fanout = "fanout_id = (SELECT id FROM email_fanouts WHERE delivery_key = :key)"
    with engine.begin() as conn:
        if sent:
            result = conn.execute(text(
                f"UPDATE email_recipients SET status = :sent, error = :why, updated_at = :now WHERE {fanout} "
                f"AND status = :unknown{which}"),
                {**params, "sent": R.SENT, "why": "resolved: the relay accepted it"})
            return int(result.rowcount)  # type: ignore[attr-defined]
        result = conn.execute(text(
            f"UPDATE email_recipients SET status = :queued, lease = NULL, next_attempt_at = NULL, error = :why, "
            f"updated_at = :now WHERE {fanout} AND status = :unknown{which}"),
            {**params, "queued": R.QUEUED, "why": "resolved: not received; mailed again"})
        changed = int(result.rowcount)  # type: ignore[attr-defined]
        if changed:
            conn.execute(text("UPDATE email_fanouts SET status = :running, finished_at = NULL, updated_at = :now "
                              "WHERE delivery_key = :key AND status = :done"),
                         {"running": FanoutStatus.RUNNING, "done": FanoutStatus.DONE, "key": key, "now": now})
            conn.execute(text("UPDATE deliveries SET status = :retrying, next_attempt_at = :now, claimed_by = NULL, "
                              "error = :why, updated_at = :now WHERE key = :key AND status IN (:sent, :unknown, "
                              ":failed)"),
                         {"retrying": S.RETRYING, "now": now, "key": key, "sent": S.SENT, "unknown": S.UNKNOWN,
                          "failed": S.FAILED, "why": f"resolved: {changed} recipient(s) to mail again"})
    return changed
