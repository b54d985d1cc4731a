"""Random keys kept in the `settings` table: created once, shared by every process on the database."""

from __future__ import annotations

import secrets

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from drainage.store.db import session
from drainage.store.models import Setting


def stored_secret(engine: Engine, name: str) -> str:
    """The hex key stored under `name`, created at first use (race-free: the first process to commit wins)."""
    with session(engine) as s:
        row = s.get(Setting, name)
        if row is None:
            s.add(Setting(name=name, value=secrets.token_hex(32)))
            try:
                s.commit()
            except IntegrityError:  # another process created it first
                s.rollback()
            row = s.get(Setting, name)
        if row is None:  # pragma: no cover - a committed row cannot vanish
            raise RuntimeError(f"setting {name!r} could not be created")
        return row.value
