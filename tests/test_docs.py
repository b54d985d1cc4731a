"""The docs follow the code: the key reference and the migrations follow the models, every docs page is reachable
from the README and every relative link in the docs lands on a page and a heading that exist."""

from __future__ import annotations

import re
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

from drainage.keydocs import keys_markdown
from drainage.store.db import make_engine
from drainage.store.migrate import upgrade
from tests.conftest import REPO
from tests.databases import database_url


def test_reference_documents_every_key() -> None:
    page = (REPO / "docs" / "reference.md").read_text(encoding="utf-8")
    assert keys_markdown() in page, "regenerate docs/reference.md's key block with `drainage schema --markdown`"


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = re.sub(r"^```.*?^```", "", page.read_text(encoding="utf-8"), flags=re.S | re.M)
    return {_slug(m) for m in re.findall(r"^#{1,6} (.+)$", text, flags=re.M)}


def test_every_docs_page_is_linked_from_the_readme() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    pages = sorted(p.name for p in (REPO / "docs").glob("*.md"))
    assert pages, "docs/ holds the manual"
    assert [p for p in pages if f"(docs/{p})" not in readme] == []


def test_every_relative_link_in_the_docs_resolves() -> None:
    broken = []
    for page in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        text = re.sub(r"^```.*?^```", "", page.read_text(encoding="utf-8"), flags=re.S | re.M)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"^[a-z]+:", target):
                continue
            path, _, anchor = target.partition("#")
            dest = (page.parent / path) if path else page
            if not dest.exists():
                broken.append(f"{page.name}: {target} (no such file)")
            elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
                broken.append(f"{page.name}: {target} (no such heading)")
    assert broken == []


def test_readme_is_a_front_door() -> None:
    assert len((REPO / "README.md").read_text(encoding="utf-8")) < 12_000, "the manual belongs in docs/"


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
