"""The schema check every command runs: quick when the database is current, Alembic's own check otherwise."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from drainage.errors import SchemaBehind
from drainage.store.db import make_engine
from drainage.store.migrate import _quick_head, ensure_schema, head_revision, upgrade
from tests.conftest import REPO


def test_quick_head_is_alembics_head() -> None:
    assert _quick_head() == head_revision(make_engine("sqlite://"))


def test_a_current_database_is_checked_without_alembic(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'd.db'}"
    engine = make_engine(url)
    ensure_schema(engine)  # creates it
    engine.dispose()
    code = ("import sys\nfrom drainage.store.db import make_engine\nfrom drainage.store.migrate import ensure_schema\n"
            f"ensure_schema(make_engine({url!r}))\nprint(sorted(m for m in sys.modules if m.startswith('alembic')))")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120,
                          check=True)
    assert done.stdout.strip() == "[]"


def test_a_database_behind_is_still_refused(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'd.db'}")
    upgrade(engine, "0004")
    with pytest.raises(SchemaBehind, match="run `drainage db upgrade`"):
        ensure_schema(engine)
    engine.dispose()
