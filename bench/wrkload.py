"""Drive a server with wrk (Debian's package `wrk`, a C load generator): keep-alive GETs for a fixed time.

bench/tracker.py uses it when `wrk` is installed: a load generator written in Python costs about as much CPU per
request as the server it measures, and on a small machine it competes with the server (and the tracker's
writer) for the same cores. One wrk thread, N connections, a Lua script rotating over the paths. wrk runs for a
duration, not a number of requests (its Lua cannot stop a run early and keep its timing). Returns what
bench/loadgen.py prints: requests, rps, p50/p99 ms and status counts (wrk tells 2xx/3xx from the rest).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

LUA = """\
paths = {%(paths)s}
requests = {}
for n, path in ipairs(paths) do
  requests[n] = wrk.format("GET", path, {["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64) bench"})
end
local i = 0
request = function()
  i = i %% #requests + 1
  return requests[i]
end
"""
"""Each request is formatted once, before the run: wrk.format per request costs wrk CPU that, on a small
machine, it takes from the servers it measures."""
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def available() -> bool:
    return shutil.which("wrk") is not None


def load(port: int, paths: list[str], seconds: float, concurrency: int) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        script = Path(folder) / "paths.lua"
        script.write_text(LUA % {"paths": ",".join(f'"{p}"' for p in paths)})
        out = subprocess.run(["wrk", "-t", "1", "-c", str(concurrency), "-d", f"{seconds:g}s", "--latency", "-s",
                              str(script),
                              f"http://127.0.0.1:{port}"], check=True, capture_output=True, text=True).stdout
    done = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)\b", out)
    if done is None:
        raise SystemExit(f"unexpected wrk output:\n{out}")
    count = int(done.group(1))
    seconds = float(done.group(2)) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[done.group(3)]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    latency = {p: float(v) * _UNITS[u] for p, v, u in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)$", out, re.M)}
    statuses = {"2xx/3xx": count - (int(bad.group(1)) if bad else 0)}
    if bad:
        statuses["other"] = int(bad.group(1))
    return {"requests": count, "seconds": seconds, "rps": count / seconds, "p50_ms": latency.get("50", 0.0),
            "p99_ms": latency.get("99", 0.0), "statuses": statuses}
