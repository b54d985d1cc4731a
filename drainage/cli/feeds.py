"""`drainage feeds check` (what a feed would post now) and `drainage feeds status` (how each feed is doing)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from drainage.cli.catalog import show_planned
from drainage.cli.console import stdout
from drainage.cli.failures import friendly_errors
from drainage.cli.groups import LeanGroup
from drainage.cli.opening import load_project, open_engine_if_any, run_then_close
from drainage.cli.options import DEFAULT_CONFIG, ConfigOpt

feeds_app = typer.Typer(help="Store feeds: what a feed would post now, and how each feed is doing.",
                        cls=LeanGroup, no_args_is_help=True, rich_markup_mode=None)

CampaignOpt = Annotated[str | None, typer.Option(help="Judge and render it as this campaign's feed.")]


@feeds_app.command("check")
def check(url: Annotated[str, typer.Argument(help="The feed's URL.")], campaign: CampaignOpt = None,
          config: ConfigOpt = DEFAULT_CONFIG) -> None:
    """Fetch a feed now: which entries the next poll would post, which it skips and why, and the exact posts."""
    from jinja2 import TemplateError

    from drainage.cli.present.feeds import show_cannot_render, show_check, show_sample_heading
    from drainage.feeds.check import check_feed
    from drainage.links import LinkError

    with friendly_errors():
        project = load_project(config)
        engine = open_engine_if_any(project)
        report = run_then_close(check_feed(project, engine, url, campaign, datetime.now(UTC)), project)
        out = stdout()
        show_check(out, report)
        shown = [checked for checked in report.entries if checked.posts]
        if not shown and report.sample is not None:
            show_sample_heading(out)
            shown = [report.sample]
        for checked in shown:
            for planned in checked.posts:
                try:
                    show_planned(project, planned)
                except (TemplateError, LinkError, ValueError, TypeError, ArithmeticError, LookupError) as exc:
                    show_cannot_render(out, planned, exc)


@feeds_app.command("status")
def status(config: ConfigOpt = DEFAULT_CONFIG) -> None:
    """Each campaign's feeds: last poll, ETag, failures and why, next poll, entries seen and waiting."""
    from drainage.cli.present.feeds import show_statuses
    from drainage.feeds.check import feed_statuses

    with friendly_errors():
        project = load_project(config)
        engine = open_engine_if_any(project)
        show_statuses(stdout(), feed_statuses(project, engine), engine is not None)
