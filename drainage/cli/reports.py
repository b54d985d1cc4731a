"""What the traffic brought and how long raw clicks are kept: `report` and `prune`. Both read config.yaml's
database section only."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from drainage.cli.console import complain, say, stderr, stdout
from drainage.cli.failures import friendly_errors
from drainage.cli.opening import load_config_only, open_existing_engine
from drainage.cli.options import DEFAULT_CONFIG, ConfigOpt
from drainage.errors import DrainageError

FORMATS = ("table", "csv", "json", "html")


def report(since: Annotated[str | None, typer.Option(help="Whole UTC days up to today, e.g. 7d, 4w (default 7d).")
                            ] = None,
           start: Annotated[str | None, typer.Option("--from", help="First UTC day, YYYY-MM-DD.")] = None,
           end: Annotated[str | None, typer.Option("--to", help="Last UTC day, YYYY-MM-DD (default: today).")] = None,
           campaign: Annotated[list[str] | None, typer.Option(help="Only this campaign (repeatable).")] = None,
           channel: Annotated[list[str] | None, typer.Option(help="Only this channel (repeatable).")] = None,
           by: Annotated[str, typer.Option(help="One row per channel, campaign, variant, item, day or market."
                                           )] = "channel",
           market: Annotated[list[str] | None, typer.Option(help="Only this market (repeatable; '-': campaigns "
                                                                 "without markets).")] = None,
           fmt: Annotated[str | None, typer.Option("--format", help="table, csv, json or html (default: from the "
                                                                    "--output suffix, else table).")] = None,
           output: Annotated[Path | None, typer.Option(help="Write to this file instead of the terminal.")] = None,
           top: Annotated[int, typer.Option(help="How many top posts to list.")] = 10,
           config: ConfigOpt = DEFAULT_CONFIG) -> None:
    """What each channel, campaign, variant, item or day brought: posts, clicks, visitors, CTR, orders, revenue."""
    from drainage.cli.present.reports import write_report
    from drainage.reports.query import build_report
    from drainage.reports.request import BadRequest, parse_request

    with friendly_errors():
        suffix = output.suffix.lstrip(".").lower() if output else ""
        chosen = fmt or (suffix if suffix in FORMATS[1:] else "table")
        try:
            if chosen not in FORMATS:
                raise BadRequest(f"--format must be one of {', '.join(FORMATS)}, got '{chosen}'")
            request = parse_request(since=since, start=start, end=end, campaigns=campaign or [],
                                    channels=channel or [], by=by, top=top, markets=market or [])
        except BadRequest as exc:
            complain(f"error: {exc}")
            raise typer.Exit(2) from None
        engine = open_existing_engine(load_config_only(config, "database"))
        with stderr().status("reading rollups, journal and orders...", spinner="dots"):
            built = build_report(engine, request)
        write_report(built, chosen, output, stdout(), stderr())


def prune(older_than: Annotated[str | None, typer.Option(help="Delete raw clicks older than this, e.g. 90d "
                                                               "(default: tracker.keep_raw_clicks).")] = None,
          config: ConfigOpt = DEFAULT_CONFIG) -> None:
    """Delete raw clicks (and daily visitor hashes) past the retention; rollups and reports stay the same."""
    from drainage.schedule import parse_duration
    from drainage.store.retention import MIN_KEEP, prune_raw_clicks

    with friendly_errors():
        loaded = load_config_only(config, "database", "tracker.keep_raw_clicks")
        text = older_than or loaded.config.tracker.keep_raw_clicks
        if not text:
            raise DrainageError("nothing to prune by: set tracker.keep_raw_clicks in config.yaml (e.g. 90d) or pass "
                                "--older-than 90d")
        try:
            keep = parse_duration(text)
        except ValueError as exc:
            raise DrainageError(f"--older-than: {exc}") from None
        if keep < MIN_KEEP:
            raise DrainageError(f"--older-than: keep raw clicks at least {MIN_KEEP.days}d (a late write may still "
                                "add to yesterday's unique visitors)")
        engine = open_existing_engine(loaded)
        with stderr().status("deleting old raw clicks...", spinner="dots"):
            pruned = prune_raw_clicks(engine, keep)
        say(f"deleted {pruned.clicks:,} raw clicks and {pruned.visitor_days:,} daily visitor hashes from before "
            f"{pruned.before:%Y-%m-%d %H:%M} UTC; rollups and reports are unchanged")
