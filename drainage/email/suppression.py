"""The suppression list: addresses never mailed again (unsubscribed, hard-bounced, complained).

Addresses are kept in their normal form (`drainage.email.addresses`), whatever form they arrive in. It is
checked on every send (the ledger claims no suppressed address) and survives re-imports: importing an
address that is on it again does not lift it.
"""

from __future__ import annotations

from sqlalchemy import Engine, delete, func, select
from sqlalchemy.exc import IntegrityError

from drainage.email.addresses import comparable
from drainage.store.db import session
from drainage.store.email_models import Subscriber, Suppression, SuppressionReason


def suppress(engine: Engine, email: str, reason: str, *, source: str, detail: str = "",
             campaign: str | None = None) -> bool:
    """Put `email` on the list; False when it was already there (the first reason is kept, except that a
    complaint or hard bounce is never downgraded to an unsubscribe)."""
    email = comparable(email)
    with session(engine) as s:
        row = s.get(Suppression, email)
        if row is not None:
            if row.reason == SuppressionReason.UNSUBSCRIBED and reason != SuppressionReason.UNSUBSCRIBED:
                row.reason, row.source, row.detail = reason, source, detail[:500]
                s.add(row)
                s.commit()
            return False
        s.add(Suppression(email=email, reason=reason, source=source, detail=detail[:500], campaign=campaign))
        try:
            s.commit()
        except IntegrityError:  # suppressed by another process at the same moment
            s.rollback()
            return False
    return True


def unsubscribe_ref(engine: Engine, ref: str, *, source: str, campaign: str | None = None) -> str | None:
    """Suppress the subscriber with pseudonymous `ref`; return its address (None: unknown ref)."""
    with session(engine) as s:
        email = s.execute(select(Subscriber.email).where(Subscriber.ref == ref)).scalar_one_or_none()
    if email is None:
        return None
    suppress(engine, email, SuppressionReason.UNSUBSCRIBED, source=source, campaign=campaign)
    return email


def is_suppressed(engine: Engine, email: str) -> str | None:
    """The reason `email` is suppressed, or None."""
    with session(engine) as s:
        row = s.get(Suppression, comparable(email))
        return row.reason if row else None


def lift(engine: Engine, email: str) -> bool:
    """Take an address off the list (e.g. it re-subscribed through a confirmed double opt-in)."""
    with session(engine) as s:
        result = s.execute(delete(Suppression).where(Suppression.email == comparable(email)))
        s.commit()
        return bool(result.rowcount)  # type: ignore[attr-defined]


def counts(engine: Engine) -> dict[str, int]:
    """Suppressed addresses by reason."""
    with session(engine) as s:
        rows = s.execute(select(Suppression.reason, func.count()).group_by(Suppression.reason)).all()
    return {reason: int(n) for reason, n in rows}
