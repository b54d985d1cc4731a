"""The `drainage` app: the global --config option, and every command of every group module in one list."""

from __future__ import annotations

import typer

from drainage.cli import catalog, reports, sending, serving, status, unknowns
from drainage.cli.db import db_app
from drainage.cli.feeds import feeds_app
from drainage.cli.groups import LeanGroup
from drainage.cli.options import GlobalConfigOpt
from drainage.cli.subscribers import subscribers_app

HELP = "Off-site traffic drainage: campaigns as code, scheduled posts, tracked links."

# plain help (rich_markup_mode=None): rendering it with rich would cost more than the rest of startup
app = typer.Typer(help=HELP, cls=LeanGroup, no_args_is_help=True, pretty_exceptions_enable=False,
                  add_completion=False, rich_markup_mode=None)


@app.callback()
def global_options(config: GlobalConfigOpt = None) -> None:
    """Off-site traffic drainage: campaigns as code, scheduled posts, tracked links."""


# `drainage --help` lists them in this order
app.command("resolve")(unknowns.resolve)
app.command("validate")(catalog.validate)
app.command("plan")(catalog.plan)
app.command("preview")(catalog.preview)
app.command("send")(sending.send)
app.command("run")(serving.run)
app.command("tracker")(serving.tracker)
app.command("status")(status.status)
app.command("resume")(sending.resume)
app.command("schema")(catalog.schema)
app.command("report")(reports.report)
app.command("prune")(reports.prune)
app.add_typer(db_app, name="db")
app.add_typer(feeds_app, name="feeds")
app.add_typer(subscribers_app, name="subscribers")
