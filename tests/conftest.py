"""Shared fixtures: a copy of the example project in a temporary folder, and a CLI runner."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from drainage.cli import app

REPO = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture
def project_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The repository's example config, campaigns and templates, copied to a temporary folder (the cwd)."""
    for name in ("campaigns", "templates"):
        shutil.copytree(REPO / name, tmp_path / name)
    shutil.copy(REPO / "config.yaml", tmp_path / "config.yaml")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def cli() -> Callable[..., object]:
    """Run `drainage ARGS...` in-process; returns the click Result (output, exit_code)."""
    runner = CliRunner()

    def run(*args: str, **kwargs: object) -> object:
        kwargs.setdefault("env", {"COLUMNS": "200"})
        return runner.invoke(app, list(args), catch_exceptions=False, **kwargs)

    return run
