"""`drainage subscribers ...`: import (with consent), export, list and remove subscribers of email lists."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from drainage.cli.console import complain, say, stdout
from drainage.cli.failures import friendly_errors
from drainage.cli.groups import LeanGroup
from drainage.cli.opening import load_config_only, migrated_engine
from drainage.cli.options import DEFAULT_CONFIG, ConfigOpt
from drainage.errors import Problem, ProblemsFound

if TYPE_CHECKING:
    from sqlalchemy import Engine

subscribers_app = typer.Typer(help="Subscribers of email lists: import (with consent), export, list, remove.",
                              cls=LeanGroup, no_args_is_help=True, rich_markup_mode=None)


def _engine(config: Path) -> Engine:
    """The database of config.yaml (read for its database section only), created or migrated if need be."""
    return migrated_engine(load_config_only(config, "database").database_url)


@subscribers_app.command("import")
def import_command(file: Annotated[Path, typer.Argument(help="CSV with email, consent_source, consent_at, "
                                                             "optional name, locale and any attributes.")],
                   lists: Annotated[list[str], typer.Option("--list", help="List(s) to add them to.")],
                   config: ConfigOpt = DEFAULT_CONFIG) -> None:
    """Import subscribers who gave consent; rows without consent or with invalid addresses are refused."""
    from drainage.email.subscribers import BadSubscriberFile, import_file

    with friendly_errors():
        if not file.exists():
            raise ProblemsFound([Problem(str(file), 0, 0, "file not found")])
        try:
            report = import_file(_engine(config), file, lists)
        except BadSubscriberFile as exc:
            raise ProblemsFound([Problem(str(file), 1, 0, str(exc))]) from None
        except UnicodeDecodeError:
            raise ProblemsFound([Problem(str(file), 0, 0, "not UTF-8 text", "save the file as UTF-8 CSV")]) from None
        for line in report.refused:
            say(f"{file}:{line.removeprefix('line ')}")
        refused = report.no_consent + report.invalid
        say(f"{report.rows} rows: {report.added} added, {report.updated} updated, {report.merged_in_file} "
            f"duplicates merged, {refused} refused ({report.no_consent} without consent, {report.invalid} invalid "
            f"addresses); {report.suppressed} stay suppressed (unsubscribed or bounced earlier); list(s): "
            f"{', '.join(lists)}", "yellow" if refused else "green")


@subscribers_app.command("export")
def export_command(list_name: Annotated[str | None, typer.Option("--list", help="Only this list.")] = None,
                   output: Annotated[Path | None, typer.Option(help="Write here (default: standard output).")] = None,
                   config: ConfigOpt = DEFAULT_CONFIG) -> None:
    """Export subscribers as CSV (the format `import` reads), with consent, lists and suppression."""
    from drainage.email.subscribers import export_csv

    with friendly_errors():
        engine = _engine(config)
        if output is None:
            count = export_csv(engine, sys.stdout, list_name)
        else:
            with output.open("w", encoding="utf-8", newline="") as stream:
                count = export_csv(engine, stream, list_name)
        complain(f"exported {count} subscriber(s)")


@subscribers_app.command("list")
def list_command(config: ConfigOpt = DEFAULT_CONFIG) -> None:
    """Each list with its members: how many can be mailed, are pending confirmation, or are suppressed."""
    from drainage.cli.present.subscribers import show_lists
    from drainage.email.subscribers import list_counts
    from drainage.email.suppression import counts

    with friendly_errors():
        engine = _engine(config)
        show_lists(stdout(), list_counts(engine), counts(engine))


@subscribers_app.command("remove")
def remove_command(emails: Annotated[list[str], typer.Argument(help="Addresses to remove.")],
                   list_name: Annotated[str | None, typer.Option("--list", help="Only from this list (default: "
                                                                                "delete the subscribers).")] = None,
                   suppress: Annotated[bool, typer.Option("--suppress", help="Also never mail them again.")] = False,
                   config: ConfigOpt = DEFAULT_CONFIG) -> None:
    """Remove addresses from a list, or delete them (and with --suppress, never mail them again)."""
    from drainage.email import suppression
    from drainage.email.subscribers import remove

    with friendly_errors():
        engine = _engine(config)
        removed = remove(engine, emails, list_name)
        if suppress:
            for address in emails:
                suppression.suppress(engine, address, "unsubscribed", source="cli")
        where = f"list '{list_name}'" if list_name else "the subscribers"
        say(f"removed {removed} from {where}" + (f"; {len(emails)} suppressed" if suppress else ""), soft_wrap=False)
