"""Problems in a marketer's files, one per line as file:line:col: message (hint), then a count."""

from __future__ import annotations

from rich.console import Console
from rich.text import Text

from drainage.errors import Problem


def show_problems(console: Console, problems: list[Problem]) -> None:
    """Print each problem on its own line, then how many there are in how many files."""
    for problem in problems:
        console.print(Text(str(problem)), soft_wrap=True)
    files = len({p.file for p in problems})
    noun = "problem" if len(problems) == 1 else "problems"
    console.print(Text(f"{len(problems)} {noun} in {files} file{'s' if files != 1 else ''}", style="bold red"))
