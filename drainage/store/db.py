"""Engines and sessions for SQLite (default) and PostgreSQL."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event

if TYPE_CHECKING:  # imported where a session is made: a read that needs no model need not import SQLModel
    from sqlmodel import Session


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


def explain_unreachable(exc: BaseException) -> str | None:
    """What is wrong when a database could not be opened (server down, unknown database or role, bad password,
    SQLite file in a missing folder), with how to fix it; None for any other error. Never repeats the URL."""
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError

    if isinstance(exc, ArgumentError | NoSuchModuleError):
        return ("database.url in config.yaml is not a URL drainage can open: write sqlite:///drainage.db or "
                "postgresql+psycopg://USER:PASSWORD@HOST:5432/DATABASE")
    if not isinstance(exc, OperationalError):
        return None
    detail = " ".join(str(exc.orig if exc.orig is not None else exc).split())
    hints = (("does not exist", "create it (e.g. `createdb NAME`, or CREATE ROLE for a user), or fix database.url "
                                "in config.yaml"),
             ("password authentication failed", "check the user and password in database.url (put the password in "
                                                "the environment: ${DATABASE_PASSWORD})"),
             ("connection refused", "is PostgreSQL running and listening on that host and port? check database.url "
                                    "in config.yaml"),
             ("resolve host", "check the host in database.url in config.yaml"),
             ("could not translate host name", "check the host in database.url in config.yaml"),
             ("unable to open database file", "the SQLite file's folder must exist and be writable: check "
                                              "database.url in config.yaml"))
    hint = next((h for needle, h in hints if needle in detail.lower()),
                "check database.url in config.yaml and that the database is reachable")
    return f"cannot open the database: {detail} ({hint})"


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
    from sqlmodel import Session

    return Session(engine, expire_on_commit=False)
