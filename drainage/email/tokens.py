"""Signed tokens for unsubscribe and sign-up confirmation links, so links carry no guessable id.

An unsubscribe token is `<subscriber ref>~<campaign, base64url>~<MAC>`, the MAC a truncated HMAC-SHA256 (128
bits) made with the standard library's one-shot `hmac.digest` (one goes into every message of a fan-out, so it
must be cheap); confirmation tokens are itsdangerous timed tokens (a sign-up link expires).

The key is `email.token_secret` from config.yaml, else a random key created once in the database (shared by
the daemon and every tracker on it, like the visitor key). Each purpose has its own salt: an unsubscribe token
cannot confirm a sign-up and the other way round.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass
from functools import lru_cache

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import Engine

from drainage.store.secrets import stored_secret

KEY_SETTING = "email.token_key"
CONFIRM_MAX_AGE = 7 * 86400
"""A sign-up confirmation link works for a week."""
_REF = re.compile(r"[0-9a-f]{1,32}")
_LABEL = re.compile(r"[A-Za-z0-9_-]{0,300}")


def token_key(engine: Engine | None, configured: str | None) -> str:
    """The configured key, else the database's (created at first use, race-free across processes)."""
    if configured:
        return configured
    if engine is None:
        return "no-database-yet"  # validate / preview only: such links are never sent
    return stored_secret(engine, KEY_SETTING)


@lru_cache(maxsize=256)
def _label(campaign: str) -> str:
    """The campaign as it appears in a token (base64url; the same for every recipient of a fan-out)."""
    return base64.urlsafe_b64encode(campaign.encode()).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class Unsubscribe:
    """What an unsubscribe token says: which subscriber (by pseudonymous ref) and which campaign sent it."""

    ref: str
    campaign: str


class Tokens:
    """Makes and reads the signed tokens of one installation."""

    def __init__(self, key: str) -> None:
        self._key = hashlib.sha256(b"drainage.unsubscribe\x1f" + key.encode()).digest()
        self._confirm = URLSafeTimedSerializer(key, salt="drainage.confirm")

    def _mac(self, ref: str, campaign: str) -> str:
        digest = hmac.digest(self._key, f"{ref}\x1f{campaign}".encode(), "sha256")[:16]
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    def unsubscribe(self, ref: str, campaign: str) -> str:
        return f"{ref}~{_label(campaign)}~{self._mac(ref, campaign)}"

    def read_unsubscribe(self, token: str) -> Unsubscribe | None:
        """The token's content, or None if it was not made with this key (or is malformed)."""
        parts = token.split("~")
        if len(parts) != 3 or not _REF.fullmatch(parts[0]) or not _LABEL.fullmatch(parts[1]):
            return None
        try:
            campaign = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)).decode()
        except (ValueError, UnicodeDecodeError):
            return None
        if not hmac.compare_digest(self._mac(parts[0], campaign), parts[2]):
            return None
        return Unsubscribe(parts[0], campaign)

    def confirm(self, ref: str) -> str:
        return str(self._confirm.dumps(ref))

    def read_confirm(self, token: str, max_age: int = CONFIRM_MAX_AGE) -> str | None:
        """The subscriber ref of a valid, unexpired confirmation token, or None."""
        try:
            return str(self._confirm.loads(token, max_age=max_age))
        except (SignatureExpired, BadSignature, ValueError, TypeError):
            return None
