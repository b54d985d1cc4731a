"""Startup time of the command line: each command's `--help`, and `validate` on the example project, next to
`python -c pass` measured in the same run (the ratio is what carries over between machines).

    .venv/bin/python bench/cli.py [--runs 5]

Each figure is the fastest of --runs runs of a fresh process (the fastest is the one least disturbed by other work
on the machine). Target (issue 21): every `--help` under 0.3 s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TARGET = 0.3


def fastest(argv: list[str], runs: int, cwd: Path) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False,
                       env={**os.environ, "COLUMNS": "80"})
        best = min(best, time.perf_counter() - start)
    return best


def commands() -> list[list[str]]:
    """Every command path of the CLI: [], ['validate'], ['db', 'upgrade'], ..."""
    from typer.main import get_command

    from drainage.cli import app

    found: list[list[str]] = []

    def walk(command: object, path: list[str]) -> None:
        found.append(path)
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, [*path, name])

    walk(get_command(app), [])
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    drainage = [sys.executable, "-m", "drainage"]
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        for name in ("config.yaml", "campaigns", "templates"):
            source = REPO / name
            (shutil.copytree if source.is_dir() else shutil.copy)(source, project / name)
        base = fastest([sys.executable, "-c", "pass"], args.runs, project)
        print(f"python -c pass: {base:.3f} s (fastest of {args.runs})")
        print(f"{'command':<34} {'seconds':>8} {'ratio':>7}")
        over = 0
        for path in commands():
            took = fastest([*drainage, *path, "--help"], args.runs, project)
            over += took >= TARGET
            flag = "" if took < TARGET else f"  OVER {TARGET} s"
            print(f"{' '.join(['drainage', *path, '--help']):<34} {took:8.3f} {took / base:7.1f}{flag}")
        took = fastest([*drainage, "validate"], args.runs, project)
        print(f"{'drainage validate (examples)':<34} {took:8.3f} {took / base:7.1f}")
    print(f"{'all --help under ' + str(TARGET) + ' s' if not over else f'{over} --help OVER {TARGET} s'}")


if __name__ == "__main__":
    main()
