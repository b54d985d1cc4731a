"""The click writer in its own process, so that the redirect process spends no CPU on the database.

The tracker hands each batch (a `marshal` blob of plain tuples) through a pipe to a child process (spawned,
with its own engine) and waits for its answer, one batch at a time; it drops a batch from memory only once the
child says it is committed. The child ignores SIGINT/SIGTERM (the tracker drains its buffer through it at
shutdown, then closes the pipe) and ends when the pipe closes, after finishing the batch it holds: a tracker
killed with SIGKILL loses only what it had not handed over yet. A child that dies is started again and the
unanswered batch is sent again, marked as a retry (`write_batch` leaves out the clicks already committed).
"""

from __future__ import annotations

import contextlib
import marshal
import multiprocessing
import signal
from collections import Counter
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

from drainage.tracker.writer import ClickRow, write_batch


class WriterGone(Exception):
    """The writer process ended before answering; the batch may or may not be committed."""


class WriteFailed(Exception):
    """The writer process could not write the batch (the database refused it); nothing of it was committed."""


class ProcessWriter:
    """Parent side: `write` is blocking (call it from a thread), one call at a time."""

    def __init__(self, database_url: str) -> None:
        self._url = database_url
        self._pipe: Connection | None = None
        self._process: BaseProcess | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> None:
        context = multiprocessing.get_context("spawn")  # never fork an event loop and its threads
        self._pipe, child_end = context.Pipe()
        self._process = context.Process(target=serve, args=(child_end, self._url), name="drainage-click-writer",
                                        daemon=True)
        self._process.start()
        child_end.close()

    def write(self, batch: list[ClickRow], retry: bool = False) -> Counter[str]:
        """Have the child write `batch`; its clicks by class. Raises WriterGone or WriteFailed.

        A child found dead is started again and the batch is sent once more (as a retry: its outcome is unknown).
        """
        try:
            blob = marshal.dumps(batch)
        except ValueError:  # PendingClick tuples (marshal takes plain tuples only)
            blob = marshal.dumps([tuple(c) for c in batch])
        for attempt in range(2):
            if self._process is None or not self._process.is_alive():
                self._discard()
                self.start()
            assert self._pipe is not None
            try:
                self._pipe.send_bytes(b"R" + blob if retry or attempt > 0 else b"W" + blob)
                ok, answer = self._pipe.recv()
            except (EOFError, OSError) as exc:
                self._discard()
                if attempt == 0:
                    continue
                raise WriterGone(f"the click writer process ended ({exc.__class__.__name__})") from None
            if not ok:
                raise WriteFailed(answer)
            return Counter(answer)
        raise AssertionError("unreachable")

    def close(self, timeout: float = 30.0) -> None:
        """Let the child finish and end (call after the last `write`)."""
        if self._pipe is not None:
            with contextlib.suppress(OSError):
                self._pipe.send_bytes(b"")
        if self._process is not None:
            self._process.join(timeout)
            if self._process.is_alive():
                self._process.kill()
                self._process.join(5)
        self._discard()

    def _discard(self) -> None:
        """Forget the current child (ending it if it still runs, and reaping it)."""
        if self._pipe is not None:
            self._pipe.close()
        if self._process is not None:
            if self._process.is_alive():
                self._process.kill()
            self._process.join(5)
        self._pipe, self._process = None, None


WRITER_CACHE_KIB = 65536
"""SQLite page cache of the writer's connection (SQLite's default is 2 MiB): the unique visitors of a day are a
random-keyed index that outgrows the default cache on a busy day."""


def serve(pipe: Connection, database_url: str) -> None:
    """Child side: write each batch received and answer (True, counts) or (False, reason) until the pipe ends."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    from drainage.store.db import make_engine

    engine = make_engine(database_url, sqlite_cache_kib=WRITER_CACHE_KIB)
    try:
        while True:
            try:
                message = pipe.recv_bytes()
            except (EOFError, OSError):
                return
            if not message:
                return
            retry, batch = message[:1] == b"R", marshal.loads(message[1:])
            try:
                answer: tuple[bool, object] = (True, dict(write_batch(engine, batch, retry)))
            except Exception as exc:  # the tracker keeps the batch and tries again later
                answer = (False, f"{exc.__class__.__name__}: {exc}"[:300])
            try:
                pipe.send(answer)
            except OSError:
                return
    finally:
        engine.dispose()
