"""The broken-inputs corpus: every case under tests/data/broken/ must be reported exactly as expected.

Each case is a folder holding only the files that differ from the example project, at the same relative
paths (``config.yaml``, ``campaigns/bad.yaml``, ``templates/social/bad.j2``...), plus ``expected.txt``: the
exact output of ``drainage validate``, one ``file:line[:col]: message (hint)`` a line and the summary line.

The test copies the example project (``project_dir``), lays the case's files over it (a case file replaces
the example's file of the same name; new files are added; the example campaigns stay, and being valid they
add no problems), runs ``drainage validate`` and compares the whole output. To add a case, create its folder
and files and write the output you expect into ``expected.txt``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import DATA

BROKEN = DATA / "broken"
CASES = sorted(p.name for p in BROKEN.iterdir() if p.is_dir())


def overlay(case: Path, project: Path) -> None:
    """Copy every file of `case` except expected.txt into `project`, replacing files of the same path."""
    for source in sorted(case.rglob("*")):
        if source.is_file() and source.name != "expected.txt":
            target = project / source.relative_to(case)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)


def test_corpus_is_big_enough() -> None:
    assert len(CASES) >= 20
    for name in CASES:
        files = [p for p in (BROKEN / name).rglob("*") if p.is_file()]
        assert (BROKEN / name / "expected.txt") in files, f"{name} has no expected.txt"
        assert len(files) >= 2, f"{name} has no input file"


@pytest.mark.parametrize("case", CASES)
def test_broken_input_is_reported_exactly(case: str, project_dir: Path, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DRAINAGE_CONFIG", "DRAINAGE_DEBUG", "DRAINAGE_TEST_UNSET_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    overlay(BROKEN / case, project_dir)
    expected = (BROKEN / case / "expected.txt").read_text(encoding="utf-8")

    result = cli("validate")

    assert "Traceback" not in result.output
    assert "internal error" not in result.output
    assert result.output == expected
    assert result.exit_code == 2
