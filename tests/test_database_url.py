"""A wrong `database.url` is the config's problem: exit 2 with what is wrong and how to write it, never exit 70."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tests import databases

FORMS = "write sqlite:///drainage.db (a file next to config.yaml) or postgresql+psycopg://USER:PASSWORD@HOST:5432/DATABASE"


def use_url(root: Path, url: str) -> None:
    config = root / "config.yaml"
    lines = [f'  url: "{url}"' if line.startswith("  url: ") else line  # database.url, the only 'url:' key there
             for line in config.read_text().splitlines()]
    config.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize(("url", "message"), [
    ("postgres://shop:secret@db.example.com/shop",
     "'postgres://' is not a scheme SQLAlchemy knows (write postgresql+psycopg://USER:PASSWORD@HOST:5432/DATABASE)"),
    ("shop:secret@db.example.com/shop", f"not a database URL ({FORMS})"),
    ("mysql://shop:secret@db.example.com/shop", f"drainage cannot use 'mysql://' databases ({FORMS})"),
    ("postgresql+psycopg://shop:secret@db.example.com:54x2/shop",
     "the port is not a number (write postgresql+psycopg://USER:PASSWORD@HOST:5432/DATABASE)"),
    ("postgresql+psycopg://shop:secret@db.example.com:5432",
     "it names no database (end it with /DATABASE, e.g. postgresql+psycopg://USER:PASSWORD@HOST:5432/drainage)"),
])
@pytest.mark.parametrize("command", [["validate"], ["status"], ["report"], ["db", "current"]])
def test_a_url_drainage_cannot_open_is_a_problem_at_its_line(project_dir: Path, cli, url: str, message: str,
                                                             command: list[str]) -> None:
    use_url(project_dir, url)
    result = cli(*command)
    assert result.exit_code == 2, result.output
    line = next(n for n, text in enumerate((project_dir / "config.yaml").read_text().splitlines(), 1)
                if url in text)
    assert result.output.splitlines()[0] == f"config.yaml:{line}:8: database.url: {message}"
    assert "secret" not in result.output


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("command", [["status"], ["report"], ["send", "scarf-launch"], ["db", "upgrade"],
                                     ["subscribers", "list"], ["prune", "--older-than", "90d"]])
def test_a_closed_port_is_exit_2_with_a_hint(project_dir: Path, cli, command: list[str]) -> None:
    port = closed_port()
    use_url(project_dir, f"postgresql+psycopg://shop:secret@127.0.0.1:{port}/shop")
    result = cli(*command)
    assert result.exit_code == 2, result.output
    assert " ".join(result.output.split()) == (
        f'error: cannot open the database: connection failed: connection to server at "127.0.0.1", port {port} '
        "failed: Connection refused Is the server running on that host and accepting TCP/IP connections? (is "
        "PostgreSQL running and listening on that host and port? check database.url in config.yaml)")


@pytest.mark.parametrize(("change", "what"), [({"database": "drainage_no_such_db"}, 'database "drainage_no_such_db"'),
                                               ({"username": "drainage_no_such_role"}, 'role "drainage_no_such_role"')])
def test_an_unknown_database_or_role_is_exit_2_with_a_hint(project_dir: Path, cli, change: dict[str, str],
                                                           what: str) -> None:
    databases._check_server()
    url = make_url(databases.ADMIN_URL).set(**change).render_as_string(hide_password=False)
    use_url(project_dir, url)
    result = cli("status")
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert text.startswith("error: cannot open the database: connection failed: connection to server at")
    assert text.endswith(f"failed: FATAL: {what} does not exist (create it (e.g. `createdb NAME`, or CREATE ROLE for "
                         "a user), or fix database.url in config.yaml)")


def test_a_sqlite_file_in_a_missing_folder_is_exit_2(project_dir: Path, cli) -> None:
    use_url(project_dir, f"sqlite:///{project_dir / 'no' / 'such' / 'folder' / 'drainage.db'}")
    result = cli("send", "scarf-launch")
    assert result.exit_code == 2, result.output
    assert " ".join(result.output.split()) == (
        "error: cannot open the database: unable to open database file (the SQLite file's folder must exist and be "
        "writable: check database.url in config.yaml)")
