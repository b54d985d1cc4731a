"""Finding channel plugins through the `drainage.channels` entry-point group."""

from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points

from drainage.channel import Channel

GROUP = "drainage.channels"


@cache
def channel_types() -> dict[str, type[Channel]]:
    """Every installed channel plugin by type name. Built on first use, never at import time."""
    found: dict[str, type[Channel]] = {}
    for ep in entry_points(group=GROUP):
        cls = ep.load()
        if not (isinstance(cls, type) and issubclass(cls, Channel)):
            raise TypeError(f"entry point {ep.name!r} in {GROUP} is not a drainage Channel subclass")
        found[ep.name] = cls
    return found
