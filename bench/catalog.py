"""Benchmark of catalog-size campaigns: `drainage validate`, `drainage plan --days 7` and the daemon's memory.

    .venv/bin/python bench/catalog.py [--campaigns 10] [--items 5000] [--growth 1000,10000] [--keep DIR]

Generates a project (the shipped config.yaml and templates) with --campaigns campaigns of --items items each,
every campaign posting to 3 channels (social with a 280-character limit, forum, email with a subject), each
channel with 2 variants, and a Christmas theme that swaps the social template. Then, in the same run, each as a
separate process the way a marketer runs it:

- `drainage validate` (loads every file, renders every item with every variant and theme, checks lengths), first
  on files never parsed before (libyaml), then again once they are in drainage's YAML cache (a cache folder of
  this run: see drainage/yaml_cache.py);
- `drainage plan --days 7` (files in the cache, as after any earlier command);
- `drainage run --no-tracker`: the daemon's resident memory (peak, VmHWM) once it has started;
- the growth factor: `validate` of one campaign of 1,000 items against one of 10,000, less the startup (the
  time of a campaign of one item): 10 when the work is linear in the items, 100 when quadratic.

Targets (issue 21), 10 campaigns x 5,000 items: validate under 10 s, plan under 2 s, daemon under 300 MB.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DRAINAGE = [sys.executable, "-m", "drainage"]

CONFIG_EXTRA = """
daemon:
  log_format: json
"""

CAMPAIGN_HEAD = """\
id: catalog-{n}
title: Whole catalog {n}
status: active
start: 2026-01-01
timezone: Europe/Berlin
rotation: round-robin
schedule:
  - cron: "0 9,13,18 * * *"
channels:
  - channel: social-outbox
    template: social/gift.j2
    quiet_hours: ["22:00-07:00"]
    variants:
      - name: plain
      - name: hook
        template: social/launch.j2
        vars: {{hook: "Just in:"}}
  - channel: forum-outbox
    template: forum/launch.j2
    variants:
      - name: a
      - name: b
    schedule:
      - cron: "0 18 * * 3"
  - channel: newsletter-outbox
    template: email/launch.txt.j2
    subject: "New: {{{{ item.name }}}}"
    variants:
      - name: short
      - name: long
    schedule:
      - cron: "0 8 * * 1"
themes:
  - name: christmas
    from: 12-01
    to: 12-26
    vars: {{greeting: "Merry Christmas!"}}
    templates:
      social/gift.j2: social/gift_christmas.j2
items:
"""

ITEM = """\
  - id: product-{n}-{i}
    name: Merino product number {i}
    url: /products/merino-{i}?c={n}
    image: https://shop.example.com/cdn/merino-{i}.jpg
    price: {price}
    tags: [merino, winter style]
"""
ITEM_WITH_CODE = ITEM + "    discount_code: CODE{i}\n"


def make_project(root: Path, campaigns: int, items: int) -> Path:
    """A project folder with the shipped config and templates and the generated campaigns; its config.yaml."""
    if root.exists():
        shutil.rmtree(root)
    (root / "campaigns").mkdir(parents=True)
    shutil.copytree(REPO / "templates", root / "templates")
    config = (REPO / "config.yaml").read_text(encoding="utf-8")
    (root / "config.yaml").write_text(config + CONFIG_EXTRA, encoding="utf-8")
    for n in range(campaigns):
        parts = [CAMPAIGN_HEAD.format(n=n)]
        parts += [(ITEM_WITH_CODE if i % 3 == 0 else ITEM).format(n=n, i=i, price=f"{19 + i % 80}.5")
                  for i in range(items)]
        (root / "campaigns" / f"catalog-{n}.yaml").write_text("".join(parts), encoding="utf-8")
    return root / "config.yaml"


def timed(args: list[str], cwd: Path, cache: Path) -> tuple[float, float, subprocess.CompletedProcess[str]]:
    """(wall seconds, CPU seconds, result) of one `drainage` command in its own process.

    CPU time (user + system of the child) is printed next to the wall time: on a shared machine the wall time
    says as much about the neighbours as about drainage.
    """
    env = {**os.environ, "COLUMNS": "200", "DRAINAGE_CACHE_DIR": str(cache)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    begin = time.perf_counter()
    done = subprocess.run([*DRAINAGE, *args], cwd=cwd, capture_output=True, text=True, env=env, check=False)
    elapsed = time.perf_counter() - begin
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    if done.returncode != 0:
        sys.exit(f"drainage {' '.join(args)} failed ({done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return elapsed, cpu, done


def daemon_memory(cwd: Path, cache: Path, deadline: float = 300.0) -> tuple[float, float]:
    """(seconds until 'daemon.started', peak resident MB) of `drainage run --no-tracker`."""
    env = {**os.environ, "DRAINAGE_EMAIL_SECRET": "bench-secret-bench-secret-bench-secret",
           "DRAINAGE_CACHE_DIR": str(cache)}
    begin = time.perf_counter()
    proc = subprocess.Popen([*DRAINAGE, "run", "--no-tracker"], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if "daemon.started" in line:
                break
            if time.perf_counter() - begin > deadline:
                sys.exit("the daemon did not start in time")
        else:
            sys.exit(f"the daemon exited ({proc.wait()}) before it started")
        started = time.perf_counter() - begin
        time.sleep(1.0)
        status = Path(f"/proc/{proc.pid}/status").read_text()
        peak = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))
        return started, peak / 1024
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def verdict(value: float, target: float) -> str:
    return "ok" if value <= target else "OVER"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--campaigns", type=int, default=10)
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--growth", default="1000,10000", help="Two catalog sizes (one campaign) to compare.")
    parser.add_argument("--keep", type=Path, help="Build the projects in this folder and keep them.")
    args = parser.parse_args()
    base = args.keep or Path(tempfile.mkdtemp(prefix="drainage-catalog-"))
    try:
        small, large = (int(x) for x in args.growth.split(","))
        cache = base / "yaml-cache"
        make_project(base / "one-1", 1, 1)
        startup = timed(["validate"], base / "one-1", cache)
        print(f"validate, 1 campaign x 1 item (startup): {startup[0]:6.2f} s, CPU {startup[1]:6.2f} s", flush=True)
        times = []
        for size in (small, large):
            make_project(base / f"one-{size}", 1, size)
            wall, cpu, _ = timed(["validate"], base / f"one-{size}", cache)
            times.append(cpu)
            print(f"validate, 1 campaign x {size:,} items: {wall:6.2f} s, CPU {cpu:6.2f} s", flush=True)
        work = [max(t - startup[1], 1e-3) for t in times]
        print(f"growth factor {small:,} -> {large:,} items, CPU time less the startup's: {work[1] / work[0]:.1f} "
              f"(items x{large / small:g}: linear is x{large / small:g}, quadratic x{(large / small) ** 2:g})")
        print(f"\ncatalog: {args.campaigns} campaigns x {args.items:,} items, 3 channels, 2 variants each, a theme")
        project = base / "catalog"
        make_project(project, args.campaigns, args.items)
        size = sum(p.stat().st_size for p in (project / "campaigns").iterdir())
        print(f"campaign files: {size / 1e6:.1f} MB")
        for when in ("files new", "files cached"):
            seconds, cpu, _ = timed(["validate"], project, cache)
            print(f"validate ({when}): {seconds:6.2f} s, CPU {cpu:6.2f} s  (target 10 s: {verdict(seconds, 10)})",
                  flush=True)
        seconds, cpu, done = timed(["plan", "--days", "7"], project, cache)
        title = next((line.strip() for line in done.stdout.splitlines() if "posts planned" in line), "")
        print(f"plan --days 7:          {seconds:6.2f} s, CPU {cpu:6.2f} s  (target 2 s: {verdict(seconds, 2)}; "
              f"{title})", flush=True)
        started, peak = daemon_memory(project, cache)
        print(f"daemon:                 {peak:6.0f} MB  (target 300 MB: {verdict(peak, 300)}; "
              f"started in {started:.1f} s)")
        print(f"{os.cpu_count()} CPUs; load average at the end (1, 5, 15 min): "
              + ", ".join(f"{x:.1f}" for x in os.getloadavg()))
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
