"""PyYAML's test suite as campaign files: one `drainage validate` over all of them names every file, exits 2, and
never shows a traceback or an internal error (see tests/data/yaml-corpus/README.md)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from drainage.sources import Positions, _parse_exactly
from tests.conftest import DATA, REPO

CORPUS = DATA / "yaml-corpus" / "pyyaml"


@pytest.mark.slow
def test_validate_over_the_pyyaml_corpus(tmp_path: Path) -> None:
    shutil.copytree(REPO / "templates", tmp_path / "templates")
    shutil.copy(REPO / "config.yaml", tmp_path / "config.yaml")
    (tmp_path / "campaigns").mkdir()
    names = []
    for source in sorted(CORPUS.iterdir()):
        if source.name == "LICENSE":
            continue
        name = source.name.replace(".", "-") + ".yaml"  # 'spec-06-04.data' -> campaigns/spec-06-04-data.yaml
        shutil.copyfile(source, tmp_path / "campaigns" / name)
        names.append(name)
    assert len(names) > 350

    done = subprocess.run([sys.executable, "-m", "drainage", "validate"], cwd=tmp_path, capture_output=True,
                          text=True, encoding="utf-8", errors="replace", timeout=240, check=False)

    assert done.returncode == 2, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Traceback" not in done.stdout + done.stderr
    assert "internal error" not in done.stdout + done.stderr
    named = {line.split(":", 1)[0] for line in done.stdout.splitlines()}
    assert sorted(f"campaigns/{name}" for name in names if f"campaigns/{name}" not in named) == []
    assert done.stdout.splitlines()[-1].endswith(f"in {len(names)} files")


def test_a_file_the_yaml_library_fails_on_is_a_problem_of_that_file_only(project_dir: Path, cli) -> None:
    odd = (CORPUS / "spec-06-04.data").read_text(encoding="utf-8")  # a key, then two comment lines
    # ruamel's reading (used for every file libyaml's fast path is unsure of) fails on it with its own exception
    _, _, problems = _parse_exactly(odd, Positions("campaigns/odd.yaml"))
    assert [str(p) for p in problems] == [
        "campaigns/odd.yaml:3:3: cannot be read as YAML: the YAML library failed on it (NotImplementedError) "
        "(simplify the YAML around this line (comments between a key and its value, unusual indentation) or quote "
        "the value)"]
    # in a whole run that file has problems of its own, and every other file is still checked
    (project_dir / "campaigns" / "odd.yaml").write_text(odd, encoding="utf-8")
    (project_dir / "campaigns" / "typo.yaml").write_text("title: t\nshedule: []\n", encoding="utf-8")

    result = cli("validate")

    assert result.exit_code == 2
    lines = result.output.splitlines()
    assert "campaigns/typo.yaml:2:1: unknown key 'shedule' (did you mean 'schedule'?)" in lines
    assert any(line.startswith("campaigns/odd.yaml:") for line in lines)
    assert lines[-1].endswith("in 2 files")
