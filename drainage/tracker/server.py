"""Serving the tracker: uvicorn (uvloop + httptools), alone or as a child process of `drainage run` (which
supervises it through `drainage.tracker.supervisor`).

uvicorn is used rather than granian because it is driven from Python like the rest of drainage (the lifespan
that flushes clicks on SIGTERM, the same logging and signals); with uvloop and httptools its per-request cost
is the floor bench/tracker.py compares the tracker against (see the README for the figures).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import gc
import logging
import os
import signal
import socket
import sys
import threading
import time

import uvicorn
from sqlalchemy import Engine

from drainage.config import LoadedConfig
from drainage.logs import event
from drainage.tracker.app import Tracker
from drainage.tracker.supervisor import EXIT_PORT_IN_USE, SUPERVISOR_ENV

GC_THRESHOLD = 20_000
"""Allocations between two young-generation collections (CPython: 700)."""


def uvicorn_config(app: Tracker, host: str, port: int, proxy_ips: list[str]) -> uvicorn.Config:
    """The production server settings: fast parsers, no access log, proxy headers only from trusted peers."""
    return uvicorn.Config(app, host=host, port=port, loop="uvloop", http="httptools", lifespan="on",
                          access_log=False, server_header=False, proxy_headers=bool(proxy_ips),
                          forwarded_allow_ips=proxy_ips or None, timeout_keep_alive=5, timeout_graceful_shutdown=10,
                          log_level="warning", backlog=4096)


def serve(config: LoadedConfig, engine: Engine, host: str | None = None, port: int | None = None) -> None:
    """Run the tracker in this process until SIGTERM/SIGINT (which flush every buffered click).

    The port is bound before anything starts: a port another process holds ends the tracker at once with a
    clear error and `EXIT_PORT_IN_USE`, rather than after the writer has started (or in a restart loop)."""
    cfg = config.config.tracker
    supervisor = os.environ.get(SUPERVISOR_ENV)
    if supervisor:
        die_with_parent(int(supervisor))
    bind_host, bind_port = host or cfg.host, port or cfg.port
    try:
        sock = listening_socket(bind_host, bind_port)
    except OSError as exc:
        event("tracker.port_in_use" if exc.errno == errno.EADDRINUSE else "tracker.bind_failed", logging.ERROR,
              host=bind_host, port=bind_port, error=exc.strerror or str(exc),
              hint="another process holds this address (another tracker or `drainage run`?); stop it or set "
                   "tracker.port")
        sys.exit(EXIT_PORT_IN_USE)
    tracker = Tracker(config, engine)
    server = uvicorn.Server(uvicorn_config(tracker, bind_host, bind_port, cfg.proxy_ips))
    tune_garbage_collector()
    server.run(sockets=[sock])


def listening_socket(host: str, port: int) -> socket.socket:
    """A bound TCP socket, as uvicorn would bind it (SO_REUSEADDR: a port left in TIME_WAIT by a previous tracker
    is reused, one another process listens on is not)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def die_with_parent(parent_pid: int) -> None:
    """End (SIGTERM: the clicks are written) when the process `parent_pid` ends, even by SIGKILL.

    Linux: PR_SET_PDEATHSIG. Elsewhere, or if that is refused: a thread that watches the parent process id."""
    if os.getppid() != parent_pid:  # the parent is already gone
        os.kill(os.getpid(), signal.SIGTERM)
        return
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) == 0:
                if os.getppid() != parent_pid:  # it ended between the check and the prctl
                    os.kill(os.getpid(), signal.SIGTERM)
                return

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


PR_SET_PDEATHSIG = 1


def tune_garbage_collector() -> None:
    """A redirect allocates a few dozen short-lived objects that reference counting frees; the cyclic collector
    only needs to run rarely, and never over the code and configuration loaded at start (frozen)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, 20, 20)
