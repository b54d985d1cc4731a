"""`drainage db upgrade` and `drainage db current`: the database schema (Alembic migrations)."""

from __future__ import annotations

from typing import Annotated

import typer

from drainage.cli.console import say
from drainage.cli.failures import friendly_errors
from drainage.cli.groups import LeanGroup
from drainage.cli.opening import load_config_only
from drainage.cli.options import DEFAULT_CONFIG, ConfigOpt

db_app = typer.Typer(help="Database schema (Alembic migrations).", cls=LeanGroup, no_args_is_help=True,
                     rich_markup_mode=None)


@db_app.command("upgrade")
def upgrade(revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
            config: ConfigOpt = DEFAULT_CONFIG) -> None:
    """Create or migrate the database schema to the newest revision."""
    from drainage.store.db import make_engine
    from drainage.store.migrate import current_revision
    from drainage.store.migrate import upgrade as migrate

    with friendly_errors():
        engine = make_engine(load_config_only(config, "database").database_url)
        before = current_revision(engine)
        migrate(engine, revision)
        after = current_revision(engine)
        say(f"database at revision {after}" + (f" (was {before})" if before != after else " (already up to date)"),
            soft_wrap=False)


@db_app.command("current")
def current(config: ConfigOpt = DEFAULT_CONFIG) -> None:
    """Show the database's schema revision and the newest one."""
    from drainage.store.db import make_engine
    from drainage.store.migrate import current_revision, head_revision

    with friendly_errors():
        engine = make_engine(load_config_only(config, "database").database_url)
        say(f"current: {current_revision(engine) or 'none'}, newest: {head_revision(engine)}", soft_wrap=False)
