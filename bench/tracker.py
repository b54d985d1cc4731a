"""Benchmark of the click tracker against a bare ASGI app answering the same 302, on the same server.

    .venv/bin/python bench/tracker.py [--requests 100000] [--concurrency 1,16,64] [--rounds 3]
                                      [--writer process|thread] [--load wrk|python] [--show-drain]

Both run under uvicorn (uvloop + httptools, no access log) in their own process; the same load generator sends
a fixed number of keep-alive GETs at each concurrency: wrk (bench/wrkload.py) when it is installed
(`apt install wrk`), else bench/loadgen.py (Python, its own process: it then takes about as much CPU per
request as the bare app). At each concurrency the tracker and the bare app take turns `--rounds` times (this VM's
speed drifts by tens of percent within minutes; taking turns exposes both to the same drift). Printed for each
round: requests/s and p50/p99 latency of each and the tracker/bare ratio; then the median ratio per concurrency,
p99 of the tracker paced at half its peak rate (bench/loadgen.py, which can pace), and finally the clicks counted
in the database against the redirects the tracker answered (0 lost expected).

The tracker's requests/s counts every click *written*: after each run the script waits until the tracker's
/healthz says all clicks answered so far are in the database, and divides the requests by the run's time plus
that drain time, so a writer that falls behind the redirects cannot flatter the figure.
Targets (issue 5): ratio >= 0.60 with every click logged; p99 < 10 ms at half the peak rate.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import wrkload  # noqa: E402  (bench/wrkload.py, beside this script)

from drainage.links import tracked_link  # noqa: E402
from drainage.store.db import make_engine, session  # noqa: E402
from drainage.store.migrate import ensure_schema  # noqa: E402
from drainage.store.models import Click, Link  # noqa: E402

LINKS = 1000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(port: int, path: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}{path}", timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise SystemExit(f"server on port {port} did not start")


def load(port: int, paths: list[str], requests: int, concurrency: int, rate: float = 0.0, *,
         generator: str = "python", seconds: float = 5.0) -> dict:
    """One run of `requests` GETs (bench/loadgen.py), or with `generator` wrk (unpaced runs only,
    bench/wrkload.py) one run of `seconds` (wrk runs for a time, not a number of requests)."""
    if generator == "wrk" and not rate:
        return wrkload.load(port, paths, seconds, concurrency)
    out = subprocess.run([sys.executable, str(REPO / "bench" / "loadgen.py"), "--port", str(port), "--paths",
                          ",".join(paths), "--requests", str(requests), "--concurrency", str(concurrency),
                          "--rate", str(rate)], check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def answered(port: int) -> int:
    """Redirects the tracker answered so far (its own counter: a load generator stopped after N responses may
    have had more requests in flight, which the tracker answered and logged too)."""
    metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    found = re.search(r'^drainage_tracker_redirects_total\{result="redirect"\} ([\d.e+]+)$', metrics, re.M)
    return int(float(found.group(1))) if found else 0


def drain(port: int, sent: int) -> float:
    """Seconds until the tracker has written `sent` clicks (polled on /healthz)."""
    started = time.perf_counter()
    while httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).json()["clicks_written"] < sent:
        if time.perf_counter() - started > 120:
            raise SystemExit("the tracker did not write its clicks within 120 s")
        time.sleep(0.01)
    return time.perf_counter() - started


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of process `pid` and its children so far, from /proc (Linux; 0 elsewhere)."""
    total = 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        children = [c for task in Path(f"/proc/{pid}/task").iterdir() for c in (task / "children").read_text().split()]
    except (OSError, IndexError, ValueError):
        return total
    return total + sum(cpu_seconds(int(child)) for child in children)


def setup(root: Path, port: int, writer: str) -> list[str]:
    (root / "config.yaml").write_text(f"""\
store: {{name: Bench, base_url: "https://shop.example.com"}}
tracker: {{public_url: "https://go.example.com", port: {port}, flush_every: 250ms, writer: {writer}}}
""")
    engine = make_engine(f"sqlite:///{root / 'drainage.db'}")
    ensure_schema(engine)
    codes = []
    with session(engine) as s:
        for n in range(LINKS):
            target = (f"https://shop.example.com/products/item-{n}?color=red&utm_source=social&utm_medium=social"
                      f"&utm_campaign=bench&utm_content=a")
            link = tracked_link("https://go.example.com", target, "bench", "social", f"item-{n}", "a")
            s.add(Link(code=link.code, target=target, campaign="bench", channel="social", item=f"item-{n}",
                       variant="a"))
            codes.append(link.code)
        s.commit()
    engine.dispose()
    return [f"/c/{code}" for code in codes]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=20000, help="Requests per run.")
    parser.add_argument("--concurrency", default="1,16,64", help="Comma-separated connection counts.")
    parser.add_argument("--writer", choices=["process", "thread"], default="process",
                        help="tracker.writer: where clicks are written (default: process).")
    parser.add_argument("--load", choices=["wrk", "python"], default="wrk" if wrkload.available() else "python",
                        help="Load generator: wrk (Debian's package; default when installed) or bench/loadgen.py.")
    parser.add_argument("--rounds", type=int, default=3,
                        help="Interleaved tracker/bare runs at each concurrency (the median ratio is the figure).")
    parser.add_argument("--seconds", type=float, default=5.0, help="Length of each wrk run (--requests is for "
                                                                    "bench/loadgen.py, which counts requests).")
    parser.add_argument("--show-drain", action="store_true",
                        help="Also print the redirect rate alone, the time the writer needed to catch up, and the "
                             "CPU time per request of each server (with its children), from /proc.")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="drainage-bench-"))
    tracker_port, bare_port = free_port(), free_port()
    paths = setup(root, tracker_port, args.writer)
    env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost"}
    tracker = subprocess.Popen([sys.executable, "-m", "drainage", "tracker", "--log-format", "plain"], cwd=root,
                               env=env, stderr=subprocess.DEVNULL)
    bare = subprocess.Popen([sys.executable, "-m", "uvicorn", "bare_app:app", "--app-dir", str(REPO / "bench"),
                             "--port", str(bare_port), "--loop", "uvloop", "--http", "httptools", "--no-access-log",
                             "--log-level", "warning", "--no-server-header"], env=env)
    gen = args.load
    try:
        wait_ready(tracker_port, "/healthz")
        wait_ready(bare_port, "/")
        load(tracker_port, paths, 2000, 16, generator=gen, seconds=1)  # warm-up: links cached, code paths hot
        load(bare_port, ["/x"], 2000, 16, generator=gen, seconds=1)
        drain(tracker_port, answered(tracker_port))
        print(f"load generator: {gen}; tracker.writer: {args.writer}")
        print(f"{'conc':>5} | {'tracker req/s':>13} {'p50 ms':>7} {'p99 ms':>7} | {'bare req/s':>10} {'p50 ms':>7} "
              f"{'p99 ms':>7} | ratio")
        peak = 0.0
        summary = []
        for concurrency in (int(c) for c in args.concurrency.split(",")):
            ratios = []
            for _ in range(args.rounds):  # tracker, bare, tracker, bare...: a slow minute of the VM hits both
                cpu = cpu_seconds(tracker.pid)
                t = load(tracker_port, paths, args.requests, concurrency, generator=gen, seconds=args.seconds)
                raw, drained = t["rps"], drain(tracker_port, answered(tracker_port))
                t["rps"] = t["requests"] / (t["requests"] / raw + drained)  # clicks written/s
                t_cpu = (cpu_seconds(tracker.pid) - cpu) / t["requests"] * 1e6
                cpu = cpu_seconds(bare.pid)
                b = load(bare_port, ["/x"], args.requests, concurrency, generator=gen, seconds=args.seconds)
                if args.show_drain:
                    b_cpu = (cpu_seconds(bare.pid) - cpu) / b["requests"] * 1e6
                    print(f"      redirects answered/s {raw:.0f}, then {drained:.2f} s until every click was written; "
                          f"CPU per request: tracker {t_cpu:.1f} µs (with its writer), bare {b_cpu:.1f} µs")
                assert set(t["statuses"]) <= {"302", "2xx/3xx"}, t["statuses"]
                peak = max(peak, t["rps"])
                ratios.append(t["rps"] / b["rps"])
                print(f"{concurrency:>5} | {t['rps']:>13.0f} {t['p50_ms']:>7.2f} {t['p99_ms']:>7.2f} | "
                      f"{b['rps']:>10.0f} {b['p50_ms']:>7.2f} {b['p99_ms']:>7.2f} | {ratios[-1]:.2f}")
            each = ", ".join(f"{r:.2f}" for r in ratios)
            summary.append(f"{concurrency}: {statistics.median(ratios):.2f} (of {each})")
        print(f"median ratio per concurrency (target >= 0.60) -- {'; '.join(summary)}")
        half = load(tracker_port, paths, args.requests // 2, 16, rate=peak / 2)  # paced: bench/loadgen.py
        print(f"tracker paced at half its peak ({peak / 2:.0f} req/s): achieved {half['rps']:.0f} req/s, "
              f"p50 {half['p50_ms']:.2f} ms, p99 {half['p99_ms']:.2f} ms (target < 10 ms)")
        sent = answered(tracker_port)
    finally:
        bare.send_signal(signal.SIGTERM)
        tracker.send_signal(signal.SIGTERM)
        tracker.wait(60)
        bare.wait(60)
    engine = make_engine(f"sqlite:///{root / 'drainage.db'}")
    with session(engine) as s:
        from sqlmodel import func, select

        counted = s.exec(select(func.count()).select_from(Click)).one()
    print(f"clicks in the database: {counted} of {sent} redirects the tracker answered ({sent - counted} lost)")


if __name__ == "__main__":
    main()
