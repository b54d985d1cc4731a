"""Where commands print: results on standard output, progress and errors on standard error.

A console is made when a command prints (rich is imported then, not for `--help`), and each one reads `COLUMNS`
and the terminal as they are at that moment, as a console made at import time would when it prints.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console


def stdout() -> Console:
    """A console on standard output (never highlights numbers or paths on its own)."""
    from rich.console import Console

    return Console(highlight=False)


def stderr() -> Console:
    """A console on standard error, for progress, `wrote <file>` and errors."""
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def say(line: str, style: str = "", *, soft_wrap: bool = True) -> None:
    """One line of plain text (never read as markup) on standard output; `soft_wrap` leaves long lines whole."""
    from rich.text import Text

    stdout().print(Text(line, style=style), soft_wrap=soft_wrap)


def complain(line: str) -> None:
    """One line of plain text on standard error."""
    from rich.text import Text

    stderr().print(Text(line))
