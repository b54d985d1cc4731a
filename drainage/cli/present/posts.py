"""Posts on screen: the plan's table, a rendered post in a panel with its length and links, a send's outcomes."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from rich.console import Console
from rich.panel import Panel
from rich.text import Text

from drainage.terminal import Column, fitted_table

if TYPE_CHECKING:
    from drainage.posts import PlannedPost
    from drainage.project import Composed
    from drainage.sending import Outcome

OUTCOME_STYLES = {"sent": "green", "already sent": "yellow", "failed": "red", "paused": "red", "dry run": "cyan",
                  "interrupted": "red", "sending": "yellow", "unknown": "red"}


def show_plan(console: Console, planned: list[PlannedPost], first_lines: list[str], begin: datetime,
              days: float) -> None:
    """One row per planned post: local time (in its market's zone), campaign, market (when a post has one),
    channel, item, variant and the first line of its text."""
    shows_market = any(post.market for post in planned)
    rows = [[post.slot.astimezone(post.tz).strftime("%a %Y-%m-%d %H:%M %Z"), post.campaign.id,
             *([post.market_id or "-"] if shows_market else []),
             post.channel, post.item.key, post.variant_name or "-", first]
            for post, first in zip(planned, first_lines, strict=True)]
    columns = [Column("local time", whole=True), *map(Column, ("campaign", *(["market"] if shows_market else []),
                                                               "channel", "item", "variant", "first line"))]
    console.print(fitted_table(console.width, columns, rows, title=f"{len(planned)} posts planned from "
                               f"{begin:%Y-%m-%d %H:%M} UTC for {days:g} days"))


def show_post(console: Console, composed: Composed, counting: str) -> None:
    """A header (campaign -> channel | local time | item...), the exact text in a panel, its length against the
    channel's limit (counted in `counting`), and each tracked link with its target."""
    planned = composed.planned
    local = planned.slot.astimezone(planned.tz)
    limit = f"/{composed.limit}" if composed.limit else " (no limit)"
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
    console.print(Text(header, style="bold"), soft_wrap=True)
    console.print(Panel(body, border_style="red" if composed.too_long else "cyan"))
    console.print(Text(f"  template {planned.template} | length {composed.length}{limit}{flags}"), soft_wrap=True)
    for link in composed.links:
        console.print(Text(f"  {link.url} -> {link.target}"), soft_wrap=True)
    if composed.post.image_url:
        console.print(Text(f"  image: {composed.post.image_url}"))


def show_outcome(console: Console, outcome: Outcome) -> None:
    """'sent         campaign -> channel | local slot | item key | variant | detail', coloured by status."""
    planned = outcome.composed.planned
    tz = planned.tz
    line = Text(f"{outcome.status:<12}", style=OUTCOME_STYLES.get(outcome.status, ""))
    line.append(f" {planned.campaign.id} -> {planned.channel} | {planned.slot.astimezone(tz):%Y-%m-%d %H:%M %Z} | "
                f"item {planned.item.key}" + (f" | market {planned.market_id}" if planned.market else "")
                + (f" | variant {planned.variant_name}" if planned.variant else "")
                + (f" | {outcome.detail}" if outcome.detail else ""))
    console.print(line, soft_wrap=True)
