"""Subscribers: CSV import with consent and address validation, export, per-list counts, removal.

An import never mails anyone; it only records who agreed to be mailed. A row without consent evidence
(`consent_source` and a `consent_at` not in the future) is refused and counted, an address that email-validator
rejects too. An optional `consent` column must say yes (`yes`, `y`, `true`, `1`, `on`, any case): a value that
means no (`no`, `n`, `false`, `0`, `off`, empty) or anything else refuses the row, whatever its date says.
Addresses are normalised (`drainage.email.addresses`) and merged: the same address twice (in the file, or
already stored) is one subscriber, whose non-empty fields are updated and attributes merged.
Rows are read and written in batches, so a file of any size takes constant memory.
"""

from __future__ import annotations

import csv
import json
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import Engine, case, delete, func, insert, select, update

from drainage.email.addresses import comparable, normalize
from drainage.store.db import session
from drainage.store.email_models import ListMember, Subscriber, SubscriberStatus, Suppression
from drainage.store.models import utcnow

BATCH = 1000
KNOWN = ("email", "name", "locale", "consent", "consent_source", "consent_at", "attributes")
CONSENT_YES = frozenset({"yes", "y", "true", "1", "on"})
CONSENT_NO = frozenset({"no", "n", "false", "0", "off", ""})
CLOCK_SKEW = timedelta(minutes=5)
"""A `consent_at` later than now by more than this is refused (consent cannot be given in the future)."""
REFUSED_SHOWN = 20
"""How many refused rows an import report lists by line (all are counted)."""


class BadSubscriberFile(ValueError):
    """The file cannot be imported at all (no header, no email column)."""


def parse_consent_time(text: str) -> datetime:
    """ISO 8601 date or datetime; naive values are UTC."""
    text = text.strip().replace("Z", "+00:00")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = datetime.combine(date.fromisoformat(text), datetime.min.time())
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def new_ref() -> str:
    """A random pseudonymous subscriber id (goes into links and tokens instead of the address)."""
    return secrets.token_hex(8)


@dataclass
class Incoming:
    """One subscriber as read from a file (or a sign-up form)."""

    email: str
    consent_source: str
    consent_at: datetime
    name: str = ""
    locale: str = ""
    attributes: dict[str, Any] = field(default_factory=dict)

    def merge(self, other: Incoming) -> None:
        """Take `other`'s non-empty fields (the later row wins) and its attributes."""
        self.name = other.name or self.name
        self.locale = other.locale or self.locale
        self.attributes.update(other.attributes)
        if other.consent_at >= self.consent_at:
            self.consent_source, self.consent_at = other.consent_source, other.consent_at


@dataclass
class ImportReport:
    """What an import did, for the command line."""

    rows: int = 0
    added: int = 0
    updated: int = 0
    merged_in_file: int = 0
    no_consent: int = 0
    invalid: int = 0
    suppressed: int = 0
    refused: list[str] = field(default_factory=list)

    def refuse(self, line: int, why: str) -> None:
        if len(self.refused) < REFUSED_SHOWN:
            self.refused.append(f"line {line}: {why}")


def read_csv(stream: TextIO, report: ImportReport) -> Iterator[Incoming]:
    """Valid, consented rows of a subscriber CSV; refused rows are counted in `report`."""
    reader = csv.DictReader(stream)
    columns = [c.strip().lower() for c in reader.fieldnames or []]
    if "email" not in columns:
        raise BadSubscriberFile("the first line must name the columns, one of them 'email' (and 'consent_source', "
                           "'consent_at'; optional 'name', 'locale', any other column becomes an attribute)")
    reader.fieldnames = columns
    for raw in reader:
        report.rows += 1
        line = reader.line_num
        row = {k: (v or "").strip() for k, v in raw.items() if k is not None}
        try:
            email = normalize(row.get("email", ""))
        except ValueError as exc:
            report.invalid += 1
            report.refuse(line, f"invalid address: {exc}")
            continue
        if "consent" in row and row["consent"].lower() not in CONSENT_YES:
            report.no_consent += 1
            said = row["consent"][:40]
            report.refuse(line, f"{email}: consent is '{said}'" + (
                ", which means no" if said.lower() in CONSENT_NO else ", which is not a yes (yes, true, 1, y, on)"))
            continue
        source, when = row.get("consent_source", ""), row.get("consent_at", "")
        if not source or not when:
            report.no_consent += 1
            report.refuse(line, f"{email}: no consent (consent_source and consent_at are required)")
            continue
        try:
            consent_at = parse_consent_time(when)
        except ValueError:
            report.no_consent += 1
            report.refuse(line, f"{email}: consent_at '{when[:40]}' is not an ISO 8601 date or time")
            continue
        if consent_at > datetime.now(UTC) + CLOCK_SKEW:
            report.no_consent += 1
            report.refuse(line, f"{email}: consent_at {when[:40]} is in the future")
            continue
        attributes = {k: v for k, v in row.items() if k not in KNOWN and v}
        if row.get("attributes"):
            try:
                extra = json.loads(row["attributes"])
            except ValueError:
                extra = None
            if isinstance(extra, dict):
                attributes.update(extra)
        yield Incoming(email, source[:200], consent_at, row.get("name", "")[:200], row.get("locale", "")[:35],
                       attributes)


def import_subscribers(engine: Engine, rows: Iterable[Incoming], lists: list[str], report: ImportReport,
                       *, status: str = SubscriberStatus.ACTIVE) -> ImportReport:
    """Store `rows` (merged by address) and put them on `lists`, `BATCH` addresses per transaction."""
    batch: dict[str, Incoming] = {}
    for incoming in rows:
        if incoming.email in batch:
            batch[incoming.email].merge(incoming)
            report.merged_in_file += 1
            continue
        batch[incoming.email] = incoming
        if len(batch) >= BATCH:
            _store(engine, batch, lists, report, status)
            batch = {}
    if batch:
        _store(engine, batch, lists, report, status)
    return report


def _store(engine: Engine, batch: dict[str, Incoming], lists: list[str], report: ImportReport, status: str) -> None:
    now = utcnow()
    with session(engine) as s:
        existing = {row.email: row for row in s.execute(
            select(Subscriber).where(Subscriber.email.in_(batch))).scalars()}  # type: ignore[attr-defined]
        report.suppressed += int(s.execute(select(func.count()).select_from(Suppression).where(
            Suppression.email.in_(batch))).scalar_one())  # type: ignore[attr-defined]
        new = []
        for email, incoming in batch.items():
            row = existing.get(email)
            if row is None:
                new.append({"email": email, "ref": new_ref(), "name": incoming.name, "locale": incoming.locale,
                            "attributes": json.dumps(incoming.attributes, ensure_ascii=False),
                            "consent_source": incoming.consent_source, "consent_at": incoming.consent_at,
                            "status": status, "created_at": now, "updated_at": now})
                continue
            attributes = {**json.loads(row.attributes or "{}"), **incoming.attributes}
            row.name = incoming.name or row.name
            row.locale = incoming.locale or row.locale
            row.attributes = json.dumps(attributes, ensure_ascii=False)
            if incoming.consent_at >= _aware(row.consent_at):
                row.consent_source, row.consent_at = incoming.consent_source, incoming.consent_at
            if status == SubscriberStatus.ACTIVE:
                row.status = SubscriberStatus.ACTIVE
            row.updated_at = now
            s.add(row)
            report.updated += 1
        if new:
            s.execute(insert(Subscriber), new)
            report.added += len(new)
        s.flush()
        ids = list(s.execute(select(Subscriber.id).where(Subscriber.email.in_(batch))).scalars())  # type: ignore
        for name in lists:
            member = set(s.execute(select(ListMember.subscriber_id).where(
                ListMember.list_name == name, ListMember.subscriber_id.in_(ids))).scalars())  # type: ignore
            missing = [{"list_name": name, "subscriber_id": i, "added_at": now} for i in ids if i not in member]
            if missing:
                s.execute(insert(ListMember), missing)
        s.commit()


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def import_file(engine: Engine, path: Path, lists: list[str]) -> ImportReport:
    """Import a subscriber CSV (UTF-8, with or without a byte order mark) into `lists`."""
    report = ImportReport()
    with path.open(encoding="utf-8-sig", newline="") as stream:
        import_subscribers(engine, read_csv(stream, report), lists, report)
    return report


# -- export, lists, removal --------------------------------------------------------------------------------------
EXPORT_COLUMNS = ["email", "name", "locale", "consent_source", "consent_at", "status", "lists", "suppressed",
                  "attributes"]


def export_csv(engine: Engine, stream: TextIO, list_name: str | None = None) -> int:
    """Write subscribers (of one list, or all) as CSV that `import` reads back; return how many."""
    writer = csv.writer(stream)
    writer.writerow(EXPORT_COLUMNS)
    written = 0
    last_id = 0
    while True:
        with session(engine) as s:
            query = select(Subscriber).where(Subscriber.id > last_id).order_by(Subscriber.id).limit(BATCH)  # type: ignore
            if list_name is not None:
                query = query.join(ListMember, ListMember.subscriber_id == Subscriber.id).where(  # type: ignore
                    ListMember.list_name == list_name)
            rows = list(s.execute(query).scalars())
            if not rows:
                return written
            ids = [r.id for r in rows]
            memberships: dict[int, list[str]] = {}
            for sid, name in s.execute(select(ListMember.subscriber_id, ListMember.list_name).where(
                    ListMember.subscriber_id.in_(ids)).order_by(ListMember.list_name)):  # type: ignore
                memberships.setdefault(sid, []).append(name)
            suppressed = dict(s.execute(select(Suppression.email, Suppression.reason).where(
                Suppression.email.in_([r.email for r in rows]))).all())  # type: ignore[attr-defined]
        for r in rows:
            writer.writerow([r.email, r.name, r.locale, r.consent_source, _aware(r.consent_at).isoformat(), r.status,
                             " ".join(memberships.get(r.id or 0, [])), suppressed.get(r.email, ""), r.attributes])
            written += 1
        last_id = rows[-1].id or 0


@dataclass
class ListCount:
    name: str
    members: int
    mailable: int
    pending: int
    suppressed: int


def list_counts(engine: Engine) -> list[ListCount]:
    """Each list with its members, how many can be mailed, are pending confirmation, or are suppressed."""
    with session(engine) as s:
        suppressed = select(Suppression.email)
        mailable = (Subscriber.status == SubscriberStatus.ACTIVE) & Subscriber.email.not_in(suppressed)  # type: ignore
        rows = s.execute(
            select(ListMember.list_name, func.count(), _count_if(mailable),
                   _count_if(Subscriber.status == SubscriberStatus.PENDING),
                   _count_if(Subscriber.email.in_(suppressed)))  # type: ignore[attr-defined]
            .join(Subscriber, Subscriber.id == ListMember.subscriber_id)  # type: ignore[arg-type]
            .group_by(ListMember.list_name).order_by(ListMember.list_name)).all()
    return [ListCount(name, int(n), int(m or 0), int(p or 0), int(x or 0)) for name, n, m, p, x in rows]


def _count_if(condition: Any) -> Any:
    return func.sum(case((condition, 1), else_=0))


def remove(engine: Engine, emails: Iterable[str], list_name: str | None = None) -> int:
    """Remove addresses from one list, or (no list) delete the subscribers altogether; return how many."""
    keys = [comparable(address) for address in emails]
    with session(engine) as s:
        ids = list(s.execute(select(Subscriber.id).where(Subscriber.email.in_(keys))).scalars())  # type: ignore
        if not ids:
            return 0
        members = delete(ListMember).where(ListMember.subscriber_id.in_(ids))  # type: ignore[attr-defined]
        if list_name is not None:
            result = s.execute(members.where(ListMember.list_name == list_name))
            s.commit()
            return int(result.rowcount)  # type: ignore[attr-defined]
        s.execute(members)
        s.execute(delete(Subscriber).where(Subscriber.id.in_(ids)))  # type: ignore[union-attr]
        s.commit()
        return len(ids)


def set_status(engine: Engine, ref: str, status: str) -> str | None:
    """Change a subscriber's status by ref (double opt-in confirmation); return its address."""
    with session(engine) as s:
        row = s.execute(select(Subscriber).where(Subscriber.ref == ref)).scalar_one_or_none()
        if row is None:
            return None
        s.execute(update(Subscriber).where(Subscriber.id == row.id).values(status=status, updated_at=utcnow()))
        s.commit()
        return row.email
