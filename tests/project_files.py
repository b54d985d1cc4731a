"""One builder for the projects tests run on: config.yaml from the sections a test sets, campaigns and templates.

    config = write_project(tmp_path, config_yaml(tmp_path, daemon={"watch": False},
                                                 channels={"box": {"type": "outbox"}}),
                           campaigns={"c.yaml": CAMPAIGN}, templates={"post.j2": "{{ item.name }}"})

Every project gets its own test database (`tests.databases.database_url`, SQLite or PostgreSQL), UTC, a store
and a tracker URL; a test states only what it is about.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from tests.databases import database_url

STORE = {"name": "Test store", "base_url": "https://shop.example.com"}
TRACKER = {"public_url": "https://go.example.com"}
RETRIES = {"max_attempts": 3, "backoff": "30s", "backoff_max": "10m"}
"""The daemon section of tests that count retries."""


def config_yaml(root: Path, *, store: Mapping[str, Any] | None = None, tracker: Mapping[str, Any] | None = None,
                channels: Mapping[str, Any] | None = None, **sections: Any) -> str:
    """config.yaml text of a project in `root`: the default store and tracker updated by `store` and `tracker`,
    then the other sections given (daemon, email, ...; None leaves one out) and the channels."""
    doc: dict[str, Any] = {"store": {**STORE, **(store or {})}, "timezone": "UTC",
                           "database": {"url": database_url(root)}, "tracker": {**TRACKER, **(tracker or {})}}
    doc.update({key: value for key, value in sections.items() if value is not None})
    if channels:
        doc["channels"] = dict(channels)
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=1_000)


def block(text: str) -> dict[str, Any]:
    """Keys a test gives as YAML text (extra options of a channel, say) as a mapping to merge."""
    return (yaml.safe_load(textwrap.dedent(text)) or {}) if text.strip() else {}


def write_project(root: Path, config: str, *, campaigns: Mapping[str, str] | None = None,
                  templates: Mapping[str, str] | None = None) -> Path:
    """Write config.yaml, campaigns/NAME and templates/PATH (folders made as needed); return config.yaml's path."""
    (root / "campaigns").mkdir(parents=True, exist_ok=True)
    (root / "templates").mkdir(exist_ok=True)
    for name, text in (campaigns or {}).items():
        (root / "campaigns" / name).write_text(text, encoding="utf-8")
    for name, text in (templates or {}).items():
        path = root / "templates" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    path = root / "config.yaml"
    path.write_text(config, encoding="utf-8")
    return path
