"""`drainage send` on an email channel: what the slot's fan-outs already did decides what is mailed, and it is
said before anything is.

- The slot was never sent: claim it and fan out, as for any channel.
- Its fan-out is unfinished (the sender was killed, the relay went down): it is resumed. Only recipients never
  handed to the relay are mailed; those whose outcome is unknown stay unknown (`on_unknown: resend` aside) and
  are counted in the answer. A fan-out another live process is sending is left alone.
- The slot was sent: refused, with "N sent, M unknown, K left" and what to do.
- `--force`: a new fan-out of the slot whose audience leaves out everyone with a `sent` row in the slot's earlier
  fan-outs (`--include-sent`: nobody is left out); the number it will mail is said before it starts.

A relay outage leaves the delivery `retrying` (due now), so `drainage run` / `run --once` or this command again
resume it; a paused fan-out waits for `drainage resume CAMPAIGN`.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, text, update
from sqlmodel import col

from drainage import journal
from drainage.channel import post_to_json
from drainage.email import ledger as ledgers
from drainage.email.compose import audience_of
from drainage.email.service import EmailService
from drainage.errors import AlreadySent, ChannelError, Paused, PermanentError, RateLimited, TransientError
from drainage.posts import Composed, PlannedPost
from drainage.schedule import parse_duration
from drainage.store.db import session
from drainage.store.email_models import RecipientStatus as R
from drainage.store.models import Delivery, DeliveryStatus
from drainage.workers import is_dead_here, worker_id

S = DeliveryStatus


@dataclass(frozen=True)
class Said:
    """What `send` did for one email post: a status (sent | already sent | sending | interrupted | failed |
    paused) and the line that explains it."""

    status: str
    detail: str


def known(found: Counter[str]) -> str:
    """'1990 sent, 4 unknown, 6 left' (left: queued or claimed, not yet handed to the relay)."""
    left = found.get(R.QUEUED, 0) + found.get(R.CLAIMED, 0)
    parts = [f"{found.get(R.SENT, 0)} sent"]
    parts += [f"{found[k]} {k}" for k in (R.BOUNCED, R.FAILED, R.SUPPRESSED) if found.get(k)]
    parts += [f"{found.get(R.UNKNOWN, 0) + found.get(R.SENDING, 0)} unknown", f"{left} left"]
    return ", ".join(parts)


async def send_email(service: EmailService, planned: PlannedPost, composed: Composed, *,
                     force: bool, include_sent: bool, say: Callable[[str], None]) -> Said:
    """Send (or resume, or refuse) one email post of `drainage send` through its channel's fan-out service; `say`
    tells what is about to happen."""
    engine, project = service.host.engine, service.host.project
    lease = parse_duration(project.config.config.daemon.lease)
    me = worker_id()
    with session(engine) as s:
        row = journal.find(s, planned.key)
    if row is not None and not force:
        found = _counts(engine, row.key)
        if row.status == S.SENT:
            return Said("already sent", f"{planned.campaign.id} -> {planned.channel} at {planned.slot:%Y-%m-%d %H:%M} "
                                        f"UTC was already sent: {known(found)}. {_what_to_do(found, planned)}")
        if row.status in (S.SENDING, S.UNKNOWN):
            lease_runs = row.lease_until is not None and _aware(row.lease_until) > datetime.now(UTC)
            if row.status == S.SENDING and lease_runs and not is_dead_here(row.claimed_by):
                return Said("sending", f"another process ({row.claimed_by or 'unknown'}) is sending it: "
                                       f"{known(found)} so far; `drainage status` shows its progress")
            if not _take_over(engine, row, me, lease):
                return Said("sending", "another process took it over just now; `drainage status` shows its progress")
        else:
            try:
                row = journal.claim(engine, planned, composed.post.text, composed.links,
                                    payload=post_to_json(composed.post))
            except AlreadySent as exc:
                return Said("sending", str(exc))
            _hold(engine, row.id or 0, me, lease)
        if found:
            say(f"resuming the fan-out: {known(found)} (only the {_left(found)} left are mailed; unknown ones are "
                "not resent)")
    else:
        try:
            row = journal.claim(engine, planned, composed.post.text, composed.links, force=force,
                                payload=post_to_json(composed.post))
        except AlreadySent as exc:
            return Said("sending", str(exc))
        _hold(engine, row.id or 0, me, lease)
        if row.key != planned.key:  # forced: a new fan-out of the slot, minus who got it already
            earlier = _slot_keys(engine, planned.key, but=row.key)
            fanout = await asyncio.to_thread(ledgers.open_fanout, engine, row.key, planned.campaign.id,
                                             planned.channel, _lists(service, planned),
                                             () if include_sent else earlier,
                                             audience_of(project, planned, service.channel))
            skipped = 0 if include_sent else _sent_in(engine, earlier)
            say(f"--force: mailing {fanout.total} recipient(s)" + (
                f"; {skipped} who already got this slot are left out (--include-sent mails them too)"
                if skipped else ""))
    composed.post.key = row.key
    return await _fan_out(engine, service, composed, row.id or 0, lease)


async def _fan_out(engine: Engine, service: EmailService, composed: Composed, row_id: int, lease: timedelta
                   ) -> Said:
    renewal = asyncio.ensure_future(_renew(engine, row_id, lease))
    try:
        receipt = await service.send(composed.post)
    except Paused as exc:  # the daemon carries on after `drainage resume CAMPAIGN`
        journal.record_failed(engine, row_id, exc, status=S.RETRYING)
        return Said("paused", str(exc))
    except (TransientError, RateLimited) as exc:  # the relay: the daemon (or this command again) resumes it
        journal.record_failed(engine, row_id, exc, status=S.RETRYING, next_attempt_at=datetime.now(UTC))
        return Said("interrupted", f"{exc.kind}: {exc}; {known(_counts(engine, composed.post.key))}: `drainage run` "
                                   "(or this command again) resumes it")
    except (PermanentError, ChannelError) as exc:
        journal.record_failed(engine, row_id, exc)
        return Said("failed", f"{exc.kind}: {exc}")
    finally:
        renewal.cancel()
    journal.record_sent(engine, row_id, receipt)
    found = _counts(engine, composed.post.key)
    unknown = found.get(R.UNKNOWN, 0)
    return Said("sent", receipt.remote_id + (f" ({unknown} unknown: `drainage status --unknown` lists them)"
                                             if unknown else ""))


def _what_to_do(found: Counter[str], planned: PlannedPost) -> str:
    unknown = found.get(R.UNKNOWN, 0)
    name = planned.campaign.id
    if unknown:
        return (f"`drainage status --unknown` lists the {unknown} whose outcome is unknown; `drainage send {name} "
                f"--force` mails them (and anyone not reached), never the {found.get(R.SENT, 0)} sent; "
                "add --include-sent to mail everyone again")
    return (f"`drainage send {name} --force` mails anyone not reached (none now); add --include-sent to mail "
            "everyone again")


def _left(found: Counter[str]) -> int:
    return found.get(R.QUEUED, 0) + found.get(R.CLAIMED, 0)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _counts(engine: Engine, key: str) -> Counter[str]:
    fanout = ledgers.find(engine, key)
    return Counter() if fanout is None or fanout.id is None else ledgers.counts(engine, fanout.id)


def _lists(service: EmailService, planned: PlannedPost) -> tuple[str, ...]:
    """The lists a fan-out of `planned` draws from (the campaign's, else the channel's)."""
    return tuple(planned.use.lists or service.settings.lists)


def _slot_keys(engine: Engine, key: str, *, but: str) -> list[str]:
    """The delivery keys of the slot's earlier fan-outs (the slot's own and its forced ones)."""
    with engine.connect() as conn:
        keys = conn.execute(text("SELECT delivery_key FROM email_fanouts WHERE delivery_key = :k OR "
                                 "delivery_key LIKE :forced"), {"k": key, "forced": f"{key}#forced-%"}).scalars()
        return [k for k in keys if k != but]


def _sent_in(engine: Engine, keys: list[str]) -> int:
    if not keys:
        return 0
    marks = ", ".join(f":k{i}" for i in range(len(keys)))
    with engine.connect() as conn:
        return int(conn.execute(text(
            "SELECT count(DISTINCT r.subscriber_id) FROM email_recipients r JOIN email_fanouts f ON f.id = r.fanout_id "
            f"WHERE f.delivery_key IN ({marks}) AND r.status = :sent"),
            {"sent": R.SENT, **{f"k{i}": k for i, k in enumerate(keys)}}).scalar_one())


def _hold(engine: Engine, row_id: int, me: str, lease: timedelta) -> None:
    with session(engine) as s:
        s.execute(update(Delivery).where(col(Delivery.id) == row_id)
                  .values(claimed_by=me, lease_until=datetime.now(UTC) + lease))
        s.commit()


def _take_over(engine: Engine, row: Delivery, me: str, lease: timedelta) -> bool:
    """Claim a delivery whose sender is gone; False when another process claimed it first."""
    owner = col(Delivery.claimed_by)
    with session(engine) as s:
        taken = s.execute(update(Delivery).where(
            col(Delivery.id) == row.id, Delivery.status == row.status,
            owner.is_(None) if row.claimed_by is None else owner == row.claimed_by)
            .values(status=S.SENDING, claimed_by=me, lease_until=datetime.now(UTC) + lease,
                    attempts=Delivery.attempts + 1))
        s.commit()
    return bool(taken.rowcount)  # type: ignore[attr-defined]


async def _renew(engine: Engine, row_id: int, lease: timedelta) -> None:
    """Keep this process's claim on the delivery alive while the fan-out lasts (the daemon leaves it alone)."""
    while True:
        await asyncio.sleep(max(lease.total_seconds() / 3, 0.05))
        await asyncio.to_thread(_extend, engine, row_id, lease)


def _extend(engine: Engine, row_id: int, lease: timedelta) -> None:
    with session(engine) as s:
        s.execute(update(Delivery).where(col(Delivery.id) == row_id)
                  .values(lease_until=datetime.now(UTC) + lease))
        s.commit()
