"""Feeds on screen: what `feeds check` found in a feed (and what the next poll does with each entry), and each
feed's health for `feeds status`."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from rich.console import Console
from rich.text import Text

from drainage.terminal import Column, fitted_table

if TYPE_CHECKING:
    from drainage.feeds.check import Checked, CheckReport, FeedStatus
    from drainage.posts import PlannedPost


def show_check(console: Console, report: CheckReport) -> None:
    """The feed's title and validators, the campaign judging it, and a table of its entries with the verdicts."""
    console.print(Text(f"{report.title or '(untitled feed)'}: {len(report.entries)} entries from "
                       f"{report.fetched_from} ("
                       + (_validators(report.etag, report.last_modified)
                          or "no ETag or Last-Modified: each poll downloads it all") + ")",
                       style="bold"), soft_wrap=True)
    console.print(Text(_campaign_line(report)), soft_wrap=True)
    cap = report.feed.cap if report.feed else 0
    rows = [[checked.verdict.entry.title or checked.verdict.entry.identity, utc(checked.verdict.entry.published),
             _price(checked), _verdict(checked, cap)] for checked in report.entries]
    columns = [Column("entry"), Column("published", whole=True), Column("price", whole=True),
               Column("what the next poll does")]
    console.print(fitted_table(console.width, columns, rows, title="entries, in the feed's order"))


def show_sample_heading(console: Console) -> None:
    """Said before the sample post when no entry would be posted now."""
    console.print(Text("Nothing would be posted now; this is how the newest entry that passes the filters would "
                       "look:", style="bold"), soft_wrap=True)


def show_cannot_render(console: Console, planned: PlannedPost, exc: Exception) -> None:
    """One red line for a post of an entry that does not render."""
    console.print(Text(f"{planned.campaign.id} -> {planned.channel} | entry '{planned.item.name}': cannot render: "
                       f"{exc} (the daemon would record this post as failed)", style="red"), soft_wrap=True)


def _campaign_line(report: CheckReport) -> str:
    if report.campaign is None or report.feed is None:
        return ("No campaign polls this feed: add it under 'feeds:' in a campaign (or pass --campaign) to see what "
                "would be posted.")
    feed = report.feed
    line = f"campaign {report.campaign.id}: polled every {feed.every}, at most {feed.cap} per channel and slot"
    if report.borrowed:
        line += f" (it does not poll this URL: judged as if it were its feed {feed.url})"
    if report.first:
        line += (f"; first poll: the newest {feed.backfill} entries are posted, the others only recorded"
                 if feed.backfill else "; first poll: entries are only recorded, none posted (backfill: 0)")
    return line


def _price(checked: Checked) -> str:
    entry = checked.verdict.entry
    return f"{entry.price:g} {entry.currency or ''}".strip() if entry.price is not None else "-"


def _verdict(checked: Checked, cap: int) -> Text:
    verdict = checked.verdict
    style = "green" if verdict.posts else "red" if verdict.action == "skip" else ""
    return Text(_when(checked, cap) + verdict.reason, style=style)


def _when(checked: Checked, cap: int) -> str:
    """'POST at <slot>: ' for an entry going at the next slot, 'WAITS for <slot> (cap N per slot): ' beyond it."""
    if not checked.verdict.posts:
        return ""
    pairs = list(zip(checked.posts, checked.waits, strict=True))
    alike = len({(post.slot, waits) for post, waits in pairs}) == 1
    parts = []
    for post, waits in pairs:
        text = f"WAITS for {utc(post.slot)} (cap {cap} per slot)" if waits else f"POST at {utc(post.slot)}"
        parts.append(text if alike else f"{text} on {post.channel}")
    return "; ".join(dict.fromkeys(parts)) + ": "


def _validators(etag: str | None, last_modified: str | None) -> str:
    return ", ".join(f"{name} {value}" for name, value in (("ETag", etag), ("Last-Modified", last_modified))
                     if value)


def utc(moment: datetime | None) -> str:
    """'2026-12-01 10:00 UTC', or '-'."""
    return f"{moment:%Y-%m-%d %H:%M} UTC" if moment else "-"


def show_statuses(console: Console, rows: list[FeedStatus], has_database: bool) -> None:
    """Each campaign's feed: last poll, validators, counts, failures and the latest skipped entries."""
    if not rows:
        console.print(Text("no campaign has feeds"))
        return
    for row in rows:
        console.print(Text(f"{row.campaign}  {row.url}", style="bold"), soft_wrap=True)
        for line, style in _status_lines(row):
            console.print(Text(line, style=style), soft_wrap=True)
    if not has_database:
        console.print(Text("no database yet: no feed has been polled"))


def _status_lines(row: FeedStatus) -> list[tuple[str, str]]:
    state = row.state
    if not row.active:
        next_poll = "not polled while the campaign is not active"
    else:
        next_poll = "next poll " + (utc(state.next_poll_at) if state and state.next_poll_at else
                                    "at the daemon's next sweep")
    if state is None or state.polled_at is None:
        return [(f"  never polled; {next_poll}", "")]
    lines = [(f"  last poll {utc(state.polled_at)}, last good {utc(state.ok_at)}; {next_poll}", ""),
             (f"  {_validators(state.etag, state.last_modified) or 'no ETag or Last-Modified'}; {state.entries} "
              f"entries in the last document, {row.seen} seen in all, {row.waiting} waiting for a slot", "")]
    if state.error:
        lines.append((f"  FAILING: {state.error} ({state.errors} failed poll(s) in a row; the last good state is "
                      "kept)", "red"))
    if row.skipped:
        lines.append((f"  {row.skipped} entr{'y' if row.skipped == 1 else 'ies'} skipped, never posted (newest "
                      "first):", "yellow"))
        lines.extend((f"    {title}: {reason}", "") for title, reason in row.latest_skipped)
    return lines
