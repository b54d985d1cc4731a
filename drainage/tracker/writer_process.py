"""The click writer in its own process, so that the redirect process spends no CPU on the database.

The tracker hands each batch (a `marshal` blob of plain tuples) through a Unix socket to a child process
(spawned, with its own engine) and waits for its answer, one batch at a time; it drops a batch from memory only
once the child says it is committed. The parent's side is driven by the event loop itself (asyncio streams), not
by a thread: a thread in the redirect process would take the GIL from the redirects in bursts (a blocking write
of a large batch hands the GIL back and forth once per socket buffer), which bench/tracker.py measured at several
microseconds per click. The child ignores SIGINT/SIGTERM (the tracker drains its buffer through it at shutdown,
then closes the socket) and ends when the socket closes, after finishing the batch it holds: a tracker killed
with SIGKILL loses only what it had not handed over yet. A child that dies is started again and the unanswered
batch is sent again, marked as a retry (`write_batch` leaves out the clicks already committed).

The child says it is ready (imports done, database connected, agent matcher compiled) before the tracker
starts: it takes no request before its writer can keep up.

Framing on the socket is `multiprocessing.connection`'s (a 4-byte big-endian length, or -1 and 8 bytes), so the
child reads and answers with a plain `Connection`.
"""

from __future__ import annotations

import asyncio
import contextlib
import marshal
import multiprocessing
import os
import signal
import socket
import struct
from collections import Counter
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

from drainage.tracker.writer import ClickRow, write_batch

READY_TIMEOUT = 120.0
"""Seconds the tracker waits for a new writer process to be ready (imports, database, agent matcher) before it
gives up starting; the tracker takes no request before its writer is ready."""
READY = b"ready"

SOCKET_BUFFER = 4 << 20
"""Bytes asked of the kernel for each direction of the socket (a batch of 5,000 clicks is about 600 kB), so a
batch is usually handed over in one write."""


class WriterGone(Exception):
    """The writer process ended before answering; the batch may or may not be committed."""


class WriteFailed(Exception):
    """The writer process could not write the batch (the database refused it); nothing of it was committed."""


def length_header(n: int) -> bytes:
    """`multiprocessing.connection`'s header for a message of `n` bytes."""
    return struct.pack("!i", n) if n <= 0x7FFFFFFF else struct.pack("!iQ", -1, n)


class ProcessWriter:
    """Parent side: `write` is a coroutine of the tracker's event loop, one call at a time."""

    def __init__(self, database_url: str) -> None:
        self._url = database_url
        self.visitor_key = b""
        """The key the child hashes visitors with (set before `start`)."""
        self._process: BaseProcess | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._turn = asyncio.Lock()  # one batch on the socket at a time, its answer read before the next is sent

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    async def start(self) -> None:
        """Spawn the child (never fork: the parent has an event loop and threads) and connect to it."""
        ours, theirs = socket.socketpair()
        for sock in (ours, theirs):
            for option in (socket.SO_SNDBUF, socket.SO_RCVBUF):
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, option, SOCKET_BUFFER)
        context = multiprocessing.get_context("spawn")
        process = context.Process(target=serve, args=(theirs, self._url, self.visitor_key),
                                  name="drainage-click-writer", daemon=True)
        try:
            await asyncio.to_thread(process.start)
        finally:
            theirs.close()
        self._process = process
        self._reader, self._writer = await asyncio.open_unix_connection(sock=ours, limit=1 << 20)
        try:  # the child answers once it can write at full speed: nothing is left to load on the first batch
            ready = await asyncio.wait_for(self._read_frame(self._reader), READY_TIMEOUT)
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError, OSError) as exc:
            await self._discard()
            raise WriterGone(f"the click writer process did not start ({exc.__class__.__name__})") from None
        if ready != READY:
            await self._discard()
            raise WriterGone("the click writer process did not start (unexpected greeting)")

    async def write(self, batch: list[ClickRow], retry: bool = False) -> Counter[str]:
        """Have the child write `batch`; its clicks by class. Raises WriterGone or WriteFailed.

        A child found dead is started again and the batch is sent once more (as a retry: its outcome is unknown).
        Callers that may be cancelled shield the call (`asyncio.shield`): a batch on the socket is always followed
        by the reading of its answer, so the next batch never takes an earlier batch's answer for its own.
        """
        try:
            blob = marshal.dumps(batch)
        except ValueError:  # PendingClick tuples (marshal takes plain tuples only)
            blob = marshal.dumps([tuple(c) for c in batch])
        async with self._turn:
            return await self._send(blob, retry)

    async def _send(self, blob: bytes, retry: bool) -> Counter[str]:
        for attempt in range(2):
            if self._process is None or not self._process.is_alive() or self._writer is None:
                await self._discard()
                await self.start()
            assert self._reader is not None and self._writer is not None
            try:
                kind = b"R" if retry or attempt > 0 else b"W"
                self._writer.writelines([length_header(1 + len(blob)), kind, blob])  # the batch is not copied
                await self._writer.drain()
                ok, answer = marshal.loads(await self._read_frame(self._reader))
            except (asyncio.IncompleteReadError, ConnectionError, OSError) as exc:
                await self._discard()
                if attempt == 0:
                    continue
                raise WriterGone(f"the click writer process ended ({exc.__class__.__name__})") from None
            if not ok:
                raise WriteFailed(answer)
            return Counter(answer)
        raise AssertionError("unreachable")

    @staticmethod
    async def _read_frame(reader: asyncio.StreamReader) -> bytes:
        (size,) = struct.unpack("!i", await reader.readexactly(4))
        if size == -1:
            (size,) = struct.unpack("!Q", await reader.readexactly(8))
        return await reader.readexactly(size)

    async def close(self, timeout: float = 600.0) -> None:
        """Let the child finish and end (after the last `write`, and after a shielded one still answering)."""
        async with self._turn:
            if self._writer is not None:
                with contextlib.suppress(OSError):
                    self._writer.write(length_header(0))
                    await self._writer.drain()
            if self._process is not None:
                await asyncio.to_thread(self._process.join, timeout)
            await self._discard()

    def abandon(self) -> None:
        """Close our end of the socket without waiting: the child finishes the batch it holds, then ends."""
        if self._writer is not None:
            self._writer.close()

    async def _discard(self) -> None:
        """Forget the current child (ending it if it still runs, and reaping it)."""
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()
        process = self._process
        if process is not None:
            if process.is_alive():
                process.kill()
            await asyncio.to_thread(process.join, 5)
        self._reader, self._writer, self._process = None, None, None


WRITER_NICE = 10
"""Niceness added to the writer process: on a busy machine the scheduler serves the redirects (and whatever else
answers visitors) first, and the writer takes the CPU time left over, writing larger batches when it lags."""
WRITER_CACHE_KIB = 65536
"""SQLite page cache of the writer's connection (SQLite's default is 2 MiB): the unique visitors of a day are a
random-keyed index that outgrows the default cache on a busy day."""


def serve(sock: socket.socket, database_url: str, visitor_key: bytes) -> None:
    """Child side: write each batch received and answer (True, counts) or (False, reason) until the socket ends."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    with contextlib.suppress(OSError):
        os.nice(WRITER_NICE)
    from drainage.store.db import make_engine
    from drainage.tracker.bots import matcher
    from drainage.tracker.visitors import VisitorHasher

    pipe = Connection(sock.detach())
    engine = make_engine(database_url, sqlite_cache_kib=WRITER_CACHE_KIB)
    visitors = VisitorHasher(visitor_key)
    try:
        matcher()  # compiled before the first batch, not during it
        with contextlib.suppress(Exception):  # a database that is away now is retried batch by batch
            engine.connect().close()
        try:
            pipe.send_bytes(READY)
        except OSError:
            return
        while True:
            try:
                message = pipe.recv_bytes()
            except (EOFError, OSError):
                return
            if not message:
                return
            retry, batch = message[:1] == b"R", marshal.loads(message[1:])
            try:
                answer: tuple[bool, object] = (True, dict(write_batch(engine, batch, visitors, retry)))
            except Exception as exc:  # the tracker keeps the batch and tries again later
                answer = (False, f"{exc.__class__.__name__}: {exc}"[:300])
            try:
                pipe.send_bytes(marshal.dumps(answer))
            except OSError:
                return
    finally:
        engine.dispose()
