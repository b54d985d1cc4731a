"""Who is sending: a worker id per daemon process, and whether the process behind an id is still alive.

Several daemons may share one PostgreSQL database. A delivery being sent carries its worker's id and a lease
that the worker renews while the send lasts. Another daemon settles it (as a crash leftover) only when the
lease has expired, or at once when the id names a process on this same host that no longer exists (a daemon
restarted after a crash settles its own leftovers without waiting).
"""

from __future__ import annotations

import os
import secrets
import socket
from functools import cache


@cache
def worker_id() -> str:
    """This process's id: host, pid and a random suffix (pids are reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def is_dead_here(owner: str | None) -> bool:
    """True when `owner` is a process of this host that has ended (or no owner is recorded)."""
    if not owner:
        return True
    parts = owner.split(":")
    if len(parts) < 3:
        return True
    host, pid = ":".join(parts[:-2]), parts[-2]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    if owner == worker_id():
        return False
    if int(pid) == os.getpid():  # the same pid with another suffix: this process's predecessor (pid reuse)
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, owned by someone else
        return False
    return _is_zombie(int(pid))


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False
