"""Plain SQL on the DB-API cursor of a SQLAlchemy connection, in that connection's transaction.

For the hot write paths (the tracker's click batches, the email ledger's steps): SQLAlchemy's per-row parameter
processing costs more than the statements themselves there. Statements are written with `?` markers in SQL
that SQLite and PostgreSQL both accept; values must already be in the form SQLAlchemy stores them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection


class RawCursor:
    """`?`-marked SQL, run on the connection's DB-API cursor (the marker becomes the driver's own)."""

    def __init__(self, conn: Connection) -> None:
        self.cursor = conn.connection.cursor()
        self.marker = "?" if conn.dialect.paramstyle == "qmark" else "%s"

    def many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        """executemany; nothing when `rows` is empty."""
        if rows:
            self.cursor.executemany(sql.replace("?", self.marker), rows)

    def one(self, sql: str, params: tuple[Any, ...] | list[Any]) -> None:
        self.cursor.execute(sql.replace("?", self.marker), params)

    def all(self, sql: str, params: tuple[Any, ...] | list[Any]) -> list[tuple[Any, ...]]:
        self.cursor.execute(sql.replace("?", self.marker), params)
        return [tuple(row) for row in self.cursor.fetchall()]
