"""Which database the suite runs on: SQLite files by default, PostgreSQL with DRAINAGE_TEST_DB=postgresql.

On PostgreSQL every test project gets a database of its own (created on first use, dropped at the end of the
session) on DRAINAGE_TEST_PG_URL (default: postgresql+psycopg://postgres@127.0.0.1:5432/test, the CI's server).
Without a reachable server the PostgreSQL run skips with the reason, except under DRAINAGE_CI=1, where a
missing PostgreSQL is an error: CI must never go green by skipping.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

KIND = os.environ.get("DRAINAGE_TEST_DB", "sqlite")
ADMIN_URL = os.environ.get("DRAINAGE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
ON_POSTGRES = KIND == "postgresql"
_created: list[str] = []
_reachable: bool | None = None
pure_test: str | None = None
"""The test running now, when it is marked `pure` (it must never reach a database: see tests/conftest.py)."""


def refuse_in_pure_test(what: str) -> None:
    if pure_test is not None:
        raise AssertionError(f"{pure_test} is marked pure (skipped by CI's PostgreSQL pass) but {what}: "
                             "remove the mark")


def _check_server() -> None:
    global _reachable
    if _reachable is None:
        try:
            engine = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            engine.dispose()
            _reachable = True
        except Exception as exc:  # no server, no driver, refused...
            _reachable = False
            reason = f"PostgreSQL at {make_url(ADMIN_URL).render_as_string()} is not reachable: {exc}"[:300]
            if os.environ.get("DRAINAGE_CI"):
                pytest.fail(f"{reason} (DRAINAGE_CI is set: a missing PostgreSQL is a failure, not a skip)")
            pytest.skip(reason)
    if not _reachable:
        pytest.skip("PostgreSQL is not reachable (see the first skipped test for why)")


def database_url(root: Path) -> str:
    """The database of the test project in `root` (one per project folder)."""
    refuse_in_pure_test("asks for a test database")
    if not ON_POSTGRES:
        return f"sqlite:///{root / 'drainage.db'}"
    _check_server()
    name = "drainage_t_" + hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:16]
    if name not in _created:
        engine = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        engine.dispose()
        _created.append(name)
    return make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def drop_created() -> None:
    """Drop every database this session created."""
    if not _created:
        return
    engine = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        for name in _created:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()
    _created.clear()
