"""A small HTTP/1.1 keep-alive load generator (uvloop, raw sockets): a fixed number of GETs over N connections,
optionally paced to a target rate. Prints one JSON line: requests, seconds, requests/s, p50/p99 latency (ms),
status counts. Used by bench/tracker.py; runs as its own process so it does not share the server's loop."""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections import Counter


async def connection(host: str, port: int, paths: list[str], count: int, start: int, interval: float,
                     offset: float, t0: float, latencies: list[float], statuses: Counter[int]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        for i in range(count):
            if interval:
                due = t0 + i * interval + offset
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            path = paths[(start + i) % len(paths)]
            request = (f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) "
                       f"bench\r\n\r\n").encode()
            began = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if length:
                await reader.readexactly(length)
            latencies.append(time.perf_counter() - began)
            statuses[int(head[9:12])] += 1
    finally:
        writer.close()


async def main(args: argparse.Namespace) -> None:
    paths = args.paths.split(",")
    per = args.requests // args.concurrency
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    interval = args.concurrency / args.rate if args.rate else 0.0  # per connection
    t0 = time.perf_counter()
    await asyncio.gather(*(connection(args.host, args.port, paths, per, c * per, interval,
                                      c * interval / args.concurrency, t0, latencies, statuses)
                           for c in range(args.concurrency)))
    elapsed = time.perf_counter() - t0
    latencies.sort()
    print(json.dumps({
        "requests": len(latencies), "seconds": elapsed, "rps": len(latencies) / elapsed,
        "p50_ms": statistics.median(latencies) * 1000, "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
        "statuses": dict(statuses)}))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--paths", required=True, help="Comma-separated request paths, used round-robin.")
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rate", type=float, default=0.0, help="Total requests/s to pace at (0: as fast as possible).")
    import uvloop

    uvloop.run(main(parser.parse_args()))
