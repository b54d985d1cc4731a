"""Cost of classifying a user agent seen for the first time (the LRU cache empty), against CrawlerDetect alone.

Agents: the crawler-user-agents instances and fake-useragent's real browser agents (dev dependency), each made
new by a varied version number so no cache helps. Prints microseconds per new agent.

    python bench/agents.py [rounds]
"""

from __future__ import annotations

import json
import sys
import time
from importlib.resources import files

import crawleruseragents
from crawlerdetect import CrawlerDetect

from drainage.tracker.agents import classify
from drainage.tracker.bots import matcher


def corpus(round_no: int) -> list[str]:
    bots = [ua for entry in crawleruseragents.CRAWLER_USER_AGENTS_DATA for ua in entry["instances"]]
    text = files("fake_useragent").joinpath("data/browsers.jsonl").read_text()
    browsers = sorted({json.loads(line)["useragent"] for line in text.splitlines() if line.strip()})
    return [f"{ua} r{round_no}.{i}" for i, ua in enumerate(bots + browsers)]


def main(rounds: int = 3) -> None:
    started = time.perf_counter()
    matcher()
    print(f"compile: {(time.perf_counter() - started) * 1e3:.0f} ms")
    detector = CrawlerDetect()
    detector.is_crawler("warm")
    for round_no in range(rounds):
        agents = corpus(round_no)
        classify.cache_clear()
        started = time.perf_counter()
        for agent in agents:
            classify(agent)
        ours = (time.perf_counter() - started) / len(agents) * 1e6
        started = time.perf_counter()
        for agent in agents[:500]:
            detector._check_crawler(agent)  # its own cache bypassed, as for a new agent
        theirs = (time.perf_counter() - started) / 500 * 1e6
        started = time.perf_counter()
        for agent in agents:
            classify(agent)
        cached = (time.perf_counter() - started) / len(agents) * 1e6
        print(f"round {round_no}: {len(agents)} new agents, {ours:.1f} us each (cached: {cached:.2f} us); "
              f"CrawlerDetect alone: {theirs:.0f} us each")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
