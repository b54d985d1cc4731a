"""The two consoles every command prints to: results on standard output, progress and errors on standard error."""

from __future__ import annotations

from rich.console import Console

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)
