"""The README's key reference and the migrations follow the models."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

from drainage.keydocs import keys_markdown
from drainage.store.db import make_engine
from drainage.store.migrate import upgrade
from tests.conftest import REPO
from tests.databases import database_url


def test_readme_documents_every_key() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert keys_markdown() in readme, "regenerate the README key reference with `drainage schema --markdown`"


def test_readme_quick_start_and_test_command_match_ci() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert ".venv/bin/python -m pytest" in readme
    assert ".venv/bin/python -m pytest" in ci


def test_migrations_match_the_models(tmp_path) -> None:
    engine = make_engine(database_url(tmp_path))
    upgrade(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    engine.dispose()
    assert diff == [], "add an Alembic migration for the model change"
