"""`drainage status`: next runs, recent deliveries, failures with reasons, paused channels, email fan-outs;
with --unknown, every outcome nobody knows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer

from drainage.cli.console import say, stdout
from drainage.cli.failures import friendly_errors
from drainage.cli.opening import load_project, open_engine_if_any
from drainage.cli.options import DEFAULT_CONFIG, ConfigOpt
from drainage.cli.unknowns import list_unknown


def status(config: ConfigOpt = DEFAULT_CONFIG,
           days: Annotated[float, typer.Option(help="Look back this many days for counts and failures.")] = 7,
           unknown: Annotated[bool, typer.Option("--unknown", help="List every post and email recipient whose "
                                                               "outcome is unknown, with how to resolve it.")] = False,
           fmt: Annotated[str, typer.Option("--format", help="With --unknown: text or csv.")] = "text") -> None:
    """Next runs per campaign and channel, recent deliveries, failures with reasons, paused channels."""
    from drainage.cli.present.status import show_status
    from drainage.status import collect

    with friendly_errors():
        project = load_project(config)
        engine = open_engine_if_any(project)
        if unknown:
            list_unknown(project, engine, fmt)
            return
        show_status(stdout(), collect(project, engine, datetime.now(UTC), since=timedelta(days=days)), days)
        if engine is None:
            say("no database yet: nothing has been sent", soft_wrap=False)
