"""Shared fixtures: a copy of the example project in a temporary folder, and a CLI runner."""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from sqlalchemy import Engine, event
from typer.testing import CliRunner

from drainage.logs import LOGGER
from drainage.store.db import make_engine
from tests import databases

REPO = Path(__file__).resolve().parent.parent

# pytest-xdist starts its workers with COLUMNS=80 and LINES=24: a rich Console built then (drainage.cli's, when a
# test module imports it) would keep that width for good, and the `cli` fixture's tables (COLUMNS=200) would wrap
# in a worker only. Nothing imports drainage.cli before this line.
for _name in ("COLUMNS", "LINES"):
    os.environ.pop(_name, None)

# Hypothesis: properties are about correctness, never about how fast a loaded machine ran one example, so no
# per-example deadline. "ci" (chosen by CI=true, as .ci/run has it) also derandomizes, so a red CI run is
# reproducible; HYPOTHESIS_PROFILE picks one by name.
settings.register_profile("dev", deadline=None)
settings.register_profile("ci", deadline=None, derandomize=True, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE",
                                    "ci" if os.environ.get("CI") or os.environ.get("DRAINAGE_CI") else "dev"))
DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="session", autouse=True)
def _drop_test_databases() -> Iterator[None]:
    yield
    databases.drop_created()


@pytest.fixture(scope="session", autouse=True)
def _yaml_cache_of_the_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Parsed large YAML files are cached in a folder of this run (inherited by the daemons tests start), not in
    the user's cache."""
    before = os.environ.get("DRAINAGE_CACHE_DIR")
    os.environ["DRAINAGE_CACHE_DIR"] = str(tmp_path_factory.mktemp("yaml-cache"))
    yield
    if before is None:
        os.environ.pop("DRAINAGE_CACHE_DIR", None)
    else:
        os.environ["DRAINAGE_CACHE_DIR"] = before


_engines: list[Engine] = []


@event.listens_for(Engine, "engine_connect")
def _remember_engine(connection) -> None:  # type: ignore[no-untyped-def]
    databases.refuse_in_pure_test(f"connects to {connection.engine.url.render_as_string()}")
    if connection.engine not in _engines:
        _engines.append(connection.engine)


@pytest.fixture(autouse=True)
def _pure_tests_touch_no_database(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test marked `pure` (parsing, rendering, scheduling: nothing that differs by database) fails if it asks for
    a test database or connects an engine, so CI's PostgreSQL pass (`-m "not pure"`) never skips one that does."""
    databases.pure_test = request.node.nodeid if request.node.get_closest_marker("pure") else None
    yield
    databases.pure_test = None


@pytest.fixture(autouse=True)
def _dispose_engines() -> Iterator[None]:
    """Close every pooled connection a test opened (on PostgreSQL a connection left to the garbage collector
    is a ResourceWarning, which this suite turns into an error)."""
    yield
    while _engines:
        _engines.pop().dispose()


@pytest.fixture(autouse=True)
def _restore_drainage_logger() -> Iterator[None]:
    """An in-process `drainage run` points the drainage logger at the CliRunner's stderr, closed once it returns:
    put the logger back as it was, so later tests' events do not print "Logging error" into their output."""
    logger = logging.getLogger(LOGGER)
    handlers, level, propagate = list(logger.handlers), logger.level, logger.propagate
    yield
    logger.handlers[:] = handlers
    logger.setLevel(level)
    logger.propagate = propagate


@pytest.fixture
def project_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The repository's example config, campaigns and templates, copied to a temporary folder (the cwd),
    on the database the suite runs on (tests/databases.py)."""
    for name in ("campaigns", "templates"):
        shutil.copytree(REPO / name, tmp_path / name)
    config = (REPO / "config.yaml").read_text()
    (tmp_path / "config.yaml").write_text(config.replace("url: sqlite:///drainage.db",
                                                         f"url: {databases.database_url(tmp_path)}"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def project_engine(root: Path) -> Engine:
    """An engine on the test project's database in `root`."""
    return make_engine(databases.database_url(root))


@pytest.fixture
def cli() -> Callable[..., object]:
    """Run `drainage ARGS...` in-process; returns the click Result (output, exit_code)."""
    from drainage.cli import app

    runner = CliRunner()

    def run(*args: str, **kwargs: object) -> object:
        kwargs.setdefault("env", {"COLUMNS": "200"})
        return runner.invoke(app, list(args), catch_exceptions=False, **kwargs)

    return run
