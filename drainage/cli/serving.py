"""The long-running commands: `run` (the daemon, with the click tracker beside it) and `tracker` (the tracker
alone)."""

from __future__ import annotations

from typing import Annotated

import typer

from drainage.cli.failures import friendly_errors
from drainage.cli.opening import migrated_engine, open_engine
from drainage.cli.options import DEFAULT_CONFIG, ConfigOpt
from drainage.errors import ProblemsFound


def run(once: Annotated[bool, typer.Option("--once", help="One pass over what is due, then exit.")] = False,
        tracker: Annotated[bool, typer.Option("--tracker/--no-tracker",
                                              help="Serve the click tracker beside the scheduler "
                                                   "(default: tracker.enabled).")] = True,
        log_format: Annotated[str | None, typer.Option(help="plain or json (default: daemon.log_format).")] = None,
        config: ConfigOpt = DEFAULT_CONFIG) -> None:
    """Run the daemon: send every due post once, with retries, pacing, catch-up, reload and clean shutdown."""
    from drainage import logs
    from drainage.daemon import run_daemon, secrets_of, validated_project

    with friendly_errors():
        project = validated_project(config)
        logs.setup(log_format or project.config.config.daemon.log_format, secrets_of(project))
        engine = open_engine(project)
        with_tracker = tracker and project.config.config.tracker.enabled and not once
        run_daemon(config, project, engine, once=once, tracker=with_tracker)


def tracker(host: Annotated[str | None, typer.Option(help="Bind address (default: tracker.host).")] = None,
            port: Annotated[int | None, typer.Option(help="Port (default: tracker.port).")] = None,
            log_format: Annotated[str | None, typer.Option(help="plain or json.")] = None,
            config: ConfigOpt = DEFAULT_CONFIG) -> None:
    """Serve the click tracker alone: /c/{code} redirects, order webhooks, /healthz, /metrics."""
    from drainage import logs
    from drainage.config import load_config
    from drainage.sources import display_path
    from drainage.tracker.server import serve

    with friendly_errors():
        loaded, problems = load_config(config, display_path(config))
        if loaded is None:
            raise ProblemsFound(problems)
        logs.setup(log_format or loaded.config.daemon.log_format, loaded.secrets())
        serve(loaded, migrated_engine(loaded.database_url), host, port)
