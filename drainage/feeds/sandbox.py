"""Parsing feed documents in worker processes, bounded in time and memory, whatever the document.

feedparser falls back to a loose, pure-Python parser when the strict one fails, and nothing inside one
process can stop a parser mid-document: a hostile document could hold the CPU (and, in a thread, the GIL)
and grow memory for as long as it likes. So documents are parsed in worker processes
(`python -m drainage.feeds.worker`), each capped at `PARSE_MEMORY` bytes of address space beyond its
start-up size (RLIMIT_AS), and the parent waits for each answer at most `PARSE_TIMEOUT` seconds: a worker
that misses its deadline, or dies, is killed and replaced, and the feed's poll fails with the reason.

Workers are started when first needed and reused (a start costs about as much as parsing a few hundred
entries); at most `MAX_WORKERS` parse at once, in threads of the pool's own, so a slow document never
holds up the event loop or another feed's parse for longer than it takes the other worker to get free.
One pool per process (`shared_pool`), closed when the daemon stops (a parse still running then fails at
once, so the stop never waits for it) and at exit.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import pickle
import selectors
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from drainage.feeds.entries import Document
from drainage.feeds.parse import FeedError
from drainage.feeds.worker import HEADER

PARSE_TIMEOUT = 30.0
"""Longest time one document may take to parse (a 10 MB feed of plain entries takes a few seconds)."""
PARSE_MEMORY = 512 * 2**20
"""Memory a worker may add beyond its start-up size while parsing (a 10 MB feed needs well under half)."""
STARTUP_TIMEOUT = 60.0
"""Longest wait for a new worker to be ready (its imports), not counted in any document's time limit."""
MAX_WORKERS = 3
"""Documents parsed at the same time; more wait for a free worker."""


class ParserPool:
    """Worker processes that parse documents; see the module docstring."""

    def __init__(self, *, timeout: float = PARSE_TIMEOUT, memory: int = PARSE_MEMORY,
                 workers: int = MAX_WORKERS) -> None:
        self.timeout = timeout
        self.memory = memory
        self._idle: list[subprocess.Popen[bytes]] = []
        self._all: set[subprocess.Popen[bytes]] = set()
        self._lock = threading.Lock()
        self._closed = False
        self._threads = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="feed-parser")

    async def read(self, content: bytes, url: str, content_type: str | None = None) -> Document:
        """The document's entries (FeedError when it is refused, malformed, too slow or too big to parse)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._threads, self.read_blocking, content, url, content_type)

    def read_blocking(self, content: bytes, url: str, content_type: str | None = None) -> Document:
        worker = self._take()
        try:
            answer = self._ask(worker, pickle.dumps((content, url, content_type), protocol=pickle.HIGHEST_PROTOCOL))
        except BaseException:
            self._discard(worker)
            raise
        self._give_back(worker)
        kind, value = answer
        if kind != "ok":
            raise FeedError(str(value))
        if not isinstance(value, Document):
            raise FeedError("internal error: the parser worker answered nonsense")
        return value

    def _ask(self, worker: subprocess.Popen[bytes], request: bytes) -> tuple[str, object]:
        assert worker.stdin is not None and worker.stdout is not None
        try:
            worker.stdin.write(HEADER.pack(len(request)) + request)
            worker.stdin.flush()
        except (BrokenPipeError, OSError):
            raise FeedError("internal error: the parser worker exited") from None
        deadline = time.monotonic() + self.timeout
        header = _read_exactly(worker.stdout.fileno(), HEADER.size, deadline, self.timeout)
        body = _read_exactly(worker.stdout.fileno(), HEADER.unpack(header)[0], deadline, self.timeout)
        answer = pickle.loads(body)  # our own worker's answer, over a pipe only we hold
        if answer[0] != "ok" and "needed more than" in str(answer[1]):
            raise _Refused(str(answer[1]))  # the worker exits after running out of memory
        return answer[0], answer[1]

    def _take(self) -> subprocess.Popen[bytes]:
        with self._lock:
            if self._closed:
                raise FeedError("internal error: the parser pool is closed")
            while self._idle:
                worker = self._idle.pop()
                if worker.poll() is None:
                    return worker
                self._all.discard(worker)
            worker = subprocess.Popen([sys.executable, "-m", "drainage.feeds.worker", str(self.memory)],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                      close_fds=True)
            self._all.add(worker)
        try:  # outside the lock: a start takes a moment, other parses may take idle workers meanwhile
            assert worker.stdout is not None
            deadline = time.monotonic() + STARTUP_TIMEOUT
            header = _read_exactly(worker.stdout.fileno(), HEADER.size, deadline, STARTUP_TIMEOUT)
            pickle.loads(_read_exactly(worker.stdout.fileno(), HEADER.unpack(header)[0], deadline, STARTUP_TIMEOUT))
        except FeedError:
            self._discard(worker)
            raise FeedError("internal error: the parser worker did not start") from None
        return worker

    def _give_back(self, worker: subprocess.Popen[bytes]) -> None:
        with self._lock:
            if self._closed:
                self._stop(worker)
            else:
                self._idle.append(worker)

    def _discard(self, worker: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._stop(worker)

    def _stop(self, worker: subprocess.Popen[bytes]) -> None:
        self._all.discard(worker)
        with contextlib.suppress(OSError):
            worker.kill()
        for stream in (worker.stdin, worker.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        worker.wait()

    @property
    def closed(self) -> bool:
        return self._closed

    def pids(self) -> list[int]:
        """Process ids of the live workers (for tests and diagnostics)."""
        with self._lock:
            return [w.pid for w in self._all if w.poll() is None]

    def close(self) -> None:
        """Stop every worker; parses still running fail."""
        with self._lock:
            self._closed = True
            for worker in list(self._all):
                self._stop(worker)
            self._idle.clear()
        self._threads.shutdown(wait=False, cancel_futures=True)


class _Refused(FeedError):
    """An answer after which the worker is gone (it ran out of memory)."""


def _read_exactly(fd: int, size: int, deadline: float, timeout: float) -> bytes:
    """`size` bytes from `fd` before `deadline`; FeedError when the worker is too slow or exits."""
    chunks: list[bytes] = []
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while size:
            left = deadline - time.monotonic()
            if left <= 0 or not selector.select(left):
                raise FeedError(f"parsing the document took longer than {timeout:g}s: refused")
            chunk = os.read(fd, min(size, 1 << 20))
            if not chunk:
                raise FeedError("parsing the document exhausted the parser's memory or crashed it: refused")
            chunks.append(chunk)
            size -= len(chunk)
    return b"".join(chunks)


_shared: ParserPool | None = None
_shared_lock = threading.Lock()


def shared_pool() -> ParserPool:
    """This process's parser pool, started on first use and closed at exit."""
    global _shared
    with _shared_lock:
        if _shared is None or _shared.closed:
            _shared = ParserPool()
            atexit.register(_shared.close)
        return _shared


def close_shared_pool() -> None:
    """Close this process's pool if it was started (the next `shared_pool()` starts a new one)."""
    with _shared_lock:
        if _shared is not None:
            _shared.close()
