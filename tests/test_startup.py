"""`drainage --help` and each command's `--help` start without the heavy libraries: they are imported where used.

Checked with `sys.modules` in a fresh interpreter, never with a timer (`bench/cli.py` measures the time).
"""

from __future__ import annotations

import json
import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import drainage.cli

pytestmark = pytest.mark.pure  # no database: CI's PostgreSQL pass skips it

HEAVY = ("telegram", "tweepy", "facebook", "praw", "requests", "sqlalchemy", "sqlmodel", "alembic", "uvicorn",
         "starlette",
         "babel", "inscriptis", "feedparser", "jinja2", "pydantic", "ruamel", "httpx", "apscheduler", "psycopg",
         "aiosmtplib", "asyncio", "watchfiles", "prometheus_client", "croniter")


def imported_after(code: str) -> set[str]:
    script = f"import sys\n{code}\nimport json; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return {name.split(".")[0] for name in json.loads(done.stdout.splitlines()[-1])}


DATABASE = ("sqlalchemy", "sqlmodel", "alembic", "psycopg")
REPO = Path(__file__).resolve().parent.parent


def cli_modules() -> list[str]:
    """Every module of the drainage.cli package, presenters (drainage.cli.present.*) included."""
    return sorted(m.name for m in pkgutil.walk_packages(drainage.cli.__path__, "drainage.cli."))


def test_importing_the_cli_imports_no_heavy_library() -> None:
    assert sorted(set(HEAVY) & imported_after("import drainage.cli")) == []


def test_building_the_app_imports_no_heavy_library_and_not_even_rich() -> None:
    """Every command module is imported to build the app; presenters (and rich) only when a command prints."""
    imported = imported_after("from drainage.cli import app\nfrom typer.main import get_command\nget_command(app)")
    assert sorted((set(HEAVY) | {"rich"}) & imported) == []
    assert "drainage.cli.catalog" in cli_modules() and "drainage.cli.present.feeds" in cli_modules()


def test_no_module_of_the_cli_imports_a_heavy_library() -> None:
    modules = cli_modules()
    assert sorted(set(HEAVY) & imported_after("\n".join(f"import {name}" for name in modules))) == []
    commands = [name for name in modules if not name.startswith("drainage.cli.present")]
    assert sorted((set(HEAVY) | {"rich"}) & imported_after("\n".join(f"import {name}" for name in commands))) == []


def test_validate_and_plan_without_a_database_import_no_database_library(tmp_path: Path) -> None:
    for name in ("config.yaml", "campaigns", "templates"):
        source = REPO / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, tmp_path / name)
    assert "url: sqlite:///drainage.db" in (tmp_path / "config.yaml").read_text(encoding="utf-8")
    config = str(tmp_path / "config.yaml")
    code = ("from typer.testing import CliRunner\nfrom drainage.cli import app\n"
            f"for args in (['validate'], ['plan', '--days', '2'], ['preview', 'scarf-launch']):\n"
            f"    result = CliRunner().invoke(app, [*args, '--config', {config!r}])\n"
            "    assert result.exit_code == 0, (args, result.output)\n")
    imported = imported_after(code)
    assert "jinja2" in imported and "pydantic" in imported
    assert sorted(set(DATABASE) & imported) == []
    assert not (tmp_path / "drainage.db").exists()


def test_help_of_every_command_imports_no_heavy_library() -> None:
    code = ("from typer.main import get_command\nimport drainage.cli\n"
            "group = get_command(drainage.cli.app)\n"
            "def walk(cmd, path):\n"
            "    yield path\n"
            "    for name, sub in getattr(cmd, 'commands', {}).items():\n"
            "        yield from walk(sub, [*path, name])\n"
            "for path in walk(group, []):\n"
            "    try:\n"
            "        group.main([*path, '--help'], prog_name='drainage', standalone_mode=False)\n"
            "    except SystemExit:\n"
            "        pass\n")
    # typer converts option values with pydantic, but a command's --help is processed before its options, and
    # the groups' own options (--help, the global --config) cost nothing when absent (drainage/cli/groups.py)
    assert sorted(set(HEAVY) & imported_after(code)) == []


def test_a_telegram_only_project_never_imports_the_other_platform_libraries(tmp_path) -> None:
    (tmp_path / "config.yaml").write_text(
        "store: {name: Shop, base_url: 'https://shop.example.com'}\n"
        "channels:\n  tg: {type: telegram, token: '123:abc', chat_id: '@shop'}\n", encoding="utf-8")
    (tmp_path / "campaigns").mkdir()
    code = ("from typer.testing import CliRunner\nfrom drainage.cli import app\n"
            f"result = CliRunner().invoke(app, ['validate', '--config', {str(tmp_path / 'config.yaml')!r}])\n"
            "assert result.exit_code == 0, result.output\n")
    imported = imported_after(code)
    assert "telegram" in imported
    assert sorted({"tweepy", "facebook", "praw", "requests"} & imported) == []
