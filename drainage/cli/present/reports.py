"""A built report written out: a table on the terminal (or in a file), or CSV, JSON or HTML."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.text import Text

if TYPE_CHECKING:
    from drainage.reports.model import Report

def write_report(built: Report, fmt: str, output: Path | None, out: Console, err: Console) -> None:
    """`built` in `fmt` on `out`, or into the file `output` (then 'wrote <file>' on `err`)."""
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
