"""What commands open: the project (config.yaml and campaigns), config.yaml alone, the database; and `--at`.

Each imports what it needs when called, so that `drainage --help` pays for none of it.
"""

from __future__ import annotations

from collections.abc import Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from drainage.errors import DrainageError, Problem, ProblemsFound

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from drainage.config import LoadedConfig
    from drainage.project import Project

T = TypeVar("T")


def load_project(config: Path, only: list[Path] | None = None) -> Project:
    """config.yaml and the campaigns (see `drainage.project.load_project`)."""
    from drainage.project import load_project as load

    return load(config, only)


def load_config_only(config: Path, *keys: str) -> LoadedConfig:
    """config.yaml alone, and of it only `keys` (reports and pruning need no campaign to be valid, and no secret
    of a channel or the tracker)."""
    from drainage.config import load_config
    from drainage.sources import display_path

    loaded, problems = load_config(config, display_path(config), only=keys)
    if loaded is None:
        raise ProblemsFound(problems)
    return loaded


def sqlite_file(url: str) -> str | None:
    """The file of an SQLite URL as written, None for any other database."""
    return url[len("sqlite:///"):] if url.startswith("sqlite:///") else None


def open_engine(project: Project) -> Engine:
    """The project's database, created (SQLite) and migrated if need be: for commands that write."""
    return migrated_engine(project.config.database_url)


def open_engine_if_any(project: Project) -> Engine | None:
    """The project's database; None when an SQLite file does not exist yet: for commands that only read."""
    url = project.config.database_url
    file = sqlite_file(url)
    if file is not None and not Path(file).exists():
        return None
    return migrated_engine(url)


def open_existing_engine(loaded: LoadedConfig) -> Engine:
    """The database of config.yaml, which must exist already (reports and pruning create nothing)."""
    url = loaded.database_url
    file = sqlite_file(url)
    if file is not None and not Path(file).exists():
        raise DrainageError(f"no database at {file} yet: nothing has been sent or clicked "
                            "(check database.url in config.yaml)")
    return migrated_engine(url)


def migrated_engine(url: str) -> Engine:
    """An engine on `url` with the newest schema: created in a brand-new database, refused on one behind."""
    from drainage.store.db import make_engine
    from drainage.store.migrate import ensure_schema

    engine = make_engine(url)
    ensure_schema(engine)
    return engine


def parse_when(text: str | None, tz: Any = UTC) -> datetime:
    """'2026-12-01 10:00' (local to `tz` unless it has an offset), or now."""
    if not text:
        return datetime.now(UTC)
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ProblemsFound([Problem("--at", 0, 0, f"'{text}' is not a date and time",
                                     "expected e.g. '2026-12-01 10:00' or '2026-12-01T10:00+01:00'")]) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz)
    return value.astimezone(UTC)


def run_then_close(coro: Coroutine[Any, Any, T], project: Project) -> T:
    """Run an async service to its end, then close the project's channels (their HTTP clients)."""
    import asyncio

    async def main() -> T:
        try:
            return await coro
        finally:
            await project.close()

    return asyncio.run(main())
