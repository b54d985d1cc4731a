"""Engines and sessions for SQLite (default) and PostgreSQL."""

from __future__ import annotations

from functools import partial
from typing import Any

from sqlalchemy import Engine, event
from sqlmodel import Session, create_engine


def make_engine(url: str, *, sqlite_cache_kib: int | None = None) -> Engine:
    """An engine for `url`; SQLite gets WAL, a busy timeout, foreign keys and, if given, a page cache of
    `sqlite_cache_kib` KiB per connection (SQLite's default: 2 MiB)."""
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
    else:
        kwargs["pool_pre_ping"] = True
    engine = create_engine(url, **kwargs)
    if url.startswith("sqlite"):
        event.listen(engine, "connect", partial(_sqlite_pragmas, sqlite_cache_kib))
    return engine


def _sqlite_pragmas(cache_kib: int | None, dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    if cache_kib is not None:
        cur.execute(f"PRAGMA cache_size=-{int(cache_kib)}")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def session(engine: Engine) -> Session:
    """A session that keeps loaded objects usable after commit."""
    return Session(engine, expire_on_commit=False)
