"""The `--config` option, accepted before the command (`drainage --config PATH validate`, as git and kubectl users
expect) and after it (`drainage validate --config PATH`); when both are given the later one, the command's, wins.
`DRAINAGE_CONFIG` applies when neither is given."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

DEFAULT_CONFIG = Path("config.yaml")
HELP = "Path to config.yaml (default ./config.yaml, or DRAINAGE_CONFIG)."


def given_config(ctx: typer.Context, param: typer.CallbackParam, value: Path | None) -> Path | None:
    """The command's --config if typed after the command, else one typed before it, else env or default."""
    name = param.name or "config"
    if _typed(ctx, name):
        return value
    parent = ctx.parent
    while parent is not None:
        if parent.params.get(name) is not None and _typed(parent, name):
            return Path(parent.params[name])
        parent = parent.parent
    return value


def _typed(ctx: typer.Context, name: str) -> bool:
    source = ctx.get_parameter_source(name)  # typer carries its own copy of click: compare the enum by name
    return source is not None and source.name == "COMMANDLINE"


ConfigOpt = Annotated[Path, typer.Option("--config", "-c", envvar="DRAINAGE_CONFIG", help=HELP,
                                         callback=given_config)]
"""The option of each command that reads config.yaml."""

MarketOpt = Annotated[str | None, typer.Option("--market", help="Only this market's posts (an id of config.yaml's "
                                                                "`markets:`).")]
GlobalConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help=HELP + " Also accepted after the "
                                                      "command.", show_default=False)]
"""The same option given before the command."""

