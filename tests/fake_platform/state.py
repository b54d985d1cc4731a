"""What the fake platform server remembers: every request, the posts it accepted, faults waiting to fire."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Recorded:
    """One request as the fake received it."""

    platform: str
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    form: dict[str, str] = field(default_factory=dict)
    json: Any = None
    files: dict[str, tuple[str, str, bytes]] = field(default_factory=dict)  # name: (filename, type, content)
    at: float = field(default_factory=time.monotonic)  # when it arrived


@dataclass
class Fault:
    """An answer to give instead of the normal one, to the next request(s) that create something.

    `delay` seconds pass before answering (longer than a client's timeout: it gives up first). With
    `commit`, the request is processed normally before the fault is returned: an answer lost on the way.
    """

    status: int
    json: Any = None
    text: str | None = None
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    commit: bool = False


class FakeState:
    """Shared between the server thread and the tests; every access holds the lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.generation = getattr(self, "generation", 0) + 1  # calls held across a reset are dropped
            self.requests: list[Recorded] = []
            self.faults: dict[str, deque[Fault]] = defaultdict(deque)
            self.created: dict[str, list[dict[str, Any]]] = defaultdict(list)
            self.revoked: set[str] = set()
            self.counter = 1000
            self.now: Callable[[], float] = time.time  # the platform's clock (post times), settable by tests
            self.settings: dict[str, Any] = {}  # per-platform behaviour a test sets (e.g. 'ig_polls')
            self.delays: dict[str, float] = {}  # "telegram:getMe": seconds before answering (a slow platform)
            self.x_can_read = True  # False: reading the timeline is refused, as on X's Free tier

    # -- used by tests -------------------------------------------------------------------------------------
    def inject(self, platform: str, fault: Fault, times: int = 1) -> None:
        """Answer the next `times` create requests to `platform` with `fault`."""
        with self.lock:
            self.faults[platform].extend([fault] * times)

    def revoke(self, credential: str) -> None:
        """Every request carrying this token or key is refused as the platform refuses a revoked one."""
        with self.lock:
            self.revoked.add(credential)

    def set_delay(self, call: str, seconds: float) -> None:
        """Answer `call` ("telegram:getMe", "telegram:sendMessage"...) only after `seconds`."""
        with self.lock:
            self.delays[call] = seconds

    async def slow(self, call: str) -> None:
        """Wait as long as `set_delay` asked for `call` (re-read while waiting: setting 0 releases it). A call still
        held when the next test resets the platform fails instead of publishing into that test."""
        deadline = time.monotonic()
        generation = self.generation
        while True:
            with self.lock:
                wait = deadline + self.delays.get(call, 0.0) - time.monotonic()
                if self.generation != generation:
                    raise RuntimeError(f"{call} was held across a reset of the fake platform")
            if wait <= 0:
                return
            await asyncio.sleep(min(wait, 0.05))

    def received(self, platform: str, path_suffix: str = "") -> list[Recorded]:
        with self.lock:
            return [r for r in self.requests if r.platform == platform and r.path.endswith(path_suffix)]

    def posts(self, platform: str) -> list[dict[str, Any]]:
        """What the platform published, in order."""
        with self.lock:
            return list(self.created[platform])

    # -- used by the app -----------------------------------------------------------------------------------
    def record(self, entry: Recorded) -> None:
        with self.lock:
            self.requests.append(entry)

    def next_fault(self, platform: str) -> Fault | None:
        with self.lock:
            queue = self.faults[platform]
            return queue.popleft() if queue else None

    def is_revoked(self, *credentials: str | None) -> bool:
        with self.lock:
            return any(c in self.revoked for c in credentials if c)

    def publish(self, platform: str, post: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            self.counter += 1
            post = {"id": self.counter, **post}
            self.created[platform].append(post)
            return post

    def find(self, platform: str, **match: Any) -> dict[str, Any] | None:
        with self.lock:
            for post in self.created[platform]:
                if all(post.get(k) == v for k, v in match.items()):
                    return post
        return None
