"""Every error drainage raises on purpose, and what each one means.

The tree::

    DrainageError                  anything drainage raises on purpose
    ├── ProblemsFound              marketer-facing: one or more `Problem`s with file:line positions
    ├── SchemaBehind               the database needs `drainage db upgrade`
    ├── AlreadySent                a slot's delivery is in the journal already
    │   └── OutcomeUnknown         ... and a crash left its outcome unknown (it may have been posted)
    └── ChannelError               what a channel plugin reports when a send did not succeed
        ├── TransientError         try again later (network, 5xx, timeouts)
        │   ├── RateLimited        try again after `retry_after` seconds
        │   └── RelayDown          an email relay cannot be reached: the whole fan-out waits and resumes
        ├── PermanentError         never retry (bad request, chat gone, duplicate)
        ├── AuthError              credentials rejected: pause the channel instance
        └── Paused                 the plugin stopped this one post on purpose (an email campaign's failure
                                   rate): it waits for `drainage resume CAMPAIGN`

A `Problem` is not an exception: it is one line of a report, rendered as
``campaigns/xmas.yaml:14:5: channels[1].template: no such file 'x.j2' (did you mean 'xmas.j2'?)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong in one file, at a 1-based line and column (0 when unknown)."""

    file: str
    line: int = 0
    column: int = 0
    message: str = ""
    hint: str = ""

    def __str__(self) -> str:
        where = self.file
        if self.line:
            where += f":{self.line}"
            if self.column:
                where += f":{self.column}"
        text = f"{where}: {self.message}"
        return f"{text} ({self.hint})" if self.hint else text


class DrainageError(Exception):
    """Base of every error drainage raises on purpose."""


@dataclass
class ProblemsFound(DrainageError):
    """Input files are wrong; `problems` says where and how."""

    problems: list[Problem] = field(default_factory=list)

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.problems)


class SchemaBehind(DrainageError):
    """The database schema is older than this version of drainage."""


class AlreadySent(DrainageError):
    """The journal already holds a delivery for this slot."""


class OutcomeUnknown(AlreadySent):
    """A crash interrupted this slot's send: the post may or may not have reached the platform."""

    def __init__(self, where: str, row: Any) -> None:
        self.row = row
        when = f" on {row.updated_at:%Y-%m-%d %H:%M} UTC" if getattr(row, "updated_at", None) else ""
        super().__init__(f"{where}: outcome unknown, a crash interrupted its send{when} and {row.channel} cannot "
                         "say whether it arrived (it may be there)")


class ChannelError(DrainageError):
    """A channel could not deliver a post. The message must never contain a secret."""

    kind = "error"


class TransientError(ChannelError):
    """Temporary failure (network, timeout, 5xx): retry with backoff."""

    kind = "transient"


class RateLimited(TransientError):
    """The platform asked us to slow down; retry after `retry_after` seconds."""

    kind = "rate_limited"

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RelayDown(TransientError):
    """An email relay cannot be reached (or dropped every attempt): the fan-out waits and resumes later."""


class PermanentError(ChannelError):
    """The platform refused this post for good; retrying cannot help."""

    kind = "permanent"


class AuthError(ChannelError):
    """The credentials were rejected; the channel instance must be paused."""

    kind = "auth"


class Paused(ChannelError):
    """The plugin paused this post on purpose (e.g. too many bounces); it waits for `drainage resume`."""

    kind = "paused"
