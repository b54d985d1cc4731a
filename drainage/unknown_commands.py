"""`drainage status --unknown` and `drainage resolve`: list every outcome nobody knows, and settle them."""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.text import Text

from drainage.errors import Problem, ProblemsFound

if TYPE_CHECKING:  # `drainage --help` must not import the project's models (see tests/test_startup.py)
    from drainage.project import Project


def _domains(project: Project) -> dict[str, str | None]:
    """Each email channel's Message-ID domain (what `unknowns` needs to name a recipient's message)."""
    domains: dict[str, str | None] = {}
    for name in project.config.channels:
        settings = getattr(project.channel(name), "mail_settings", lambda: None)()  # MailChannel: MailSettings
        domains[name] = getattr(settings, "message_id_domain", None)
    return domains


def show_unknown(project: Project, engine: object, fmt: str) -> None:
    """Print every unknown post and recipient: CSV (one row each, a header first) or text."""
    from drainage.cli import out
    from drainage.unknowns import COLUMNS, unknowns

    if fmt not in ("text", "csv"):
        raise ProblemsFound([Problem("--format", 0, 0, f"unknown format '{fmt}'", "use text or csv")])
    domains = _domains(project)
    rows = unknowns(engine, domains.get) if engine is not None else iter(())  # type: ignore[arg-type]
    if fmt == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(COLUMNS)
        for row in rows:
            writer.writerow(row.row())
        return
    count = 0
    for u in rows:
        count += 1
        who = f" {u.recipient}" if u.kind == "recipient" else ""
        out.print(Text(f"{u.kind:<9} {u.key}{who}" + (f" {u.message_id}" if u.message_id else "")), soft_wrap=True)
        out.print(Text(f"    {u.resolve}", style="yellow"), soft_wrap=True)
    out.print(Text(f"{count} unknown outcome(s)" + ("" if count else ": nothing to resolve")), soft_wrap=True)


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
    from drainage.cli import friendly_errors, load_project, open_engine, out
    from drainage.unknowns import resolve_post, resolve_recipients

    with friendly_errors():
        project = load_project(config)
        engine = open_engine(project, create=False)
        if engine is None:
            raise ProblemsFound([Problem(str(config), 0, 0, "no database yet: nothing has been sent", "")])
        if recipient or all_recipients:
            changed = resolve_recipients(engine, key, None if all_recipients else recipient or [], sent)
            what = "recorded as sent" if sent else "queued to be mailed again (the daemon or `drainage send` does)"
            out.print(Text(f"{changed} unknown recipient(s) of {key} {what}"), soft_wrap=True)
            if not changed:
                raise typer.Exit(1)
            return
        changed = resolve_post(engine, key, sent)
        if not changed:
            raise ProblemsFound([Problem(str(config), 0, 0, f"no unknown post with key '{key}'",
                                         "`drainage status --unknown` lists them (for email recipients add "
                                         "--recipient ADDRESS or --all-recipients)")])
        out.print(Text(f"{key}: " + ("recorded as sent" if sent else "queued to be sent again (the daemon or "
                                                                       "`drainage send` does)")), soft_wrap=True)
