"""The parser worker: `python -m drainage.feeds.worker MEMORY_BYTES`, started by `drainage.feeds.sandbox`.

It caps its own address space (RLIMIT_AS: its size after start-up plus MEMORY_BYTES), then reads requests
from stdin and writes answers to stdout, each a 4-byte big-endian length and a pickle:
request `(content, url, content_type)`, answer `("ok", Document)` or `("refused", reason)`; a first answer
`("ready", None)` says it has started. It exits at the
end of stdin, and after running out of memory (its heap may be in pieces). Only this process's own parent
writes to its stdin, and only the parent reads its answers.
"""

from __future__ import annotations

import pickle
import resource
import signal
import struct
import sys
from typing import BinaryIO

from drainage.feeds.entries import read_document
from drainage.feeds.parse import FeedError

HEADER = struct.Struct(">I")


def read_frame(stream: BinaryIO) -> bytes | None:
    """One length-prefixed frame, or None at the end of the stream."""
    header = stream.read(HEADER.size)
    if len(header) < HEADER.size:
        return None
    size = HEADER.unpack(header)[0]
    body = stream.read(size)
    return body if len(body) == size else None


def write_frame(stream: BinaryIO, payload: object) -> None:
    body = pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(HEADER.pack(len(body)) + body)
    stream.flush()


def _vm_size() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[0]) * resource.getpagesize()


def cap_memory(extra: int) -> None:
    """Limit this process's address space to its current size plus `extra` bytes (where the OS allows)."""
    try:
        limit = _vm_size() + extra
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (OSError, ValueError):  # no /proc, or a limit we may not set: the parent's deadline still holds
        pass


def serve(memory: int, stdin: BinaryIO, stdout: BinaryIO) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C on the daemon's terminal is the daemon's to handle
    cap_memory(memory)
    write_frame(stdout, ("ready", None))  # imports done: the parent's deadlines time parsing only
    while True:
        frame = read_frame(stdin)
        if frame is None:
            return
        content, url, content_type = pickle.loads(frame)
        try:
            write_frame(stdout, ("ok", read_document(content, url, content_type)))
        except FeedError as exc:
            write_frame(stdout, ("refused", str(exc)))
        except MemoryError:
            del content, frame
            write_frame(stdout, ("refused", f"parsing the document needed more than {memory // 2**20} MB: refused"))
            return
        except RecursionError:
            write_frame(stdout, ("refused", "the document is nested too deeply to parse"))
        except Exception as exc:  # a parser bug on one document: report it, keep serving
            write_frame(stdout, ("refused", f"internal error: {exc.__class__.__name__}: {exc}"))


if __name__ == "__main__":
    serve(int(sys.argv[1]), sys.stdin.buffer, sys.stdout.buffer)
