"""The `drainage` command line: a face that parses options, calls the services and prints what they return.

Layout: `main` builds the typer app and registers the commands of each group module (`catalog`, `sending`,
`serving`, `status`, `unknowns`, `reports`, `db`, `feeds`, `subscribers`); `present/` holds the presenters that
turn results into tables and text; `console`, `failures`, `options` and `opening` are what every command shares.

`drainage.cli:app` (the console script) is built on first access (PEP 562): importing a command module, or this
package, neither builds the app nor imports a heavy library (`tests/test_startup.py`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from typer import Typer

    app: Typer

__all__ = ["app"]


def __getattr__(name: str) -> Any:
    if name == "app":
        from drainage.cli.main import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
