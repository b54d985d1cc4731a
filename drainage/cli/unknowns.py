"""Outcomes nobody knows: `drainage status --unknown` lists every one, `drainage resolve` settles them."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from drainage.cli.console import say, stdout
from drainage.cli.failures import friendly_errors
from drainage.cli.opening import load_project, open_engine_if_any
from drainage.errors import Problem, ProblemsFound

if TYPE_CHECKING:  # `drainage --help` must not import the project's models (see tests/test_startup.py)
    from sqlalchemy import Engine

    from drainage.project import Project

FORMATS = ("text", "csv")


def list_unknown(project: Project, engine: Engine | None, fmt: str) -> None:
    """Print every unknown post and recipient (`status --unknown`): CSV or text."""
    from drainage.cli.present.unknowns import show_unknown, write_unknown_csv
    from drainage.unknowns import COLUMNS, unknowns

    if fmt not in FORMATS:
        raise ProblemsFound([Problem("--format", 0, 0, f"unknown format '{fmt}'", "use text or csv")])
    domains = _domains(project)
    rows = unknowns(engine, domains.get) if engine is not None else iter(())
    if fmt == "csv":
        write_unknown_csv(sys.stdout, COLUMNS, rows)
    else:
        show_unknown(stdout(), rows)


def _domains(project: Project) -> dict[str, str | None]:
    """Each email channel's Message-ID domain (what `unknowns` needs to name a recipient's message)."""
    domains: dict[str, str | None] = {}
    for name in project.config.channels:
        settings = getattr(project.channel(name), "mail_settings", lambda: None)()  # MailChannel: MailSettings
        domains[name] = getattr(settings, "message_id_domain", None)
    return domains


def resolve(key: Annotated[str, typer.Argument(help="The delivery key (as `drainage status --unknown` shows it).")],
            sent: Annotated[bool, typer.Option("--sent/--not-sent", help="It was received (recorded as sent) / it "
                                                                          "was not (sent again).")],
            recipient: Annotated[list[str] | None, typer.Option(help="An email recipient of that delivery "
                                                                     "(repeatable).")] = None,
            all_recipients: Annotated[bool, typer.Option("--all-recipients", help="Every unknown recipient of that "
                                                                                  "delivery.")] = False,
            config: Annotated[Path, typer.Option("--config", "-c", envvar="DRAINAGE_CONFIG",
                                                 help="Path to config.yaml.")] = Path("config.yaml")) -> None:
    """Settle an outcome nobody knows, once you have looked: an unknown post (on the platform or not), or unknown
    email recipients (in the relay's log or not). --not-sent sends them again through the daemon or `send`."""
    from drainage.unknowns import resolve_post, resolve_recipients

    with friendly_errors():
        project = load_project(config)
        engine = open_engine_if_any(project)
        if engine is None:
            raise ProblemsFound([Problem(str(config), 0, 0, "no database yet: nothing has been sent", "")])
        if recipient or all_recipients:
            changed = resolve_recipients(engine, key, None if all_recipients else recipient or [], sent)
            what = "recorded as sent" if sent else "queued to be mailed again (the daemon or `drainage send` does)"
            say(f"{changed} unknown recipient(s) of {key} {what}")
            if not changed:
                raise typer.Exit(1)
            return
        changed = resolve_post(engine, key, sent)
        if not changed:
            raise ProblemsFound([Problem(str(config), 0, 0, f"no unknown post with key '{key}'",
                                         "`drainage status --unknown` lists them (for email recipients add "
                                         "--recipient ADDRESS or --all-recipients)")])
        say(f"{key}: " + ("recorded as sent" if sent else "queued to be sent again (the daemon or `drainage send` "
                                                          "does)"))
