"""The per-recipient ledger of a fan-out: who gets the message, and what happened to each of them.

One `email_fanouts` row per delivery (campaign slot) and one `email_recipients` row per (fan-out, subscriber),
unique. The audience is frozen when the fan-out starts (one INSERT ... SELECT over the lists, minus suppressed
and unconfirmed addresses). Then, in one transaction per step, the sender records the outcomes of finished
messages, stores the tracked links of the messages it rendered (before they are sent) and claims the next
recipients:

    queued -> claimed -> sending -> sent | failed | bounced   (suppressed: skipped at claim time; unknown: below)

A claim picks queued ids, then a conditional UPDATE (`... AND status = 'queued'`) stamps a lease (the sender's
worker id and a claim number) and its time on them, and only the rows that carry this lease are read back: two
senders can never claim the same recipient. A claimed row is rendered and waits for an open SMTP session; only
then, right before the session's MAIL/RCPT/DATA, is it marked `sending` (`write`), in the same transaction that
records the outcome of that session's previous message: nothing of a `claimed` row has reached the relay, and a
sender has at most one `sending` row per SMTP session. Claims are what lets several daemons share one fan-out:
each claim is a chunk of at most `in_flight` recipients, and any daemon can claim the next one
(`drainage.email.fanout`). The
suppression list is joined at claim time, so an unsubscribe or bounce is honoured from the next claim on.

A sender renews the time of its leases while it works. Rows whose sender is gone (a process of this host that
no longer exists, or a lease not renewed for `daemon.lease`) are settled: `claimed` ones go back to the queue
(they never reached the relay); for `sending` ones whether the relay accepted them is unknown. They become
`unknown` (reported by `drainage status --unknown`, never resent silently), or are queued again when the
campaign says `on_unknown: resend`. A dead sender leaves at most `connections` rows `unknown` (and at most
`in_flight` claimed ones, re-queued). Final rows keep their lease: it says which worker sent each recipient.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, select, text
from sqlalchemy.exc import IntegrityError

from drainage.links import TrackedLink
from drainage.store.db import session
from drainage.store.email_models import (
    Fanout,
    FanoutStatus,
    RecipientStatus,
    SubscriberStatus,
    SuppressionReason,
)
from drainage.store.models import Delivery, DeliveryStatus
from drainage.store.rawsql import RawCursor
from drainage.workers import is_dead_here, worker_id

R = RecipientStatus
LEASE_WIDTH = 64
"""The width of `email_recipients.lease`: a long host name is cut from the left (such an owner is then only ever
settled by its lease time, never as a dead process of this host)."""


@dataclass(frozen=True)
class Claimed:
    """A recipient claimed for sending, with what rendering needs."""

    row_id: int
    attempts: int
    ref: str
    email: str
    name: str
    locale: str
    attributes: str


@dataclass(frozen=True)
class Result:
    """The outcome of one claimed recipient, to be written."""

    row_id: int
    status: str  # a RecipientStatus, or QUEUED again (retry) with next_attempt_at
    email: str = ""
    code: int | None = None
    error: str | None = None
    next_attempt_at: datetime | None = None


def _now() -> datetime:
    return datetime.now(UTC)


def stamper(engine: Engine) -> Callable[[datetime], Any]:
    """Datetimes for raw SQL, in the form SQLAlchemy stores them (naive UTC text in SQLite)."""
    if engine.dialect.name == "sqlite":
        return lambda moment: moment.astimezone(UTC).replace(tzinfo=None).isoformat(" ", timespec="microseconds")
    return lambda moment: moment


def _parse(value: Any) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def open_fanout(engine: Engine, delivery_key: str, campaign: str, channel: str, lists: Sequence[str],
                exclude_sent_of: Sequence[str] = (), locales: Callable[[str, str], bool] | None = None) -> Fanout:
    """The fan-out of a delivery; created with its frozen audience the first time (one transaction).

    `exclude_sent_of`: delivery keys of earlier fan-outs whose `sent` recipients are left out of the audience
    (a forced send of a slot never mails again who got it, unless asked). `locales`: only subscribers whose
    locale and `country` attribute it accepts (a market's mail on a channel of every market goes to that market's
    subscribers)."""
    country = _country_sql(engine)
    with session(engine) as s:
        found = s.execute(select(Fanout).where(Fanout.delivery_key == delivery_key)).scalar_one_or_none()
        if found is not None:
            return found
        kept: dict[str, str] = {}
        by_locale = ""
        if locales is not None:
            present = s.execute(text(f"SELECT DISTINCT s.locale, {country} FROM subscribers s")).all()
            accepted: dict[str, list[str]] = {}
            for locale, where in present:
                if locales(locale or "", where or ""):
                    accepted.setdefault(locale or "", []).append(where or "")
            terms = []
            for i, (locale, wheres) in enumerate(sorted(accepted.items())):
                kept[f"k{i}"] = locale
                kept.update({f"k{i}c{j}": w for j, w in enumerate(wheres)})
                terms.append(f"(s.locale = :k{i} AND {country} IN "
                             f"({', '.join(f':k{i}c{j}' for j in range(len(wheres)))}))")
            by_locale = f"AND ({' OR '.join(terms)}) " if terms else "AND 1 = 0 "
    now = stamper(engine)(_now())
    try:
        with engine.begin() as conn:
            fanout_id = conn.execute(text(
                "INSERT INTO email_fanouts (delivery_key, campaign, channel, lists, total, status, created_at, "
                "updated_at) VALUES (:key, :campaign, :channel, :lists, 0, :status, :now, :now) RETURNING id"),
                {"key": delivery_key, "campaign": campaign, "channel": channel, "lists": ",".join(lists),
                 "status": FanoutStatus.RUNNING, "now": now}).scalar_one()
            names = {f"l{i}": name for i, name in enumerate(lists)}
            earlier = {f"e{i}": key for i, key in enumerate(exclude_sent_of)}
            already = ("AND NOT EXISTS (SELECT 1 FROM email_recipients e JOIN email_fanouts g ON g.id = e.fanout_id "
                       f"WHERE e.subscriber_id = s.id AND e.status = :sent AND g.delivery_key IN "
                       f"({', '.join(':' + k for k in earlier)})) ") if earlier else ""
            conn.execute(text(
                "INSERT INTO email_recipients (fanout_id, subscriber_id, status, attempts) "
                "SELECT :f, s.id, :queued, 0 FROM subscribers s "
                f"WHERE s.status = :active AND s.id IN (SELECT subscriber_id FROM list_members WHERE list_name IN "
                f"({', '.join(':' + k for k in names)})) "
                f"AND NOT EXISTS (SELECT 1 FROM suppressions x WHERE x.email = s.email) {already}{by_locale}"
                "ORDER BY s.id"),
                {"f": fanout_id, "queued": R.QUEUED, "active": SubscriberStatus.ACTIVE, "sent": R.SENT, **names,
                 **earlier, **kept})
            conn.execute(text("UPDATE email_fanouts SET total = (SELECT count(*) FROM email_recipients WHERE "
                              "fanout_id = :f) WHERE id = :f"), {"f": fanout_id})
    except IntegrityError:  # another sender created it at the same moment
        pass
    with session(engine) as s:
        return s.execute(select(Fanout).where(Fanout.delivery_key == delivery_key)).scalar_one()


def _country_sql(engine: Engine) -> str:
    """SQL for a subscriber's `country` attribute (from its JSON attributes; '' when it has none)."""
    if engine.dialect.name == "postgresql":
        return "coalesce(s.attributes::json ->> 'country', '')"
    return "coalesce(CAST(json_extract(s.attributes, '$.country') AS TEXT), '')"


class Ledger:
    """Claims and records the recipients of one fan-out for one sender (`owner`, a worker id)."""

    def __init__(self, engine: Engine, fanout_id: int, campaign: str, owner: str | None = None,
                 lease: timedelta = timedelta(minutes=2)) -> None:
        self.engine = engine
        self.fanout_id = fanout_id
        self.campaign = campaign
        self.owner = (owner or worker_id())[-(LEASE_WIDTH - 11):]
        self.lease = lease
        self.stamp = stamper(engine)
        self._claims = 0
        self._writing = threading.Lock()  # one write transaction of this sender at a time (SQLite: no busy waits)
        self.status: str = FanoutStatus.RUNNING
        """The fan-out's status when last read (`step(..., check=True)`): another sender may pause it."""

    # -- senders that are gone -------------------------------------------------------------------------------------
    def settle_orphans(self, resend: bool) -> int:
        """Rows of senders that are gone (see the module doc): `claimed` ones are queued again; `sending` ones
        become `unknown`, or are queued again when `resend`. Returns the number of `sending` rows settled."""
        gone = self._gone_leases()
        if not gone:
            return 0
        marks = ", ".join(f":l{i}" for i in range(len(gone)))
        leases = {f"l{i}": lease for i, lease in enumerate(gone)}
        with self._writing, self.engine.begin() as conn:
            conn.execute(text(
                "UPDATE email_recipients SET status = :queued, lease = NULL, attempts = attempts - 1, "
                f"updated_at = :now WHERE fanout_id = :f AND status = :claimed AND lease IN ({marks})"),
                {"queued": R.QUEUED, "claimed": R.CLAIMED, "f": self.fanout_id, "now": self.stamp(_now()), **leases})
            if resend:
                result = conn.execute(text(
                    "UPDATE email_recipients SET status = :queued, lease = NULL, error = :why, updated_at = :now "
                    f"WHERE fanout_id = :f AND status = :sending AND lease IN ({marks})"),
                    {"queued": R.QUEUED, "sending": R.SENDING, "f": self.fanout_id, "now": self.stamp(_now()),
                     "why": "outcome unknown after a crash; sent again (on_unknown: resend)", **leases})
            else:
                result = conn.execute(text(
                    "UPDATE email_recipients SET status = :unknown, error = :why, updated_at = :now "
                    f"WHERE fanout_id = :f AND status = :sending AND lease IN ({marks})"),
                    {"unknown": R.UNKNOWN, "sending": R.SENDING, "f": self.fanout_id, "now": self.stamp(_now()),
                     "why": "the sender stopped while this message was in flight: the relay may or may not have "
                            "accepted it; not resent (on_unknown: skip)", **leases})
        return int(result.rowcount)  # type: ignore[attr-defined]

    def _gone_leases(self) -> list[str]:
        """The leases of rows `sending` for another sender that died or stopped renewing."""
        with self.engine.connect() as conn:
            rows = conn.execute(text(
                "SELECT lease, max(leased_at) FROM email_recipients WHERE fanout_id = :f "
                "AND status IN (:claimed, :sending) GROUP BY lease"),
                {"f": self.fanout_id, "claimed": R.CLAIMED, "sending": R.SENDING}).all()
        stale = _now() - self.lease
        gone = []
        for lease, leased_at in rows:
            owner = (lease or "").rpartition(":")[0]
            if lease and owner != self.owner and (is_dead_here(owner) or leased_at is None
                                                  or _parse(leased_at) < stale):
                gone.append(lease)
        return gone

    def others_sending(self) -> int:
        """Rows another (live) sender has claimed or in flight: the fan-out is not finished while there are any."""
        with self.engine.connect() as conn:
            return int(conn.execute(text(
                "SELECT count(*) FROM email_recipients WHERE fanout_id = :f AND status IN (:claimed, :sending) "
                "AND (lease IS NULL OR substr(lease, 1, :n) <> :mine)"),
                {"f": self.fanout_id, "claimed": R.CLAIMED, "sending": R.SENDING, **self._mine()}).scalar_one())

    def _mine(self) -> dict[str, Any]:
        """Parameters `n` and `mine` that match this sender's leases (`substr(lease, 1, :n) = :mine`)."""
        return {"n": len(self.owner) + 1, "mine": self.owner + ":"}

    # -- the step ----------------------------------------------------------------------------------------------
    def step(self, results: Sequence[Result], links: Sequence[TrackedLink], claim: int, *, check: bool = False
             ) -> tuple[list[Claimed], list[Result]]:
        """One transaction: record `results`, store `links` (of messages about to be sent: no message goes out
        with a link the tracker does not know) and claim up to `claim` recipients. With `check`, also renew
        this sender's leases and read the fan-out's status (`self.status`): another sender may have paused it.

        Returns (the claimed recipients, the results recorded for claimed rows that must not be sent: suppressed,
        removed or unconfirmed since the audience was drawn).
        """
        now = self.stamp(_now())
        with self._writing, self.engine.begin() as conn:
            self._record(conn, results, now)
            if check:
                conn.execute(text(
                    "UPDATE email_recipients SET leased_at = :now WHERE fanout_id = :f "
                    "AND status IN (:claimed, :sending) AND substr(lease, 1, :n) = :mine"),
                    {"now": now, "f": self.fanout_id, "claimed": R.CLAIMED, "sending": R.SENDING, **self._mine()})
                self.status = conn.execute(text("SELECT status FROM email_fanouts WHERE id = :f"),
                                           {"f": self.fanout_id}).scalar_one()
                if self.status != FanoutStatus.RUNNING:
                    claim = 0
            RawCursor(conn).many(
                "INSERT INTO links (code, target, campaign, channel, item, variant, recipient, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (code) DO NOTHING",
                [(k.code, k.target, k.campaign, k.channel, k.item, k.variant, k.recipient, now) for k in links])
            if claim <= 0:
                return [], []
            self._claims += 1
            lease = f"{self.owner}:{self._claims}"
            raw = RawCursor(conn)
            # PostgreSQL: rows another sender is claiming right now are skipped, not waited for (SQLite has one
            # writer at a time); the conditional UPDATE below is what makes a claim exclusive on both
            skip_locked = " FOR UPDATE SKIP LOCKED" if conn.dialect.name == "postgresql" else ""
            # the lowest ids among the ready rows, from two index scans: never retried (next_attempt_at NULL:
            # in index order already, so a claim reads `claim` rows rather than sorting the whole queue) and
            # retries now due (few); merged, that is exactly the `claim` lowest ids of either kind
            select = "SELECT id FROM email_recipients WHERE fanout_id = ? AND status = ? AND next_attempt_at "
            fresh = raw.all(f"{select}IS NULL ORDER BY id LIMIT ?{skip_locked}", (self.fanout_id, R.QUEUED, claim))
            due = raw.all(f"{select}<= ? ORDER BY id LIMIT ?{skip_locked}", (self.fanout_id, R.QUEUED, now, claim))
            candidates = sorted(row[0] for row in fresh + due)[:claim]
            if not candidates:
                return [], []
            marks = ", ".join("?" * len(candidates))
            raw.one(f"UPDATE email_recipients SET status = ?, lease = ?, leased_at = ?, attempts = attempts + 1, "
                    f"updated_at = ? WHERE id IN ({marks}) AND status = ?",
                    (R.CLAIMED, lease, now, now, *candidates, R.QUEUED))  # only rows nobody claimed meanwhile
            rows = raw.all(
                "SELECT r.id, r.attempts, s.ref, s.email, s.name, s.locale, s.attributes, x.reason, s.status "
                "FROM email_recipients r LEFT JOIN subscribers s ON s.id = r.subscriber_id "
                f"LEFT JOIN suppressions x ON x.email = s.email WHERE r.id IN ({marks}) AND r.lease = ? "
                "ORDER BY r.id", (*candidates, lease))
            claimed, skipped = [], []
            for row_id, attempts, ref, email, name, locale, attributes, suppressed, status in rows:
                if email is None or suppressed or status != SubscriberStatus.ACTIVE:
                    why = (f"suppressed ({suppressed})" if suppressed else "subscriber removed" if email is None
                           else "subscriber no longer active")
                    skipped.append(Result(row_id, R.SUPPRESSED, email or "", error=why))
                else:
                    claimed.append(Claimed(row_id, attempts, ref, email, name, locale, attributes))
            self._record(conn, skipped, now)
        return claimed, skipped

    def _record(self, conn: Connection, results: Sequence[Result], now: Any) -> None:
        if not results:
            return
        raw = RawCursor(conn)
        raw.many("UPDATE email_recipients SET status = ?, smtp_code = ?, error = ?, next_attempt_at = ?, "
                 "updated_at = ? WHERE id = ?",
                 [(r.status, r.code, r.error, None if r.next_attempt_at is None else self.stamp(r.next_attempt_at), now,
                   r.row_id) for r in results])
        raw.many("INSERT INTO suppressions (email, reason, source, detail, campaign, created_at) "
                 "VALUES (?, ?, 'smtp', ?, ?, ?) ON CONFLICT (email) DO NOTHING",
                 [(r.email, SuppressionReason.BOUNCED, (r.error or "")[:500], self.campaign, now)
                  for r in results if r.status == R.BOUNCED and r.email])

    def write(self, results: Sequence[Result], marks: Sequence[int]) -> set[int]:
        """One transaction: record `results`, then mark the claimed rows `marks` (this sender's) `sending`.

        Returns the ids marked: a row missing from it is no longer this sender's (its lease was taken over by
        another sender after this one stalled) and must not be sent.
        """
        now = self.stamp(_now())
        with self._writing, self.engine.begin() as conn:
            self._record(conn, results, now)
            if not marks:
                return set()
            rows = RawCursor(conn).all(
                f"UPDATE email_recipients SET status = ?, leased_at = ?, updated_at = ? WHERE id IN "
                f"({', '.join('?' * len(marks))}) AND status = ? AND substr(lease, 1, ?) = ? RETURNING id",
                (R.SENDING, now, now, *marks, R.CLAIMED, len(self.owner) + 1, self.owner + ":"))
        return {row[0] for row in rows}

    def release(self, row_ids: Sequence[int]) -> None:
        """This sender's rows that were never handed to the relay go back to the queue (a graceful stop, a relay
        that cannot be reached)."""
        if not row_ids:
            return
        with self._writing, self.engine.begin() as conn:
            conn.execute(text(
                "UPDATE email_recipients SET status = :queued, lease = NULL, attempts = attempts - 1 "
                "WHERE id = :id AND status IN (:claimed, :sending) AND substr(lease, 1, :n) = :mine"),
                [{"queued": R.QUEUED, "claimed": R.CLAIMED, "sending": R.SENDING, "id": i, **self._mine()}
                 for i in row_ids])

    # -- state -------------------------------------------------------------------------------------------------
    def next_due(self) -> datetime | None:
        """When the earliest queued recipient may be sent (None: no one is queued)."""
        with self.engine.connect() as conn:
            row = conn.execute(text(
                "SELECT count(*), min(next_attempt_at), sum(CASE WHEN next_attempt_at IS NULL THEN 1 ELSE 0 END) "
                "FROM email_recipients WHERE fanout_id = :f AND status = :queued"),
                {"f": self.fanout_id, "queued": R.QUEUED}).one()
        count, earliest, now_ready = row
        if not count:
            return None
        if now_ready or earliest is None:
            return _now()
        return _parse(earliest)

    def set_status(self, status: str, reason: str | None = None) -> None:
        with session(self.engine) as s:
            fanout = s.get(Fanout, self.fanout_id)
            if fanout is None:
                return
            fanout.status, fanout.pause_reason, fanout.updated_at = status, reason, _now()
            if status == FanoutStatus.DONE:
                fanout.finished_at = fanout.updated_at
            s.add(fanout)
            s.commit()


def counts(engine: Engine, fanout_id: int) -> Counter[str]:
    """Recipients of a fan-out by state."""
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT status, count(*) FROM email_recipients WHERE fanout_id = :f GROUP BY status"),
                            {"f": fanout_id}).all()
    return Counter({status: int(n) for status, n in rows})


def summary(found: Counter[str]) -> str:
    """'1998 sent, 1 bounced, 1 unknown' (states with recipients, in lifecycle order)."""
    order = [R.SENT, R.BOUNCED, R.FAILED, R.SUPPRESSED, R.UNKNOWN, R.QUEUED, R.CLAIMED, R.SENDING]
    return ", ".join(f"{found[k]} {k}" for k in order if found.get(k)) or "no recipients"


def find(engine: Engine, delivery_key: str) -> Fanout | None:
    with session(engine) as s:
        return s.execute(select(Fanout).where(Fanout.delivery_key == delivery_key)).scalar_one_or_none()


def assistable(engine: Engine, channel: str, me: str) -> list[tuple[str, str]]:
    """(delivery key, post payload) of the channel's fan-outs that another live daemon is sending and that have
    recipients ready to claim now: what `me` can help with."""
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT d.key, d.payload FROM deliveries d JOIN email_fanouts f ON f.delivery_key = d.key "
            "WHERE d.channel = :c AND d.status = :sending AND d.claimed_by <> :me AND d.lease_until > :now "
            "AND d.payload IS NOT NULL AND f.status = :running AND EXISTS (SELECT 1 FROM email_recipients r "
            "WHERE r.fanout_id = f.id AND r.status = :queued AND (r.next_attempt_at IS NULL "
            "OR r.next_attempt_at <= :now)) ORDER BY d.slot_at"),
            {"c": channel, "sending": DeliveryStatus.SENDING, "me": me, "now": stamper(engine)(_now()),
             "running": FanoutStatus.RUNNING, "queued": R.QUEUED}).all()
    return [(key, payload) for key, payload in rows]


def sent_since(engine: Engine, channel: str, since: timedelta) -> int:
    """Messages a channel's fan-outs sent in the last `since` (seeds the relay's sliding window after a restart)."""
    with engine.connect() as conn:
        return int(conn.execute(text(
            "SELECT count(*) FROM email_recipients r JOIN email_fanouts f ON f.id = r.fanout_id "
            "WHERE f.channel = :c AND r.status = :sent AND r.updated_at >= :since"),
            {"c": channel, "sent": R.SENT, "since": stamper(engine)(_now() - since)}).scalar_one())


def resume_campaign(engine: Engine, campaign: str) -> list[str]:
    """Lift the auto-pause of a campaign's email fan-outs: they carry on with the recipients not yet sent.

    Returns the delivery keys resumed (the daemon picks them up at once).
    """
    resumed = []
    with session(engine) as s:
        paused = s.execute(select(Fanout).where(Fanout.campaign == campaign,
                                                Fanout.status == FanoutStatus.PAUSED)).scalars().all()
        for fanout in paused:
            fanout.status, fanout.pause_reason, fanout.updated_at = FanoutStatus.RUNNING, None, _now()
            s.add(fanout)
            delivery = s.execute(select(Delivery).where(Delivery.key == fanout.delivery_key)).scalar_one_or_none()
            if delivery is not None and delivery.status != DeliveryStatus.SENT:
                delivery.status, delivery.next_attempt_at = DeliveryStatus.RETRYING, _now()
                delivery.error = "resumed after an auto-pause"
                s.add(delivery)
            resumed.append(fanout.delivery_key)
        s.commit()
    return resumed


@dataclass
class FanoutReport:
    """One fan-out as `drainage status` shows it."""

    fanout: Fanout
    found: Counter[str]
    unknown: list[str]


def recent_fanouts(engine: Engine, since: datetime, limit: int = 20, shown: int = 10) -> list[FanoutReport]:
    """Fan-outs started since `since` (and every paused one), newest first, with the addresses whose outcome is
    unknown (the first `shown`)."""
    with session(engine) as s:
        rows = s.execute(select(Fanout).where((Fanout.created_at >= since) | (Fanout.status == FanoutStatus.PAUSED))
                         .order_by(Fanout.created_at.desc()).limit(limit)).scalars().all()  # type: ignore[attr-defined]
    reports = []
    for fanout in rows:
        assert fanout.id is not None
        with engine.connect() as conn:
            unknown = list(conn.execute(text(
                "SELECT s.email FROM email_recipients r JOIN subscribers s ON s.id = r.subscriber_id "
                "WHERE r.fanout_id = :f AND r.status = :unknown ORDER BY r.id LIMIT :n"),
                {"f": fanout.id, "unknown": R.UNKNOWN, "n": shown}).scalars())
        reports.append(FanoutReport(fanout, counts(engine, fanout.id), unknown))
    return reports
