"""Schema migrations with Alembic: upgrade, current revision, and the check a daemon runs at start."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect

from drainage.errors import SchemaBehind


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", "drainage.store:migrations")
    cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    return cfg


def head_revision(engine: Engine) -> str | None:
    return ScriptDirectory.from_config(alembic_config(engine)).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema up to `revision` (default: the newest)."""
    cfg = alembic_config(engine)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def ensure_schema(engine: Engine) -> None:
    """Create the schema in a brand-new database; refuse to run on one that is behind."""
    current, head = current_revision(engine), head_revision(engine)
    if current == head:
        return
    if current is None and not inspect(engine).get_table_names():
        upgrade(engine)
        return
    raise SchemaBehind(f"the database schema is at revision {current or 'none'}, this version needs {head}: "
                       "run `drainage db upgrade` (back the database up first)")
