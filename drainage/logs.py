"""One structured line per event, plain (key=value) or JSON, with secret values masked."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

LOGGER = "drainage"


class _Redactor(logging.Filter):
    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            record.msg = redact(str(record.msg), self.secrets)
            fields = getattr(record, "fields", None)
            if fields:
                record.fields = {k: redact(str(v), self.secrets) if isinstance(v, str) else v
                                 for k, v in fields.items()}
        return True


def redact(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


class _Formatter(logging.Formatter):
    def __init__(self, json_lines: bool) -> None:
        super().__init__()
        self.json_lines = json_lines

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = getattr(record, "fields", {}) or {}
        stamp = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        if self.json_lines:
            return json.dumps({"ts": stamp, "level": record.levelname.lower(), "event": record.getMessage(),
                               **fields}, ensure_ascii=False, default=str)
        parts = [stamp, record.levelname.lower(), record.getMessage()]
        parts += [f"{k}={_plain(v)}" for k, v in fields.items() if v is not None and v != ""]
        return " ".join(parts)


def _plain(value: Any) -> str:
    text = value.isoformat() if isinstance(value, datetime) else str(value)
    return json.dumps(text, ensure_ascii=False) if (" " in text or '"' in text or not text) else text


def setup(fmt: str = "plain", secrets: Iterable[str] = (), stream: Any = None) -> logging.Logger:
    """Configure the drainage logger: one line per event on stderr (or `stream`)."""
    logger = logging.getLogger(LOGGER)
    logger.handlers.clear()
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(_Formatter(fmt == "json"))
    handler.addFilter(_Redactor(secrets))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger


def event(name: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log one event with its fields."""
    logging.getLogger(LOGGER).log(level, name, extra={"fields": fields})
