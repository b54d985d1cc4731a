"""Schema migrations with Alembic: upgrade, current revision, and the check a daemon runs at start."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import SQLAlchemyError

from drainage.errors import SchemaBehind

if TYPE_CHECKING:
    from alembic.config import Config

VERSIONS = Path(__file__).parent / "migrations" / "versions"
_REVISION = re.compile(r"^(down_revision|revision)\s*(?::[^=]*)?=\s*['\"]([^'\"]+)['\"]", re.M)


def alembic_config(engine: Engine) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", "drainage.store:migrations")
    cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    return cfg


def head_revision(engine: Engine) -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config(engine)).get_current_head()


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema up to `revision` (default: the newest)."""
    from alembic import command

    cfg = alembic_config(engine)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def ensure_schema(engine: Engine) -> None:
    """Create the schema in a brand-new database; refuse to run on one that is behind.

    Every command that opens the database runs this: when the database is at the newest revision (read from the
    migration files and the `alembic_version` table), Alembic is not even imported.
    """
    if _quick_head() is not None and _quick_current(engine) == _quick_head():
        return
    current, head = current_revision(engine), head_revision(engine)
    if current == head:
        return
    if current is None and not inspect(engine).get_table_names():
        upgrade(engine)
        return
    raise SchemaBehind(f"the database schema is at revision {current or 'none'}, this version needs {head}: "
                       "run `drainage db upgrade` (back the database up first)")


def _quick_head() -> str | None:
    """The newest revision, from the migration files' `revision` and `down_revision` lines (None: unsure)."""
    revisions, parents = set(), set()
    for path in VERSIONS.glob("*.py"):
        found = dict((kind, value) for kind, value in _REVISION.findall(path.read_text(encoding="utf-8")))
        if "revision" not in found:
            return None
        revisions.add(found["revision"])
        if "down_revision" in found:
            parents.add(found["down_revision"])
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def _quick_current(engine: Engine) -> str | None:
    """The database's revision from `alembic_version` (None when there is none, or no such table)."""
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT version_num FROM alembic_version")).all()
    except SQLAlchemyError:
        return None
    return rows[0][0] if len(rows) == 1 else None
