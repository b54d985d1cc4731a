"""Signed tokens for unsubscribe and sign-up confirmation links (itsdangerous), so links carry no guessable id.

The key is `email.token_secret` from config.yaml, else a random key created once in the database (shared by
the daemon and every tracker on it, like the visitor key). Each purpose has its own salt: an unsubscribe token
cannot confirm a sign-up and the other way round.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeSerializer, URLSafeTimedSerializer
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from drainage.store.db import session
from drainage.store.models import Setting

KEY_SETTING = "email.token_key"
CONFIRM_MAX_AGE = 7 * 86400
"""A sign-up confirmation link works for a week."""


def token_key(engine: Engine | None, configured: str | None) -> str:
    """The configured key, else the database's (created at first use, race-free across processes)."""
    if configured:
        return configured
    if engine is None:
        return "no-database-yet"  # validate / preview only: such links are never sent
    with session(engine) as s:
        row = s.get(Setting, KEY_SETTING)
        if row is None:
            s.add(Setting(name=KEY_SETTING, value=secrets.token_hex(32)))
            try:
                s.commit()
            except IntegrityError:  # another process created it first
                s.rollback()
            row = s.get(Setting, KEY_SETTING)
        assert row is not None
        return row.value


@dataclass(frozen=True)
class Unsubscribe:
    """What an unsubscribe token says: which subscriber (by pseudonymous ref) and which campaign sent it."""

    ref: str
    campaign: str


class Tokens:
    """Makes and reads the signed tokens of one installation."""

    def __init__(self, key: str) -> None:
        self._unsubscribe = URLSafeSerializer(key, salt="drainage.unsubscribe")
        self._confirm = URLSafeTimedSerializer(key, salt="drainage.confirm")

    def unsubscribe(self, ref: str, campaign: str) -> str:
        return str(self._unsubscribe.dumps([ref, campaign]))

    def read_unsubscribe(self, token: str) -> Unsubscribe | None:
        """The token's content, or None if it was not made with this key (or is malformed)."""
        try:
            ref, campaign = self._unsubscribe.loads(token)
        except (BadSignature, ValueError, TypeError):
            return None
        return Unsubscribe(str(ref), str(campaign))

    def confirm(self, ref: str) -> str:
        return str(self._confirm.dumps(ref))

    def read_confirm(self, token: str, max_age: int = CONFIRM_MAX_AGE) -> str | None:
        """The subscriber ref of a valid, unexpired confirmation token, or None."""
        try:
            return str(self._confirm.loads(token, max_age=max_age))
        except (SignatureExpired, BadSignature, ValueError, TypeError):
            return None
