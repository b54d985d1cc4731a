"""`drainage --help` and each command's `--help` start without the heavy libraries: they are imported where used."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

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


def test_importing_the_cli_imports_no_heavy_library() -> None:
    assert sorted(set(HEAVY) & imported_after("import drainage.cli")) == []


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
    own = set(HEAVY) - {"pydantic"}  # typer itself converts some options (list[Path]) with pydantic's TypeAdapter
    assert sorted(own & imported_after(code)) == []


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
