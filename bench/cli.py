"""Startup time of the command line, next to `python -c pass` measured in the same run (the ratio is what carries
over between machines): every command's `--help`, then `validate`, `plan` and `preview` on the example project,
and `report` on a small database (the example project after a few sends to the outbox).

    .venv/bin/python bench/cli.py [--runs 5] [--only-help | --no-help]

Each figure is the fastest of --runs runs of a fresh process (the fastest is the one least disturbed by other work
on the machine), in wall seconds and in CPU seconds (user + system of the child; a loaded machine stretches wall
time far more than CPU time). The load average is printed before and after: on a shared machine it says as much
as the figures. Targets (issue 21): every `--help` under 0.3 s; `validate` and `plan` under 1 s; `report` on a
small database under 1 s.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HELP_TARGET = 0.3
COMMAND_TARGET = 1.0
SENDS = 8
"""Sends to the outbox before `report`: one a day back from today, so about six distinct weekday slots."""


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def fastest(argv: list[str], runs: int, cwd: Path) -> tuple[float, float]:
    """The fastest wall time and the smallest CPU time of `runs` runs (the command must succeed)."""
    wall, cpu = float("inf"), float("inf")
    for _ in range(runs):
        start, used = time.perf_counter(), children_cpu()
        done = subprocess.run(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False,
                              env={**os.environ, "COLUMNS": "80"})
        wall, cpu = min(wall, time.perf_counter() - start), min(cpu, children_cpu() - used)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.decode()[-500:]}")
    return wall, cpu


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


def load() -> str:
    return "load average " + " ".join(f"{value:.2f}" for value in os.getloadavg())


class Table:
    """Prints one line per figure, with its ratio to `python -c pass` and OVER when it misses its target."""

    def __init__(self, base_wall: float, base_cpu: float) -> None:
        self.base_wall, self.base_cpu, self.over = base_wall, base_cpu, []

    def header(self) -> None:
        print(f"{'command':<40} {'wall s':>7} {'ratio':>6} {'cpu s':>7} {'ratio':>6}")

    def row(self, what: str, wall: float, cpu: float, target: float) -> None:
        flag = "" if wall < target else f"  OVER {target:g} s"
        if flag:
            self.over.append(what)
        print(f"{what:<40} {wall:7.3f} {wall / self.base_wall:6.1f} {cpu:7.3f} {cpu / self.base_cpu:6.1f}{flag}")


def make_project(root: Path) -> None:
    for name in ("config.yaml", "campaigns", "templates"):
        source = REPO / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, root / name)


def fill_database(drainage: list[str], root: Path) -> None:
    """A few posts in the journal: `send` of one channel at 09:30 on each of the last SENDS days."""
    today = datetime.now().replace(hour=9, minute=30, second=0, microsecond=0)
    for back in range(SENDS):
        at = (today - timedelta(days=back)).strftime("%Y-%m-%d %H:%M")
        subprocess.run([*drainage, "send", "scarf-launch", "--channel", "social-outbox", "--at", at], cwd=root,
                       stdout=subprocess.DEVNULL, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--only-help", action="store_true", help="Only the --help figures.")
    which.add_argument("--no-help", action="store_true", help="Only validate, plan, preview and report.")
    args = parser.parse_args()
    drainage = [sys.executable, "-m", "drainage"]
    print(f"before: {load()}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_project(root)
        base_wall, base_cpu = fastest([sys.executable, "-c", "pass"], args.runs, root)
        print(f"python -c pass: {base_wall:.3f} s wall, {base_cpu:.3f} s cpu (fastest of {args.runs})")
        table = Table(base_wall, base_cpu)
        table.header()
        if not args.no_help:
            for path in commands():
                wall, cpu = fastest([*drainage, *path, "--help"], args.runs, root)
                table.row(" ".join(["drainage", *path, "--help"]), wall, cpu, HELP_TARGET)
        if not args.only_help:
            for what, argv in (("validate (examples)", ["validate"]), ("plan (examples, 7 days)", ["plan"]),
                               ("preview scarf-launch", ["preview", "scarf-launch"])):
                wall, cpu = fastest([*drainage, *argv], args.runs, root)
                table.row(f"drainage {what}", wall, cpu, COMMAND_TARGET)
            fill_database(drainage, root)
            for what, argv in (("report (small database)", ["report", "--since", "30d"]),
                               ("plan (with that database)", ["plan"])):
                wall, cpu = fastest([*drainage, *argv], args.runs, root)
                table.row(f"drainage {what}", wall, cpu, COMMAND_TARGET)
    print(f"after: {load()}")
    print("all within target" if not table.over else f"{len(table.over)} OVER target: {', '.join(table.over)}")


if __name__ == "__main__":
    main()
