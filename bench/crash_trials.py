"""Crash trials beyond the test suite: SIGKILL the real daemon N times mid-dispatch, then check what was posted.

    .venv/bin/python bench/crash_trials.py --trials 200 --items 20

Prints trials, posts, kills that landed mid-batch, duplicates (must be 0) and missing posts (must be 0).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.daemon_process import crash_trials


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--items", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        report = crash_trials(Path(tmp), args.trials, args.items, args.seed)
    print(f"trials={report.trials} posts={report.posts} expected={args.trials * args.items} "
          f"killed_mid_batch={report.killed_mid_batch} duplicates={len(report.duplicates)} "
          f"missing={len(report.missing)} not_final={len(report.not_final)} "
          f"seconds={time.monotonic() - started:.0f}")
    return 0 if not (report.duplicates or report.missing or report.not_final) else 1


if __name__ == "__main__":
    sys.exit(main())
