"""Click ids: 16 URL-safe characters from 12 bytes of the operating system's CSPRNG, like
`secrets.token_urlsafe(12)`, but drawn from a pool refilled 4,096 ids at a time (one system call per pool,
not one per redirect)."""

from __future__ import annotations

import base64
import os

POOL = 4096
"""Ids made per refill."""


class ClickIds:
    """Unguessable click ids for the redirect path (one event loop: not shared between threads)."""

    def __init__(self) -> None:
        self._pool: list[str] = []

    def next(self) -> str:
        if not self._pool:
            text = base64.urlsafe_b64encode(os.urandom(12 * POOL)).decode("ascii")
            self._pool = [text[i:i + 16] for i in range(0, 16 * POOL, 16)]
        return self._pool.pop()
