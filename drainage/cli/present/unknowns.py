"""`drainage status --unknown` output: every outcome nobody knows, as CSV (a header, one row each) or as text
with how to resolve each."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import TYPE_CHECKING, TextIO

from rich.console import Console
from rich.text import Text

if TYPE_CHECKING:
    from drainage.unknowns import Unknown


def write_unknown_csv(stream: TextIO, columns: list[str], rows: Iterable[Unknown]) -> None:
    """A header of `columns`, then one row per unknown post or recipient."""
    writer = csv.writer(stream)
    writer.writerow(columns)
    for row in rows:
        writer.writerow(row.row())


def show_unknown(console: Console, rows: Iterable[Unknown]) -> None:
    """Two lines per unknown outcome (what it is; how to resolve it), then how many there are."""
    count = 0
    for u in rows:
        count += 1
        who = f" {u.recipient}" if u.kind == "recipient" else ""
        console.print(Text(f"{u.kind:<9} {u.key}{who}" + (f" {u.message_id}" if u.message_id else "")),
                      soft_wrap=True)
        console.print(Text(f"    {u.resolve}", style="yellow"), soft_wrap=True)
    console.print(Text(f"{count} unknown outcome(s)" + ("" if count else ": nothing to resolve")), soft_wrap=True)
