"""The benchmark scripts still run against the current code (on a tiny input: their figures are not checked)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO


def test_the_reports_benchmark_runs_and_its_report_equals_the_naive_count(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(REPO / "bench" / "reports.py"), "--clicks", "3000", "--links", "12",
                           "--days", "3", "--runs", "1", "--db", str(tmp_path / "bench.db")],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    assert done.stdout.count("unique visitors equal") >= 5, done.stdout
