"""Crash trials beyond the test suite: SIGKILL the real daemon N times mid-dispatch, then check what was posted.

    .venv/bin/python bench/crash_trials.py --trials 200 --items 20
    .venv/bin/python bench/crash_trials.py --platform telegram --trials 20 --items 30

Prints trials, posts, kills that landed mid-batch, duplicates (must be 0) and missing posts (must be 0). With
`--platform telegram` the daemon posts to the slow fake Telegram (getMe 0.3 s, sendMessage 0.1 s) instead of
the outbox, and it prints how many kills landed while a post was prepared (claimable afterwards) or on its way
(at most one unknown post each).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.daemon_process import crash_trials
from tests.fake_platform import running_fake_platform
from tests.social_crash import TOKEN, kill_trials


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--items", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--platform", choices=["outbox", "telegram"], default="outbox")
    args = parser.parse_args()
    started = time.monotonic()
    if args.platform == "telegram":
        return _telegram(args, started)
    with tempfile.TemporaryDirectory() as tmp:
        report = crash_trials(Path(tmp), args.trials, args.items, args.seed)
    print(f"trials={report.trials} posts={report.posts} expected={args.trials * args.items} "
          f"killed_mid_batch={report.killed_mid_batch} duplicates={len(report.duplicates)} "
          f"missing={len(report.missing)} not_final={len(report.not_final)} "
          f"seconds={time.monotonic() - started:.0f}")
    return 0 if not (report.duplicates or report.missing or report.not_final) else 1


def _telegram(args: argparse.Namespace, started: float) -> int:
    os.environ["TG_TOKEN"] = TOKEN
    os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"
    with tempfile.TemporaryDirectory() as tmp, running_fake_platform() as fake:
        t = kill_trials(Path(tmp), fake, args.trials, args.items, args.seed)
    print(f"kills={t.kills} while_preparing={t.while_preparing} while_sending={t.while_sending} "
          f"most_unknown_per_kill={t.most_sending} sent={t.statuses['sent']} unknown={t.statuses['unknown']} "
          f"other={sum(n for k, n in t.statuses.items() if k not in ('sent', 'unknown'))} "
          f"duplicates={len(t.duplicates)} seconds={time.monotonic() - started:.0f}")
    return 0 if not t.duplicates and t.most_sending <= 1 and t.statuses["unknown"] == t.while_sending else 1


if __name__ == "__main__":
    sys.exit(main())
