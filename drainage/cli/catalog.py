"""Commands about the catalog as written: `validate`, `plan`, `preview` and `schema`. Nothing is sent."""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from drainage.cli.console import say, stdout
from drainage.cli.failures import friendly_errors
from drainage.cli.opening import load_project, open_engine_if_any, parse_when
from drainage.cli.options import DEFAULT_CONFIG, ConfigOpt, MarketOpt
from drainage.errors import Problem, ProblemsFound

if TYPE_CHECKING:  # imported where used: `drainage --help` must not pay for SQLAlchemy, pydantic models, Jinja2, rich
    from drainage.posts import PlannedPost, PriorCount
    from drainage.project import Project


def validate(paths: Annotated[list[Path] | None, typer.Argument(help="Campaign files (default: all).")] = None,
             config: ConfigOpt = DEFAULT_CONFIG) -> None:
    """Check config, campaigns, templates, links and post lengths; report every problem with file:line."""
    with friendly_errors():
        from drainage.feeds.hosts import off_host_feeds
        from drainage.validation import check_rendering

        project = load_project(config, paths or None)
        for warning in off_host_feeds(project):
            say(f"warning: {warning}", "yellow")
        problems = check_rendering(project)
        if problems:
            raise ProblemsFound(problems)
        count = len(project.campaigns)
        say(f"ok: {project.config.shown_as} and {count} campaign{'s' if count != 1 else ''} are valid; every "
            "template renders within its channel's limit", "green")


def plan(days: Annotated[float, typer.Option(help="How many days ahead.")] = 7,
         campaign: Annotated[str | None, typer.Option(help="Only this campaign.")] = None,
         start: Annotated[str | None, typer.Option("--from", help="Start (default: now).")] = None,
         market: MarketOpt = None,
         config: ConfigOpt = DEFAULT_CONFIG) -> None:
    """Table of upcoming posts: local time, campaign, channel, item, variant and first line."""
    from drainage.cli.present.posts import show_plan
    from drainage.posts import plan_campaign

    with friendly_errors():
        project = load_project(config)
        begin = parse_when(start)
        end = begin + timedelta(days=days)
        prior = _prior(project)
        campaigns = [project.campaign(campaign)] if campaign else [
            c for c in project.campaigns.values() if c.model.status == "active"]
        wanted = market_named(project, market)
        planned = sorted((p for c in campaigns for p in plan_campaign(c, begin, end, prior)
                          if wanted is None or p.market_id == wanted),
                         key=lambda p: (p.slot, p.campaign.id, p.use_index, p.market_id))
        show_plan(stdout(), planned, [_first_line(project, post) for post in planned], begin, days)


def _prior(project: Project) -> PriorCount:
    """How many times each item was posted so far (rotation goes on from there); nothing without a database."""
    from drainage.posts import no_prior

    engine = open_engine_if_any(project)
    if engine is None:
        return no_prior
    from drainage.priors import prior_counter

    return prior_counter(engine)


def _first_line(project: Project, post: PlannedPost) -> str:
    try:
        text = project.compose(post).post.text
    except Exception as exc:  # validate explains it; plan only shows that it is broken
        return f"(cannot render: {exc.__class__.__name__}; run `drainage validate`)"
    return next((line for line in text.splitlines() if line.strip()), "")[:80]


def preview(campaign: Annotated[str, typer.Argument(help="Campaign id or file name.")],
            channel: Annotated[str | None, typer.Option(help="Only this channel.")] = None,
            at: Annotated[str | None, typer.Option(help="Show the first slot at or after this local time.")] = None,
            count: Annotated[int, typer.Option(help="How many slots per channel.")] = 1,
            market: MarketOpt = None,
            config: ConfigOpt = DEFAULT_CONFIG) -> None:
    """The fully rendered posts of the next slot(s): exact text, length against the limit, tracked URLs."""
    from drainage.posts import posts_for_slots

    with friendly_errors():
        project = load_project(config)
        loaded = project.campaign(campaign)
        only = campaign_market(loaded, market_named(project, market))
        begin = parse_when(at, loaded.tz_of(only))
        prior = _prior(project)
        shown = 0
        for index, use in enumerate(loaded.model.channels):
            if channel not in (None, use.channel):
                continue
            for each in (loaded.markets_for(use) if loaded.markets and only is None else (only,)):
                if each is not None and each not in loaded.markets_for(use):
                    continue
                slots = _next_slots(loaded, use, begin, count, each)
                for planned in posts_for_slots(loaded, index, slots, prior, each):
                    show_planned(project, planned)
                    shown += 1
        if not shown:
            hint = "check its schedule, start/end and channels, or pass --at"
            if not loaded.model.channels and loaded.model.feeds:
                hint = f"it only posts new entries of its feeds: try `drainage feeds check {loaded.model.feeds[0].url}`"
            raise ProblemsFound([Problem(loaded.shown_as, 0, 0, f"no upcoming slot for campaign '{loaded.id}'"
                                         + (f" on channel '{channel}'" if channel else ""), hint)])


def market_named(project: Project, name: str | None) -> str | None:
    """--market NAME: a market of config.yaml (ProblemsFound otherwise)."""
    from drainage.sources import did_you_mean

    known = project.config.config.markets
    if name is None or name in known:
        return name
    hint = did_you_mean(name, known) or ("markets: " + ", ".join(sorted(known)) if known
                                         else "config.yaml declares no markets")
    raise ProblemsFound([Problem(project.config.shown_as, 0, 0, f"no market '{name}'", hint)])


def campaign_market(loaded: Any, name: str | None) -> Any:
    """The campaign's market named `name` (None: all of them)."""
    if name is None:
        return None
    found = next((m for m in loaded.markets if m.id == name), None)
    if found is None:
        raise ProblemsFound([Problem(loaded.shown_as, 0, 0, f"campaign '{loaded.id}' does not post in market "
                                                            f"'{name}'", "its markets: " + (", ".join(
                                                                m.id for m in loaded.markets) or "none"))])
    return found


def _next_slots(loaded: Any, use: Any, begin: datetime, count: int, market: Any = None) -> list[datetime]:
    from drainage.posts import slots_for

    for horizon in (1, 8, 32, 367, 3660):
        slots = slots_for(loaded, use, begin, begin + timedelta(days=horizon), market=market)
        if len(slots) >= count:
            return slots[:count]
    return slots[:count]


def show_planned(project: Project, planned: PlannedPost) -> None:
    """Render a planned post as its channel will get it, and show it (`preview`, `send --dry-run`,
    `feeds check`)."""
    from drainage.cli.present.posts import show_post

    composed = project.compose(planned)
    show_post(stdout(), composed, project.channel(planned.channel).limits.counting)


def schema(kind: Annotated[str | None, typer.Argument(help="'config' or 'campaign' (default: both).")] = None,
           output: Annotated[Path | None, typer.Option(help="Write <kind>.schema.json files here.")] = None,
           markdown: Annotated[bool, typer.Option("--markdown", help="Print the key reference.")] = False
           ) -> None:
    """Print (or write) the JSON Schema of config.yaml and campaign files, for editor autocompletion."""
    import json

    from drainage.schemas import campaign_schema, config_schema

    with friendly_errors():
        if markdown:
            from drainage.keydocs import keys_markdown

            sys.stdout.write(keys_markdown() + "\n")
            return
        makers: dict[str, Callable[[], dict[str, Any]]] = {"config": config_schema, "campaign": campaign_schema}
        if kind is not None and kind not in makers:
            raise ProblemsFound([Problem("schema", 0, 0, f"unknown schema '{kind}'",
                                         "expected 'config' or 'campaign'")])
        chosen = [kind] if kind else list(makers)
        if output is None:
            docs = {k: makers[k]() for k in chosen}
            sys.stdout.write(json.dumps(docs[kind] if kind else docs, indent=2, sort_keys=True) + "\n")
            return
        output.mkdir(parents=True, exist_ok=True)
        for k in chosen:
            path = output / f"{k}.schema.json"
            path.write_text(json.dumps(makers[k](), indent=2, sort_keys=True) + "\n", encoding="utf-8")
            say(f"wrote {path}", soft_wrap=False)
