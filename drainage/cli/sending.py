"""Commands that send or let sending go on: `send` (a campaign's current slot, now) and `resume` (a paused
channel, or an email campaign's paused fan-outs)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from drainage.cli.catalog import campaign_market, market_named, show_planned
from drainage.cli.console import complain, say, stdout
from drainage.cli.failures import friendly_errors
from drainage.cli.opening import load_project, open_engine, parse_when, run_then_close
from drainage.cli.options import DEFAULT_CONFIG, ConfigOpt, MarketOpt
from drainage.errors import Problem, ProblemsFound

NOT_DONE = ("failed", "paused", "interrupted", "unknown")
"""Outcomes that make `send` exit 1."""


def send(campaign: Annotated[str, typer.Argument(help="Campaign id or file name.")],
         channel: Annotated[str | None, typer.Option(help="Only this channel.")] = None,
         at: Annotated[str | None, typer.Option(help="Send the slot due at this local time (default: now; with "
                                                     "--market, that market's time).")] = None,
         market: MarketOpt = None,
         dry_run: Annotated[bool, typer.Option("--dry-run", help="Render and show, send nothing.")] = False,
         force: Annotated[bool, typer.Option("--force", help="Send even if this slot was sent (email: to those "
                                                             "not reached yet).")] = False,
         include_sent: Annotated[bool, typer.Option("--include-sent", help="With --force on email: mail again "
                                                                           "those who got this slot.")] = False,
         config: ConfigOpt = DEFAULT_CONFIG) -> None:
    """Render each channel's current slot and send it now; a slot already sent is refused unless --force."""
    from drainage.cli.present.posts import show_outcome
    from drainage.sending import send_campaign

    if include_sent and not force:
        complain("--include-sent goes with --force (it says whom a forced email send mails again)")
        raise typer.Exit(2)
    with friendly_errors():
        project = load_project(config)
        loaded = project.campaign(campaign)
        only = campaign_market(loaded, market_named(project, market))
        engine = open_engine(project)
        outcomes = run_then_close(send_campaign(project, engine, loaded, parse_when(at, loaded.tz_of(only)),
                                                channel=channel, market=market, dry_run=dry_run, force=force,
                                                include_sent=include_sent,
                                                say=lambda line: stdout().print(line, soft_wrap=True)), project)
        for outcome in outcomes:
            show_outcome(stdout(), outcome)
        if dry_run:
            for outcome in outcomes:
                show_planned(project, outcome.composed.planned)
        if any(outcome.status in NOT_DONE for outcome in outcomes):
            raise typer.Exit(1)


def resume(channel: Annotated[str, typer.Argument(help="Channel instance name from config.yaml, or an email "
                                                     "campaign's id.")],
           config: ConfigOpt = DEFAULT_CONFIG) -> None:
    """Lift a channel's pause (after an auth error; posts still within their grace go out, older are missed), or
    an email campaign's auto-pause (its fan-outs carry on with the recipients not yet sent)."""
    from drainage.dispatch import resume_channel

    with friendly_errors():
        project = load_project(config)
        if channel not in project.config.channels and channel in project.campaigns:
            from drainage.email.ledger import resume_campaign

            keys = resume_campaign(open_engine(project), channel)
            say(f"resumed {len(keys)} paused email fan-out(s) of campaign {channel}"
                + ("; the daemon carries on with them" if keys else " (none was paused)"))
            return
        if channel not in project.config.channels:
            from drainage.sources import did_you_mean

            raise ProblemsFound([Problem(project.config.shown_as, 0, 0, f"no channel '{channel}'",
                                         did_you_mean(channel, project.config.channels))])
        released, missed = resume_channel(project, open_engine(project), channel, datetime.now(UTC))
        say(f"resumed {channel}: {released} post(s) will be sent by the daemon, {missed} recorded as missed (older "
            "than their misfire_grace)")
