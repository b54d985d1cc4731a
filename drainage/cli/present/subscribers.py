"""Email lists on screen: members per list, and the suppression list by reason."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from drainage.email.subscribers import ListCount


def show_lists(console: Console, lists: Iterable[ListCount], suppressed: Mapping[str, int]) -> None:
    """A table of lists (members, mailable, pending, suppressed), then the suppression list's counts by reason."""
    table = Table(title="subscriber lists")
    for column in ("list", "members", "mailable", "pending", "suppressed"):
        table.add_column(column, justify="left" if column == "list" else "right")
    for row in lists:
        table.add_row(row.name, str(row.members), str(row.mailable), str(row.pending), str(row.suppressed))
    console.print(table)
    console.print(Text("suppression list: " + (", ".join(f"{n} {r}" for r, n in sorted(suppressed.items()))
                                               or "empty")))
