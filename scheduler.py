"""Entry point the users asked for: `python scheduler.py [--config config.yaml] [--once]` runs the daemon.

It is the same as `drainage run`; all logic lives in drainage/daemon.py and drainage/dispatch.py.
"""

from __future__ import annotations

import sys

from drainage.cli import app

if __name__ == "__main__":
    sys.exit(app(["run", *sys.argv[1:]]))
