"""Email fan-out benchmark: drainage's per-recipient fan-out against a bare aiosmtplib loop, same SMTP sink.

    .venv/bin/python bench/email_fanout.py --recipients 100000 --connections 4

1. An aiosmtpd sink in its own process that only counts messages.
2. drainage: a campaign with an HTML and a text template sent to N imported subscribers through the real email
   channel (frozen audience, ledger claims and outcomes, per-recipient rendering, signed unsubscribe links,
   tracked links stored, MIME), in a child process that reports its own peak memory. Run at two sizes to show
   that memory stays flat (the audience is streamed from the database, never held in memory).
3. The bare loop: the same number of aiosmtplib connections sending one pre-rendered message N times: the very
   message drainage sent to its first recipient, as the sink received it (same size and MIME structure, so the
   sink does the same work per message on both sides and the ratio measures drainage's per-recipient rendering,
   ledger and links, not the sink).

Runs are interleaved `--repeat` times (the machine may be shared); prints messages/s of each run, the best and the
median ratio (target: drainage >= 70 % of the bare loop) and peak RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

HTML = """<html><body>
<h1>Hello {{ subscriber.name }}</h1>
<p>Something new just arrived at {{ store.name }}: the <a href="{{ link(item) }}">{{ item.name }}</a>,
for {{ item | price }}.</p>
{% if item.discount_code %}
<p>As a subscriber you get 10% off with the code <b>{{ item.discount_code }}</b>.</p>
{% endif %}
<p><a href="{{ link('/collections/new', content='footer') }}">See everything new</a></p>
<p>Warm regards,<br>the {{ store.name }} team</p>
</body></html>
"""
TEXT = """Hello {{ subscriber.name }},

something new just arrived at {{ store.name }}: the {{ item.name }}, for {{ item | price }}.
{% if item.discount_code %}As a subscriber you get 10% off with the code {{ item.discount_code }}.{% endif %}

See it here: {{ link(item) }}
Everything new: {{ link('/collections/new', content='footer') }}

Unsubscribe: {{ unsubscribe_url }}
"""
CONFIG = """store: {{name: Northwind Knits, base_url: "https://shop.example.com"}}
tracker: {{public_url: "https://go.example.com", enabled: false}}
email: {{token_secret: bench-secret}}
channels:
  news:
    type: email
    host: 127.0.0.1
    port: {port}
    security: none
    from_address: "Northwind Knits <news@shop.example.com>"
    lists: [newsletter]
    connections: {connections}
    in_flight: {in_flight}
"""
CAMPAIGN = """id: launch
title: Launch
items:
  - {{id: scarf, name: "Merino scarf, ruby red", url: /products/scarf, price: 49.0, discount_code: LAUNCH10}}
schedule: [{{at: "{slot}"}}]
channels:
  - {{channel: news, template: email/launch.html.j2, text_template: email/launch.txt.j2,
      subject: "New: {{{{ item.name }}}} for {{{{ subscriber.name }}}}"}}
"""
SLOT = "2026-01-05T08:00:00+00:00"


# -- the sink ----------------------------------------------------------------------------------------------------
class CountingHandler:
    """Counts messages; keeps the first one it receives in `sample` (the bare loop's pre-rendered message)."""

    def __init__(self, sample: Path) -> None:
        self.count = 0
        self.sample = sample

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        self.count += 1
        if self.count == 1:
            self.sample.write_bytes(envelope.original_content)
        return "250 OK"


def sink(port: int, count_file: Path) -> None:
    from aiosmtpd.controller import Controller

    handler = CountingHandler(count_file.with_name("sample.eml"))
    controller = Controller(handler, hostname="127.0.0.1", port=port, ready_timeout=10)
    controller.start()
    stop = False

    def finish(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, finish)
    while not stop:
        time.sleep(0.1)
        count_file.write_text(str(handler.count))
    controller.stop()
    count_file.write_text(str(handler.count))


# -- drainage's fan-out (child) ----------------------------------------------------------------------------------
def make_project(root: Path, port: int, connections: int, in_flight: int, recipients: int) -> tuple[Path, float]:
    from drainage.email.subscribers import ImportReport, Incoming, import_subscribers
    from drainage.store.db import make_engine
    from drainage.store.migrate import ensure_schema

    (root / "campaigns").mkdir(parents=True)
    (root / "templates" / "email").mkdir(parents=True)
    (root / "templates" / "email" / "launch.html.j2").write_text(HTML)
    (root / "templates" / "email" / "launch.txt.j2").write_text(TEXT)
    (root / "campaigns" / "launch.yaml").write_text(CAMPAIGN.format(slot=SLOT))
    (root / "config.yaml").write_text(CONFIG.format(port=port, connections=connections, in_flight=in_flight))
    engine = make_engine(f"sqlite:///{root / 'drainage.db'}")
    ensure_schema(engine)
    from datetime import UTC, datetime

    started = time.perf_counter()
    consent = datetime(2025, 1, 1, tzinfo=UTC)
    rows = (Incoming(f"customer{i:07d}@example.com", "checkout", consent, f"Customer {i}") for i in range(recipients))
    import_subscribers(engine, rows, ["newsletter"], ImportReport())
    engine.dispose()
    return root / "config.yaml", time.perf_counter() - started


def fanout_child(config: Path) -> None:
    from datetime import datetime

    from drainage.email.service import EmailService
    from drainage.posts import posts_for_slots
    from drainage.project import load_project
    from drainage.store.db import make_engine

    project = load_project(config)
    engine = make_engine(project.config.database_url)
    campaign = project.campaigns["launch"]
    planned = posts_for_slots(campaign, 0, [datetime.fromisoformat(SLOT)])[0]
    post = project.compose(planned).post
    channel = project.channel("news")

    async def main() -> str:
        service = EmailService(channel, engine, project)  # type: ignore[arg-type]  # "news" is an email channel
        try:
            return (await service.send(post)).remote_id
        finally:
            await project.close()

    started, cpu = time.perf_counter(), time.process_time()
    receipt = asyncio.run(main())
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    print(json.dumps({"seconds": seconds, "receipt": receipt, "cpu": cpu,
                      "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


# -- the bare loop (child) ---------------------------------------------------------------------------------------
def bare_child(port: int, connections: int, recipients: int, sample: Path) -> None:
    import aiosmtplib

    message = sample.read_bytes()  # drainage's message to its first recipient, rendered once

    async def worker(index: int) -> int:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False)
        await client.connect()
        sent = 0
        for n in range(index, recipients, connections):
            await client.sendmail("news@shop.example.com", [f"customer{n:07d}@example.com"], message)
            sent += 1
        await client.quit()
        return sent

    async def main() -> int:
        return sum(await asyncio.gather(*(worker(i) for i in range(connections))))

    started, cpu = time.perf_counter(), time.process_time()
    sent = asyncio.run(main())
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    print(json.dumps({"seconds": seconds, "sent": sent, "cpu": cpu,
                      "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def cpu_us(result: dict[str, object], messages: int) -> float:
    """The sending process's CPU time per message, in µs (the sink's is not included)."""
    return float(result["cpu"]) / messages * 1e6  # type: ignore[arg-type]


def child(*args: str) -> dict[str, object]:
    result = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, cwd=REPO)
    if result.returncode != 0:
        raise SystemExit(f"child {args[0]} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=10_000, help="second, smaller fan-out (flat memory check)")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--in-flight", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3, help="interleaved runs of each (best and median shown)")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        if kind == "fanout":
            fanout_child(Path(rest[0]))
        elif kind == "bare":
            bare_child(int(rest[0]), int(rest[1]), int(rest[2]), Path(rest[3]))
        elif kind == "sink":
            sink(int(rest[0]), Path(rest[1]))
        return

    from tests.fakes.smtp import free_port

    port = free_port()
    work = Path(tempfile.mkdtemp(prefix="drainage-email-bench-"))
    count_file = work / "sink-count"
    sink_process = subprocess.Popen([sys.executable, __file__, "--child", "sink", str(port), str(count_file)],
                                    cwd=REPO)
    try:
        while not count_file.exists():
            time.sleep(0.05)
        print(f"sink: aiosmtpd on 127.0.0.1:{port} (its own process); {os.cpu_count()} cores; "
              f"{args.connections} connections each side")
        config, imported = make_project(work / "small", port, args.connections, args.in_flight, args.small)
        small = child("--child", "fanout", str(config))
        sample = count_file.with_name("sample.eml")
        print(f"drainage fan-out of {args.small}: {small['receipt']} in {float(small['seconds']):.1f}s, "  # type: ignore
              f"peak RSS {float(small['maxrss_mb']):.0f} MiB; the bare loop sends its first message "
              f"({len(sample.read_bytes()):,} bytes) as is")
        fanout_rates, bare_rates, peaks = [], [], []
        for run in range(args.repeat):  # interleaved, so that load from elsewhere hits both alike
            config, imported = make_project(work / f"big{run}", port, args.connections, args.in_flight,
                                            args.recipients)
            big = child("--child", "fanout", str(config))
            fanout_rates.append(args.recipients / float(big["seconds"]))  # type: ignore[arg-type]
            peaks.append(float(big["maxrss_mb"]))  # type: ignore[arg-type]
            bare = child("--child", "bare", str(port), str(args.connections), str(args.recipients), str(sample))
            bare_rates.append(int(bare["sent"]) / float(bare["seconds"]))  # type: ignore[arg-type]
            print(f"run {run + 1}: import {args.recipients} subscribers {imported:.1f}s; drainage fan-out "
                  f"{big['receipt']} in {float(big['seconds']):.1f}s = {fanout_rates[-1]:,.0f} msg/s "  # type: ignore
                  f"(peak RSS {peaks[-1]:.0f} MiB, CPU {cpu_us(big, args.recipients):.0f} µs/msg); bare loop "
                  f"{float(bare['seconds']):.1f}s = {bare_rates[-1]:,.0f} msg/s (peak RSS "  # type: ignore
                  f"{float(bare['maxrss_mb']):.0f} MiB, CPU {cpu_us(bare, args.recipients):.0f} µs/msg)")  # type: ignore
        best, best_bare = max(fanout_rates), max(bare_rates)
        ratios = [f / b for f, b in zip(fanout_rates, bare_rates, strict=True)]
        print(f"best of {args.repeat}: drainage {best:,.0f} msg/s, bare aiosmtplib {best_bare:,.0f} msg/s, "
              f"ratio {best / best_bare:.0%} (target >= 70%); per run {', '.join(f'{r:.0%}' for r in ratios)}, "
              f"median {statistics.median(ratios):.0%}")
        print(f"peak RSS of the fan-out: {float(small['maxrss_mb']):.0f} MiB for {args.small} recipients, "  # type: ignore
              f"{max(peaks):.0f} MiB for {args.recipients}")
    finally:
        sink_process.send_signal(signal.SIGTERM)
        sink_process.wait(timeout=30)
    total = int(count_file.read_text())
    print(f"sink counted {total} messages (expected {args.small + 2 * args.repeat * args.recipients})")


if __name__ == "__main__":
    main()
