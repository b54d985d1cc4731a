"""Tables that stay readable at 80 columns and when piped (rich draws 80 columns wide when not on a terminal).

Every cell stays on one line. When the terminal is too narrow, the widest cuttable columns (ids, first lines, URLs,
reasons) give up room first and their cells end with an ellipsis, instead of being folded a few characters a line;
fixed-format columns (times, counts) keep their width; a column marked `optional` is left out when even the cut
columns do not fit. The full text is one `--format csv|json` away
(`drainage report`), or one `drainage preview` away.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from rich import box
from rich.cells import cell_len
from rich.table import Table
from rich.text import Text

MIN_CUT = 6
"""A cut column keeps at least this many cells (or its header's width, or its widest cell if narrower)."""


@dataclass(frozen=True)
class Column:
    """One column: `whole` columns are never cut, `optional` ones are left out when there is no room at all."""

    header: str
    whole: bool = False
    optional: bool = False
    justify: Literal["left", "right", "center"] = "left"


def fitted_table(width: int, columns: list[Column], rows: list[list[Any]], **options: Any) -> Table:
    """A rich Table of `rows` whose columns fit in `width` cells (see the module's docstring)."""
    keep = list(range(len(columns)))
    for index in reversed(range(len(columns))):
        if columns[index].optional and _floor_width(columns, rows, keep, options) > width:
            keep.remove(index)
    columns, rows = [columns[i] for i in keep], [[row[i] for i in keep] for row in rows]
    natural = [max([cell_len(c.header), *(_cells(row[i]) for row in rows)]) for i, c in enumerate(columns)]
    room = width - 3 * len(columns) - (1 if options.get("box", box.HEAVY_HEAD) is not None else -1)
    widths = list(natural)
    floor = [n if c.whole else min(n, max(MIN_CUT, cell_len(c.header))) for n, c in zip(natural, columns, strict=True)]
    while sum(widths) > room:
        cuttable = [i for i in range(len(columns)) if widths[i] > floor[i]]
        if not cuttable:
            break
        widest = max(cuttable, key=lambda i: widths[i])
        widths[widest] -= 1
    table = Table(**options)
    for column, size in zip(columns, widths, strict=True):
        table.add_column(column.header, justify=column.justify, no_wrap=True, overflow="ellipsis", width=size)
    for row in rows:
        table.add_row(*row)
    return table


def _floor_width(columns: list[Column], rows: list[list[Any]], keep: list[int], options: dict[str, Any]) -> int:
    """How wide the table would be with only the columns in `keep`, each cut as far as it may be."""
    total = 3 * len(keep) + (1 if options.get("box", box.HEAVY_HEAD) is not None else -1)
    for i in keep:
        natural = max([cell_len(columns[i].header), *(_cells(row[i]) for row in rows)])
        total += natural if columns[i].whole else min(natural, max(MIN_CUT, cell_len(columns[i].header)))
    return total


def _cells(value: Any) -> int:
    if isinstance(value, Text):
        return value.cell_len
    return cell_len(str(value))
