"""The `drainage` command line: validate, plan, preview, send, run, tracker, status, resume, report, prune, feeds,
schema, db."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.panel import Panel
from rich.text import Text

from drainage.cli_options import DEFAULT_CONFIG, ConfigOpt, GlobalConfigOpt, MarketOpt
from drainage.errors import DrainageError, Problem, ProblemsFound, SchemaBehind
from drainage.terminal import Column, fitted_table

if TYPE_CHECKING:  # imported where used: `drainage --help` must not pay for SQLAlchemy, pydantic models, Jinja2
    from sqlalchemy import Engine

    from drainage.posts import PlannedPost
    from drainage.project import Project

app = typer.Typer(help="Off-site traffic drainage: campaigns as code, scheduled posts, tracked links.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False,
                  rich_markup_mode=None)  # plain help: rendering it with rich costs more than the rest of startup
db_app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(db_app, name="db")
feeds_app = typer.Typer(help="Store feeds: what a feed would post now, and how each feed is doing.",
                        no_args_is_help=True, rich_markup_mode=None)
app.add_typer(feeds_app, name="feeds")


def _add_email_commands() -> None:
    from drainage.email.commands import subscribers_app
    from drainage.unknown_commands import resolve

    app.add_typer(subscribers_app, name="subscribers")
    app.command("resolve")(resolve)


_add_email_commands()

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


@app.callback()
def global_options(config: GlobalConfigOpt = None) -> None:
    """Off-site traffic drainage: campaigns as code, scheduled posts, tracked links."""


def load_project(config: Path, only: list[Path] | None = None) -> Project:
    """config.yaml and the campaigns (see `drainage.project.load_project`)."""
    from drainage.project import load_project as load

    return load(config, only)


def report_problems(problems: list[Problem]) -> None:
    """Print problems one per line as file:line:col: message (hint), then a count."""
    for problem in problems:
        out.print(Text(str(problem)), soft_wrap=True)
    files = len({p.file for p in problems})
    noun = "problem" if len(problems) == 1 else "problems"
    out.print(Text(f"{len(problems)} {noun} in {files} file{'s' if files != 1 else ''}", style="bold red"))


@contextmanager
def friendly_errors() -> Iterator[None]:
    """Turn drainage errors into messages and exit codes; never show a traceback to a marketer."""
    try:
        yield
    except ProblemsFound as exc:
        report_problems(exc.problems)
        raise typer.Exit(2) from None
    except SchemaBehind as exc:
        err.print(Text(f"error: {exc}"))
        raise typer.Exit(2) from None
    except DrainageError as exc:
        err.print(Text(f"error: {exc}"))
        raise typer.Exit(1) from None
    except (typer.Exit, typer.Abort, KeyboardInterrupt):
        raise
    except Exception as exc:
        if os.environ.get("DRAINAGE_DEBUG"):
            raise
        if "sqlalchemy" in sys.modules:  # a database that cannot be opened is the config's problem, not a bug
            from drainage.store.db import explain_unreachable

            explained = explain_unreachable(exc)
            if explained:
                err.print(Text(f"error: {explained}"))
                raise typer.Exit(2) from None
        err.print(Text(f"internal error: {exc.__class__.__name__}: {exc}\n"
                       "This is a bug in drainage; run again with DRAINAGE_DEBUG=1 for details and report it."))
        raise typer.Exit(70) from None


def open_engine(project: Project, *, create: bool) -> Engine | None:
    """The project's database; None for a read-only command when an SQLite file does not exist yet."""
    from drainage.store.db import make_engine
    from drainage.store.migrate import ensure_schema

    url = project.config.database_url
    if not create and url.startswith("sqlite:///") and not Path(url[len("sqlite:///"):]).exists():
        return None
    engine = make_engine(url)
    ensure_schema(engine)
    return engine


def parse_when(text: str | None, tz: Any = UTC) -> datetime:
    """'2026-12-01 10:00' (local to `tz` unless it has an offset), or now."""
    if not text:
        return datetime.now(UTC)
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ProblemsFound([Problem("--at", 0, 0, f"'{text}' is not a date and time",
                                     "expected e.g. '2026-12-01 10:00' or '2026-12-01T10:00+01:00'")]) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz)
    return value.astimezone(UTC)


@app.command()
def validate(paths: Annotated[list[Path] | None, typer.Argument(help="Campaign files (default: all).")] = None,
             config: ConfigOpt = DEFAULT_CONFIG) -> None:
    """Check config, campaigns, templates, links and post lengths; report every problem with file:line."""
    with friendly_errors():
        from drainage.project import check_rendering

        project = load_project(config, paths or None)
        from drainage.feeds.check import off_host_feeds

        for warning in off_host_feeds(project):
            out.print(Text(f"warning: {warning}", style="yellow"), soft_wrap=True)
        problems = check_rendering(project)
        if problems:
            raise ProblemsFound(problems)
        count = len(project.campaigns)
        out.print(Text(f"ok: {project.config.shown_as} and {count} campaign{'s' if count != 1 else ''} "
                       "are valid; every template renders within its channel's limit", style="green"), soft_wrap=True)


@app.command()
def plan(days: Annotated[float, typer.Option(help="How many days ahead.")] = 7,
         campaign: Annotated[str | None, typer.Option(help="Only this campaign.")] = None,
         start: Annotated[str | None, typer.Option("--from", help="Start (default: now).")] = None,
         market: MarketOpt = None,
         config: ConfigOpt = DEFAULT_CONFIG) -> None:
    """Table of upcoming posts: local time, campaign, channel, item, variant and first line."""
    with friendly_errors():
        project = load_project(config)
        begin = parse_when(start)
        end = begin + timedelta(days=days)
        engine = open_engine(project, create=False)
        from drainage.journal import prior_counter
        from drainage.posts import no_prior, plan_campaign

        prior = prior_counter(engine) if engine is not None else no_prior
        campaigns = [project.campaign(campaign)] if campaign else [
            c for c in project.campaigns.values() if c.model.status == "active"]
        wanted = _market_named(project, market)  # markets: --market
        planned = sorted((p for c in campaigns for p in plan_campaign(c, begin, end, prior)
                          if wanted is None or p.market_id == wanted),
                         key=lambda p: (p.slot, p.campaign.id, p.use_index, p.market_id))
        shows_market = any(p.market for p in planned)
        rows = [[post.slot.astimezone(post.tz).strftime("%a %Y-%m-%d %H:%M %Z"), post.campaign.id,
                 *([post.market_id or "-"] if shows_market else []),
                 post.channel, post.item.key, post.variant_name or "-", _first_line(project, post)]
                for post in planned]
        columns = [Column("local time", whole=True), *map(Column, ("campaign", *(["market"] if shows_market else []),
                                                                   "channel", "item", "variant", "first line"))]
        out.print(fitted_table(out.width, columns, rows, title=f"{len(planned)} posts planned from "
                               f"{begin:%Y-%m-%d %H:%M} UTC for {days:g} days"))


def _first_line(project: Project, post: PlannedPost) -> str:
    try:
        text = project.compose(post).post.text
    except Exception as exc:  # validate explains it; plan only shows that it is broken
        return f"(cannot render: {exc.__class__.__name__}; run `drainage validate`)"
    return next((line for line in text.splitlines() if line.strip()), "")[:80]


@app.command()
def preview(campaign: Annotated[str, typer.Argument(help="Campaign id or file name.")],
            channel: Annotated[str | None, typer.Option(help="Only this channel.")] = None,
            at: Annotated[str | None, typer.Option(help="Show the first slot at or after this local time.")] = None,
            count: Annotated[int, typer.Option(help="How many slots per channel.")] = 1,
            market: MarketOpt = None,
            config: ConfigOpt = DEFAULT_CONFIG) -> None:
    """The fully rendered posts of the next slot(s): exact text, length against the limit, tracked URLs."""
    with friendly_errors():
        project = load_project(config)
        loaded = project.campaign(campaign)
        only = _campaign_market(loaded, _market_named(project, market))  # markets: --market
        begin = parse_when(at, loaded.tz_of(only))
        engine = open_engine(project, create=False)
        from drainage.journal import prior_counter
        from drainage.posts import no_prior, posts_for_slots

        prior = prior_counter(engine) if engine is not None else no_prior
        shown = 0
        for index, use in enumerate(loaded.model.channels):
            if channel not in (None, use.channel):
                continue
            for each in (loaded.markets_for(use) if loaded.markets and only is None else (only,)):
                if each is not None and each not in loaded.markets_for(use):
                    continue
                for planned in posts_for_slots(loaded, index, _next_slots(loaded, use, begin, count, each), prior,
                                               each):
                    _show_post(project, planned)
                    shown += 1
        if not shown:
            hint = "check its schedule, start/end and channels, or pass --at"
            if not loaded.model.channels and loaded.model.feeds:
                hint = f"it only posts new entries of its feeds: try `drainage feeds check {loaded.model.feeds[0].url}`"
            raise ProblemsFound([Problem(loaded.shown_as, 0, 0, f"no upcoming slot for campaign '{loaded.id}'"
                                         + (f" on channel '{channel}'" if channel else ""), hint)])


def _market_named(project: Project, name: str | None) -> str | None:
    """--market NAME: a market of config.yaml (ProblemsFound otherwise)."""
    from drainage.sources import did_you_mean

    known = project.config.config.markets
    if name is None or name in known:
        return name
    hint = did_you_mean(name, known) or ("markets: " + ", ".join(sorted(known)) if known
                                         else "config.yaml declares no markets")
    raise ProblemsFound([Problem(project.config.shown_as, 0, 0, f"no market '{name}'", hint)])


def _campaign_market(loaded: Any, name: str | None) -> Any:
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


def _show_post(project: Project, planned: PlannedPost) -> None:
    composed = project.compose(planned)
    local = planned.slot.astimezone(planned.tz)
    limit = f"/{composed.limit}" if composed.limit else " (no limit)"
    counting = project.channel(planned.channel).limits.counting
    limit += "" if counting == "chars" else f" ({counting})"
    flags = " TOO LONG" if composed.too_long else (" (truncated to fit)" if composed.truncated else "")
    what = f"entry '{planned.item.name}'" if planned.feed else f"item {planned.item.key}"
    header = (f"{planned.campaign.id} -> {planned.channel} | {local:%a %Y-%m-%d %H:%M %Z} | {what}"
              + (f" | market {planned.market_id}" if planned.market else "")
              + (f" | variant {planned.variant_name}" if planned.variant else "")
              + (f" | theme {planned.theme.name}" if planned.theme else ""))
    body = Text()
    if composed.post.subject:
        body.append(f"Subject: {composed.post.subject}\n\n", style="bold")
    body.append(composed.post.text)
    body.overflow = "fold"
    out.print(Text(header, style="bold"), soft_wrap=True)
    out.print(Panel(body, border_style="red" if composed.too_long else "cyan"))
    out.print(Text(f"  template {planned.template} | length {composed.length}{limit}{flags}"), soft_wrap=True)
    for link in composed.links:
        out.print(Text(f"  {link.url} -> {link.target}"), soft_wrap=True)
    if composed.post.image_url:
        out.print(Text(f"  image: {composed.post.image_url}"))


@app.command()
def send(campaign: Annotated[str, typer.Argument(help="Campaign id or file name.")],
         channel: Annotated[str | None, typer.Option(help="Only this channel.")] = None,
         at: Annotated[str | None, typer.Option(help="Send the slot due at this local time (default: now).")] = None,
         dry_run: Annotated[bool, typer.Option("--dry-run", help="Render and show, send nothing.")] = False,
         force: Annotated[bool, typer.Option("--force", help="Send even if this slot was sent (email: to those "
                                                             "not reached yet).")] = False,
         include_sent: Annotated[bool, typer.Option("--include-sent", help="With --force on email: mail again "
                                                                           "those who got this slot.")] = False,
         config: ConfigOpt = DEFAULT_CONFIG) -> None:
    """Render each channel's current slot and send it now; a slot already sent is refused unless --force."""
    from drainage.sending import send_campaign

    if include_sent and not force:
        err.print("--include-sent goes with --force (it says whom a forced email send mails again)")
        raise typer.Exit(2)
    with friendly_errors():
        project = load_project(config)
        loaded = project.campaign(campaign)
        engine = open_engine(project, create=True)
        assert engine is not None  # create=True always opens
        outcomes = _run(send_campaign(project, engine, loaded, parse_when(at, loaded.tz), channel=channel,
                                      dry_run=dry_run, force=force, include_sent=include_sent,
                                      say=lambda line: out.print(line, soft_wrap=True)), project)
        styles = {"sent": "green", "already sent": "yellow", "failed": "red", "paused": "red", "dry run": "cyan",
                  "interrupted": "red", "sending": "yellow", "unknown": "red"}
        for o in outcomes:
            p = o.composed.planned
            line = Text(f"{o.status:<12}", style=styles.get(o.status, ""))
            line.append(f" {loaded.id} -> {p.channel} | {p.slot.astimezone(p.tz):%Y-%m-%d %H:%M %Z} | "
                        f"item {p.item.key}" + (f" | market {p.market_id}" if p.market else "")
                        + (f" | variant {p.variant_name}" if p.variant else "")
                        + (f" | {o.detail}" if o.detail else ""))
            out.print(line, soft_wrap=True)
        if dry_run:
            for o in outcomes:
                _show_post(project, o.composed.planned)
        if any(o.status in ("failed", "paused", "interrupted", "unknown") for o in outcomes):
            raise typer.Exit(1)


def _run(coro: Any, project: Project) -> Any:
    import asyncio

    async def main() -> Any:
        try:
            return await coro
        finally:
            await project.close()

    return asyncio.run(main())


@app.command()
def run(once: Annotated[bool, typer.Option("--once", help="One pass over what is due, then exit.")] = False,
        tracker: Annotated[bool, typer.Option("--tracker/--no-tracker",
                                              help="Serve the click tracker beside the scheduler "
                                                   "(default: tracker.enabled).")] = True,
        log_format: Annotated[str | None, typer.Option(help="plain or json (default: daemon.log_format).")] = None,
        config: ConfigOpt = DEFAULT_CONFIG) -> None:
    """Run the daemon: send every due post once, with retries, pacing, catch-up, reload and clean shutdown."""
    from drainage import logs
    from drainage.daemon import run_daemon, secrets_of, validated_project

    with friendly_errors():
        project = validated_project(config)
        logs.setup(log_format or project.config.config.daemon.log_format, secrets_of(project))
        engine = open_engine(project, create=True)
        assert engine is not None  # create=True always opens
        with_tracker = tracker and project.config.config.tracker.enabled and not once
        run_daemon(config, project, engine, once=once, tracker=with_tracker)


@app.command("tracker")
def tracker_command(host: Annotated[str | None, typer.Option(help="Bind address (default: tracker.host).")] = None,
                    port: Annotated[int | None, typer.Option(help="Port (default: tracker.port).")] = None,
                    log_format: Annotated[str | None, typer.Option(help="plain or json.")] = None,
                    config: ConfigOpt = DEFAULT_CONFIG) -> None:
    """Serve the click tracker alone: /c/{code} redirects, order webhooks, /healthz, /metrics."""
    from drainage import logs
    from drainage.config import load_config
    from drainage.sources import display_path
    from drainage.store.db import make_engine
    from drainage.store.migrate import ensure_schema
    from drainage.tracker.server import serve

    with friendly_errors():
        loaded, problems = load_config(config, display_path(config))
        if loaded is None:
            raise ProblemsFound(problems)
        logs.setup(log_format or loaded.config.daemon.log_format, loaded.secrets())
        engine = make_engine(loaded.database_url)
        ensure_schema(engine)
        serve(loaded, engine, host, port)


@app.command()
def status(config: ConfigOpt = DEFAULT_CONFIG,
           days: Annotated[float, typer.Option(help="Look back this many days for counts and failures.")] = 7,
           unknown: Annotated[bool, typer.Option("--unknown", help="List every post and email recipient whose "
                                                               "outcome is unknown, with how to resolve it.")] = False,
           fmt: Annotated[str, typer.Option("--format", help="With --unknown: text or csv.")] = "text") -> None:
    """Next runs per campaign and channel, recent deliveries, failures with reasons, paused channels."""
    from drainage.status import collect

    with friendly_errors():
        project = load_project(config)
        engine = open_engine(project, create=False)
        if unknown:
            from drainage.unknown_commands import show_unknown

            show_unknown(project, engine, fmt)
            return
        now = datetime.now(UTC)
        st = collect(project, engine, now, since=timedelta(days=days))
        if st.paused:
            for state in st.paused:
                out.print(Text(f"PAUSED {state.channel}: {state.reason} (since {state.paused_at:%Y-%m-%d %H:%M} "
                               f"UTC); fix it, then run `drainage resume {state.channel}`", style="bold red"),
                          soft_wrap=True)
        columns = [Column("campaign"), Column("channel"), Column("next slot (local)", whole=True)]
        out.print(fitted_table(out.width, columns, [[run_.campaign, run_.channel, run_.local] for run_ in st.next_runs],
                               title="next runs"))
        if st.counts:
            states = sorted({k for c in st.counts.values() for k in c})
            columns = [Column("channel"), *(Column(state, whole=True, justify="right") for state in states)]
            rows = [[channel, *(str(by_state.get(state, 0)) for state in states)]
                    for channel, by_state in sorted(st.counts.items())]
            out.print(fitted_table(out.width, columns, rows, title=f"deliveries of the last {days:g} days by channel"))
        if st.recent:
            out.print(Text("recent deliveries:", style="bold"))
            for row in st.recent:
                out.print(Text(f"  {row.status:<9} {row.key}" + (f" -> {row.remote_id}" if row.remote_id else "")),
                          soft_wrap=True)
        if st.problems:
            out.print(Text("failed, missed, unknown and retrying:", style="bold"))
            for row in st.problems:
                out.print(Text(f"  {row.status:<9} {row.key}: {row.error or ''}"), soft_wrap=True)
        _show_email(st.email)
        if engine is None:
            out.print(Text("no database yet: nothing has been sent"))


def _show_email(reports: list[Any]) -> None:
    from drainage.email.ledger import summary

    if not reports:
        return
    out.print(Text("email fan-outs:", style="bold"))
    for report in reports:
        f = report.fanout
        out.print(Text(f"  {f.status:<8} {f.campaign} -> {f.channel} ({f.total} recipients, lists {f.lists}): "
                       f"{summary(report.found)}"), soft_wrap=True)
        if f.pause_reason:
            out.print(Text(f"    PAUSED {f.campaign}: {f.pause_reason}", style="bold red"), soft_wrap=True)
        unknown = report.found.get("unknown", 0)
        if unknown:
            more = f" and {unknown - len(report.unknown)} more" if unknown > len(report.unknown) else ""
            out.print(Text(f"    {unknown} recipient(s) with an unknown outcome (in flight when the sender stopped; "
                           f"not resent): {', '.join(report.unknown)}{more}; `drainage status --unknown` lists "
                           "them all with how to resolve each", style="yellow"), soft_wrap=True)


@app.command()
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

            engine = open_engine(project, create=True)
            assert engine is not None
            keys = resume_campaign(engine, channel)
            out.print(Text(f"resumed {len(keys)} paused email fan-out(s) of campaign {channel}"
                           + ("; the daemon carries on with them" if keys else " (none was paused)")), soft_wrap=True)
            return
        if channel not in project.config.channels:
            from drainage.sources import did_you_mean

            raise ProblemsFound([Problem(project.config.shown_as, 0, 0, f"no channel '{channel}'",
                                         did_you_mean(channel, project.config.channels))])
        engine = open_engine(project, create=True)
        assert engine is not None
        released, missed = resume_channel(project, engine, channel, datetime.now(UTC))
        out.print(Text(f"resumed {channel}: {released} post(s) will be sent by the daemon, {missed} recorded as "
                       "missed (older than their misfire_grace)"), soft_wrap=True)


CampaignOpt = Annotated[str | None, typer.Option(help="Judge and render it as this campaign's feed.")]


@feeds_app.command("check")
def feeds_check(url: Annotated[str, typer.Argument(help="The feed's URL.")], campaign: CampaignOpt = None,
                config: ConfigOpt = DEFAULT_CONFIG) -> None:
    """Fetch a feed now: which entries the next poll would post, which it skips and why, and the exact posts."""
    from jinja2 import TemplateError

    from drainage.feeds.check import check_feed
    from drainage.links import LinkError

    with friendly_errors():
        project = load_project(config)
        engine = open_engine(project, create=False)
        report = _run(check_feed(project, engine, url, campaign, datetime.now(UTC)), project)
        validators = [f"{name} {value}" for name, value in (("ETag", report.etag),
                                                             ("Last-Modified", report.last_modified)) if value]
        out.print(Text(f"{report.title or '(untitled feed)'}: {len(report.entries)} entries from "
                       f"{report.fetched_from} ("
                       + (", ".join(validators) or "no ETag or Last-Modified: each poll downloads it all") + ")",
                       style="bold"), soft_wrap=True)
        if report.campaign is None or report.feed is None:
            out.print(Text("No campaign polls this feed: add it under 'feeds:' in a campaign (or pass --campaign) "
                           "to see what would be posted."), soft_wrap=True)
        else:
            feed = report.feed
            line = f"campaign {report.campaign.id}: polled every {feed.every}, at most {feed.cap} per channel and slot"
            if report.borrowed:
                line += f" (it does not poll this URL: judged as if it were its feed {feed.url})"
            if report.first:
                line += (f"; first poll: the newest {feed.backfill} entries are posted, the others only recorded"
                         if feed.backfill else "; first poll: entries are only recorded, none posted (backfill: 0)")
            out.print(Text(line), soft_wrap=True)
        rows = []
        for checked in report.entries:
            entry, verdict = checked.verdict.entry, checked.verdict
            price = f"{entry.price:g} {entry.currency or ''}".strip() if entry.price is not None else "-"
            rows.append([entry.title or entry.identity, _utc(entry.published), price,
                         Text(_when(checked, report.feed.cap if report.feed else 0) + verdict.reason,
                              style="green" if verdict.posts else "red" if verdict.action == "skip" else "")])
        columns = [Column("entry"), Column("published", whole=True), Column("price", whole=True),
                   Column("what the next poll does")]
        out.print(fitted_table(out.width, columns, rows, title="entries, in the feed's order"))
        shown = [c for c in report.entries if c.posts]
        if not shown and report.sample is not None:
            out.print(Text("Nothing would be posted now; this is how the newest entry that passes the filters "
                           "would look:", style="bold"), soft_wrap=True)
            shown = [report.sample]
        for checked in shown:
            for planned in checked.posts:
                try:
                    _show_post(project, planned)
                except (TemplateError, LinkError, ValueError, TypeError, ArithmeticError, LookupError) as exc:
                    out.print(Text(f"{planned.campaign.id} -> {planned.channel} | entry '{planned.item.name}': cannot "
                                   f"render: {exc} (the daemon would record this post as failed)", style="red"),
                              soft_wrap=True)


def _when(checked: Any, cap: int) -> str:
    """'POST at <slot>: ' for an entry going at the next slot, 'WAITS for <slot> (cap N per slot): ' beyond it."""
    if not checked.verdict.posts:
        return ""
    pairs = list(zip(checked.posts, checked.waits, strict=True))
    alike = len({(post.slot, waits) for post, waits in pairs}) == 1
    parts = []
    for post, waits in pairs:
        text = f"WAITS for {_utc(post.slot)} (cap {cap} per slot)" if waits else f"POST at {_utc(post.slot)}"
        parts.append(text if alike else f"{text} on {post.channel}")
    return "; ".join(dict.fromkeys(parts)) + ": "


def _utc(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC" if moment else "-"


@feeds_app.command("status")
def feeds_status(config: ConfigOpt = DEFAULT_CONFIG) -> None:
    """Each campaign's feeds: last poll, ETag, failures and why, next poll, entries seen and waiting."""
    from drainage.feeds.check import feed_statuses

    with friendly_errors():
        project = load_project(config)
        engine = open_engine(project, create=False)
        rows = feed_statuses(project, engine)
        if not rows:
            out.print(Text("no campaign has feeds"))
            return
        for row in rows:
            state = row.state
            out.print(Text(f"{row.campaign}  {row.url}", style="bold"), soft_wrap=True)
            if not row.active:
                next_poll = "not polled while the campaign is not active"
            else:
                next_poll = "next poll " + (_utc(state.next_poll_at) if state and state.next_poll_at else
                                            "at the daemon's next sweep")
            if state is None or state.polled_at is None:
                out.print(Text(f"  never polled; {next_poll}"), soft_wrap=True)
                continue
            out.print(Text(f"  last poll {_utc(state.polled_at)}, last good {_utc(state.ok_at)}; {next_poll}"),
                      soft_wrap=True)
            validators = [f"{name} {value}" for name, value in (("ETag", state.etag),
                                                                 ("Last-Modified", state.last_modified)) if value]
            out.print(Text(f"  {', '.join(validators) or 'no ETag or Last-Modified'}; {state.entries} entries in the "
                           f"last document, {row.seen} seen in all, {row.waiting} waiting for a slot"),
                      soft_wrap=True)
            if state.error:
                out.print(Text(f"  FAILING: {state.error} ({state.errors} failed poll(s) in a row; the last good "
                               "state is kept)", style="red"), soft_wrap=True)
            if row.skipped:
                out.print(Text(f"  {row.skipped} entr{'y' if row.skipped == 1 else 'ies'} skipped, never posted "
                               "(newest first):", style="yellow"), soft_wrap=True)
                for title, reason in row.latest_skipped:
                    out.print(Text(f"    {title}: {reason}"), soft_wrap=True)
        if engine is None:
            out.print(Text("no database yet: no feed has been polled"))


@app.command()
def schema(kind: Annotated[str | None, typer.Argument(help="'config' or 'campaign' (default: both).")] = None,
           output: Annotated[Path | None, typer.Option(help="Write <kind>.schema.json files here.")] = None,
           markdown: Annotated[bool, typer.Option("--markdown", help="Print the key reference.")] = False
           ) -> None:
    """Print (or write) the JSON Schema of config.yaml and campaign files, for editor autocompletion."""
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
            out.print(Text(f"wrote {path}"))


def _config_only(config: Path, *keys: str) -> Any:
    """config.yaml alone, and of it only `keys` (reports and pruning need no campaign to be valid, and no secret
    of a channel or the tracker)."""
    from drainage.config import load_config
    from drainage.sources import display_path

    loaded, problems = load_config(config, display_path(config), only=keys)
    if loaded is None:
        raise ProblemsFound(problems)
    return loaded


def _existing_engine(loaded: Any) -> Engine:
    from drainage.store.db import make_engine
    from drainage.store.migrate import ensure_schema

    url = loaded.database_url
    if url.startswith("sqlite:///") and not Path(url[len("sqlite:///"):]).exists():
        raise DrainageError(f"no database at {url[len('sqlite:///'):]} yet: nothing has been sent or clicked "
                            "(check database.url in config.yaml)")
    engine = make_engine(url)
    ensure_schema(engine)
    return engine


REPORT_FORMATS = ("table", "csv", "json", "html")


@app.command()
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
    from drainage.reports.query import build_report
    from drainage.reports.request import BadRequest, parse_request

    with friendly_errors():
        chosen = fmt or (output.suffix.lstrip(".").lower() if output and output.suffix.lstrip(".").lower()
                         in REPORT_FORMATS[1:] else "table")
        try:
            if chosen not in REPORT_FORMATS:
                raise BadRequest(f"--format must be one of {', '.join(REPORT_FORMATS)}, got '{chosen}'")
            request = parse_request(since=since, start=start, end=end, campaigns=campaign or [],
                                    channels=channel or [], by=by, top=top, markets=market or [])
        except BadRequest as exc:
            err.print(Text(f"error: {exc}"))
            raise typer.Exit(2) from None
        engine = _existing_engine(_config_only(config, "database"))
        with err.status("reading rollups, journal and orders...", spinner="dots"):
            built = build_report(engine, request)
        _write_report(built, chosen, output)


def _write_report(built: Any, fmt: str, output: Path | None) -> None:
    if fmt == "table":
        from drainage.reports.render_table import render_table

        if output is None:
            render_table(built, out)
            return
        with output.open("w", encoding="utf-8") as handle:
            render_table(built, Console(file=handle, width=200, no_color=True, highlight=False))
    else:
        from drainage.reports.render_csv_json import to_csv, to_json
        from drainage.reports.render_html import to_html

        text = {"csv": to_csv, "json": to_json, "html": to_html}[fmt](built)
        if output is None:
            sys.stdout.write(text)
            return
        output.write_text(text, encoding="utf-8", newline="" if fmt == "csv" else None)
    err.print(Text(f"wrote {output}"))


@app.command()
def prune(older_than: Annotated[str | None, typer.Option(help="Delete raw clicks older than this, e.g. 90d "
                                                               "(default: tracker.keep_raw_clicks).")] = None,
          config: ConfigOpt = DEFAULT_CONFIG) -> None:
    """Delete raw clicks (and daily visitor hashes) past the retention; rollups and reports stay the same."""
    from drainage.schedule import parse_duration
    from drainage.store.retention import MIN_KEEP, prune_raw_clicks

    with friendly_errors():
        loaded = _config_only(config, "database", "tracker.keep_raw_clicks")
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
        engine = _existing_engine(loaded)
        with err.status("deleting old raw clicks...", spinner="dots"):
            pruned = prune_raw_clicks(engine, keep)
        out.print(Text(f"deleted {pruned.clicks:,} raw clicks and {pruned.visitor_days:,} daily visitor hashes from "
                       f"before {pruned.before:%Y-%m-%d %H:%M} UTC; rollups and reports are unchanged"),
                  soft_wrap=True)


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
               config: ConfigOpt = DEFAULT_CONFIG) -> None:
    """Create or migrate the database schema to the newest revision."""
    from drainage.store.db import make_engine
    from drainage.store.migrate import current_revision, upgrade

    with friendly_errors():
        engine = make_engine(_config_only(config, "database").database_url)
        before = current_revision(engine)
        upgrade(engine, revision)
        after = current_revision(engine)
        out.print(Text(f"database at revision {after}" + (f" (was {before})" if before != after else
                                                           " (already up to date)")))


@db_app.command("current")
def db_current(config: ConfigOpt = DEFAULT_CONFIG) -> None:
    """Show the database's schema revision and the newest one."""
    from drainage.store.db import make_engine
    from drainage.store.migrate import current_revision, head_revision

    with friendly_errors():
        engine = make_engine(_config_only(config, "database").database_url)
        out.print(Text(f"current: {current_revision(engine) or 'none'}, newest: {head_revision(engine)}"))


