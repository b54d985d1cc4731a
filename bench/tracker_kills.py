"""Hard kills of a real tracker under load: what each SIGKILL lost (the test suite checks the same trials).

    .venv/bin/python bench/tracker_kills.py --kills 20

Prints, per kill, the clicks answered and lost and the span of the lost ones, then the totals.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.test_tracker_kills import FLUSH_EVERY, kill_trials


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=17)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        trials = kill_trials(Path(tmp), args.kills, args.seed)
    for n, trial in enumerate(trials, 1):
        print(f"kill {n}: answered={trial.answered} lost={trial.lost} lost_span_ms={trial.lost_span_ms}")
    answered, lost = sum(t.answered for t in trials), sum(t.lost for t in trials)
    print(f"flush_every={FLUSH_EVERY} kills={len(trials)} answered={answered} lost={lost} "
          f"max_lost={max(t.lost for t in trials)} max_lost_span_ms={max(t.lost_span_ms for t in trials)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
