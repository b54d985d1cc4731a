"""Helpers for email tests: a project with an email channel pointed at a local SMTP server, and subscribers."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import select

from drainage.email.subscribers import ImportReport, import_subscribers, read_csv
from drainage.store.db import make_engine, session
from drainage.store.email_models import Fanout, Recipient, Subscriber
from drainage.store.migrate import ensure_schema
from tests.databases import database_url
from tests.project_files import block, config_yaml
from tests.project_files import write_project as write_project_files

SLOT = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=5)
"""The campaign's one slot, a few minutes ago (send it with --at; the daemon still takes it within 24 h)."""

CAMPAIGN = """\
id: spring
title: Spring knits
misfire_grace: 1h
items:
  - id: scarf
    name: Merino scarf
    url: /products/scarf?color=red
    price: 49.0
schedule:
  - at: {slot}
channels:
  - channel: news
    template: email/spring.html.j2
    text_template: email/spring.txt.j2
    subject: "Für {{{{ subscriber.name or 'you' }}}}: {{{{ item.name }}}}"
    variants: [{{name: warm}}]
{extra}
"""

HTML = """\
<html><body><h1>Hello {{ subscriber.name }}</h1>
<p>The <a href="{{ link(item) }}">{{ item.name }}</a> is back, for {{ item | price }}.</p>
<p><a href="{{ link('/collections/new', content='footer') }}">All new things</a></p>
</body></html>
"""

TEXT = """\
Hello {{ subscriber.name }},

the {{ item.name }} is back: {{ link(item) }}
All new things: {{ link('/collections/new', content='footer') }}

Unsubscribe: {{ unsubscribe_url }}
"""


def write_project(root: Path, port: int, *, connections: int = 2, in_flight: int = 20, channel_extra: str = "",
                  campaign_extra: str = "", daemon_extra: str = "") -> Path:
    news = {"type": "email", "host": "127.0.0.1", "port": port, "security": "none",
            "from_address": "Nörthwind Knits <news@shop.example.com>", "lists": ["newsletter"],
            "connections": connections, "in_flight": in_flight, "retry_backoff": "10ms", "retry_backoff_max": "50ms",
            "timeout": "5s", **block(channel_extra)}
    config = config_yaml(root, store={"name": "Nörthwind Knits"}, tracker={"enabled": False},
                         email={"token_secret": "test-token-secret", "bounce_secret": "test-bounce-secret"},
                         daemon={"watch": False, **block(daemon_extra)}, channels={"news": news})
    return write_project_files(root, config, campaigns={"spring.yaml": CAMPAIGN.format(extra=campaign_extra,
                                                                                      slot=SLOT.isoformat())},
                               templates={"email/spring.html.j2": HTML, "email/spring.txt.j2": TEXT})


def engine_for(root: Path) -> Engine:
    engine = make_engine(database_url(root))
    ensure_schema(engine)
    return engine


def subscribe(engine: Engine, addresses: list[str], list_name: str = "newsletter") -> ImportReport:
    lines = ["email,name,consent_source,consent_at"]
    lines += [f"{a},{a.split('@')[0].title()},test,2025-01-01T00:00:00Z" for a in addresses]
    report = ImportReport()
    import_subscribers(engine, read_csv(io.StringIO("\n".join(lines) + "\n"), report), [list_name], report)
    return report


def ledger(engine: Engine) -> dict[str, str]:
    """address -> recipient state of the (only) fan-out."""
    with session(engine) as s:
        rows = s.exec(select(Subscriber.email, Recipient.status).join(
            Recipient, Recipient.subscriber_id == Subscriber.id)).all()  # type: ignore[arg-type]
    return dict(rows)


def fanouts(engine: Engine) -> list[Fanout]:
    with session(engine) as s:
        return list(s.exec(select(Fanout)).all())


def slot_arg() -> str:
    return (SLOT + timedelta(seconds=1)).isoformat()
