"""`drainage status` on screen: paused channels, next runs, delivery counts, recent and failed deliveries, and
the email fan-outs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console
from rich.text import Text

from drainage.terminal import Column, fitted_table

if TYPE_CHECKING:
    from drainage.email.ledger import FanoutReport
    from drainage.status import Status


def show_status(console: Console, st: Status, days: float) -> None:
    """Everything `collect` found, each part only when there is something to show (next runs always)."""
    for state in st.paused:
        console.print(Text(f"PAUSED {state.channel}: {state.reason} (since {state.paused_at:%Y-%m-%d %H:%M} "
                           f"UTC); fix it, then run `drainage resume {state.channel}`", style="bold red"),
                      soft_wrap=True)
    columns = [Column("campaign"), Column("channel"), Column("next slot (local)", whole=True)]
    rows = [[run.campaign, run.channel, run.local] for run in st.next_runs]
    if any(run.market for run in st.next_runs):  # the market's slot, in the market's time zone
        columns.insert(2, Column("market"))
        rows = [[run.campaign, run.channel, run.market or "-", run.local] for run in st.next_runs]
    console.print(fitted_table(console.width, columns, rows, title="next runs"))
    if st.counts:
        states = sorted({k for c in st.counts.values() for k in c})
        columns = [Column("channel"), *(Column(state, whole=True, justify="right") for state in states)]
        rows = [[channel, *(str(by_state.get(state, 0)) for state in states)]
                for channel, by_state in sorted(st.counts.items())]
        console.print(fitted_table(console.width, columns, rows, title=f"deliveries of the last {days:g} days by "
                                   "channel"))
    if st.recent:
        console.print(Text("recent deliveries:", style="bold"))
        for row in st.recent:
            console.print(Text(f"  {row.status:<9} {row.key}" + (f" -> {row.remote_id}" if row.remote_id else "")),
                          soft_wrap=True)
    if st.problems:
        console.print(Text("failed, missed, unknown and retrying:", style="bold"))
        for row in st.problems:
            console.print(Text(f"  {row.status:<9} {row.key}: {row.error or ''}"), soft_wrap=True)
    show_fanouts(console, st.email)


def show_fanouts(console: Console, reports: list[FanoutReport]) -> None:
    """Each recent email fan-out: its state, recipients by outcome, its pause and its unknown recipients."""
    from drainage.email.ledger import summary

    if not reports:
        return
    console.print(Text("email fan-outs:", style="bold"))
    for report in reports:
        f = report.fanout
        console.print(Text(f"  {f.status:<8} {f.campaign} -> {f.channel} ({f.total} recipients, lists {f.lists}): "
                           f"{summary(report.found)}"), soft_wrap=True)
        if f.pause_reason:
            console.print(Text(f"    PAUSED {f.campaign}: {f.pause_reason}", style="bold red"), soft_wrap=True)
        unknown = report.found.get("unknown", 0)
        if unknown:
            more = f" and {unknown - len(report.unknown)} more" if unknown > len(report.unknown) else ""
            console.print(Text(f"    {unknown} recipient(s) with an unknown outcome (in flight when the sender "
                               f"stopped; not resent): {', '.join(report.unknown)}{more}; `drainage status "
                               "--unknown` lists them all with how to resolve each", style="yellow"), soft_wrap=True)
