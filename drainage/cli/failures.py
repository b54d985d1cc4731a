"""How a command ends when something goes wrong: a message and an exit code, never a traceback."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import typer

from drainage.cli.console import complain, stdout
from drainage.errors import DrainageError, ProblemsFound, SchemaBehind


@contextmanager
def friendly_errors() -> Iterator[None]:
    """Turn drainage errors into messages and exit codes (2: fix your files, 1: it failed, 70: a bug)."""
    try:
        yield
    except ProblemsFound as exc:
        from drainage.cli.present.problems import show_problems

        show_problems(stdout(), exc.problems)
        raise typer.Exit(2) from None
    except SchemaBehind as exc:
        complain(f"error: {exc}")
        raise typer.Exit(2) from None
    except DrainageError as exc:
        complain(f"error: {exc}")
        raise typer.Exit(1) from None
    except (typer.Exit, typer.Abort, KeyboardInterrupt):
        raise
    except Exception as exc:
        if os.environ.get("DRAINAGE_DEBUG"):
            raise
        if "sqlalchemy" in sys.modules:  # a database that cannot be opened is the config's problem, not a bug
            from drainage.store.db import explain_unreachable

            explained = explain_unreachable(exc)
            if explained:
                complain(f"error: {explained}")
                raise typer.Exit(2) from None
        complain(f"internal error: {exc.__class__.__name__}: {exc}\n"
                 "This is a bug in drainage; run again with DRAINAGE_DEBUG=1 for details and report it.")
        raise typer.Exit(70) from None
