"""What parsing in a worker process costs: one store feed read in-process and through the parser pool.

    python bench/feed_parse.py [ROUNDS]

Prints the median time per document of each way, and what starting a worker costs (once per process).
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

from drainage.feeds.entries import read_document
from drainage.feeds.sandbox import ParserPool

FEED = Path(__file__).resolve().parent.parent / "tests" / "data" / "feeds" / "shopify-all.atom"
URL = "https://shop.example.com/collections/all.atom"


def main(rounds: int) -> None:
    content = FEED.read_bytes()
    pool = ParserPool(workers=1)
    try:
        started = time.perf_counter()
        pool.read_blocking(content, URL)
        first = time.perf_counter() - started
        timings: dict[str, list[float]] = {"in-process": [], "worker": []}
        for _ in range(rounds):
            for name, read in (("in-process", read_document), ("worker", pool.read_blocking)):
                started = time.perf_counter()
                read(content, URL)
                timings[name].append(time.perf_counter() - started)
    finally:
        pool.close()
    print(f"first document through a new worker (its start included): {first * 1000:.0f} ms")
    for name, values in timings.items():
        print(f"{name}: median {statistics.median(values) * 1000:.1f} ms per document ({rounds} rounds)")
    ratio = statistics.median(timings["worker"]) / statistics.median(timings["in-process"])
    print(f"worker / in-process: {ratio:.2f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 50)
