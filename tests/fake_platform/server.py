"""Run the fake platform with uvicorn in a background thread, on 127.0.0.1 and a free port."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from tests.fake_platform.app import create_app
from tests.fake_platform.state import FakeState


class FakePlatform(FakeState):
    """The fake platform's state plus the address it listens on."""

    def __init__(self, base_url: str) -> None:
        super().__init__()
        self.base_url = base_url

    def image_url(self, name: str = "item.png") -> str:
        return f"{self.base_url}/img/{name}"


@contextmanager
def running_fake_platform() -> Iterator[FakePlatform]:
    """Start the server, yield its state, stop it (within a few seconds even with a slow answer pending)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    platform = FakePlatform(f"http://127.0.0.1:{sock.getsockname()[1]}")
    config = uvicorn.Config(create_app(platform), log_level="error", lifespan="off", http="h11", ws="none",
                            access_log=False, timeout_graceful_shutdown=3)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="fake-platform", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the fake platform server did not start")
        time.sleep(0.01)
    try:
        yield platform
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
