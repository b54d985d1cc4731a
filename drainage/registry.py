"""Finding channel plugins through the `drainage.channels` entry-point group.

A plugin (and with it its platform library: python-telegram-bot, tweepy, facebook-sdk...) is imported only when
a channel of its type is used: `channel_type("telegram")` loads that one entry point; `channel_types()` loads
them all (for `drainage schema` and the key reference).
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import EntryPoint, entry_points

from drainage.channel import Channel

GROUP = "drainage.channels"

_loaded: dict[str, type[Channel]] = {}
"""Plugins loaded so far by type name (tests add their own types here through `channel_types()`)."""


@cache
def _entry_points() -> dict[str, EntryPoint]:
    found: dict[str, EntryPoint] = {}
    for ep in entry_points(group=GROUP):
        found.setdefault(ep.name, ep)
    return found


def channel_type_names() -> list[str]:
    """Every installed channel type's name, sorted, without importing any plugin."""
    return sorted({*_entry_points(), *_loaded})


def channel_type(name: str) -> type[Channel] | None:
    """The plugin of channel type `name` (imported on first use), or None when no such type is installed."""
    if name not in _loaded:
        ep = _entry_points().get(name)
        if ep is None:
            return None
        cls = ep.load()
        if not (isinstance(cls, type) and issubclass(cls, Channel)):
            raise TypeError(f"entry point {ep.name!r} in {GROUP} is not a drainage Channel subclass")
        _loaded[name] = cls
    return _loaded[name]


def channel_types() -> dict[str, type[Channel]]:
    """Every installed channel plugin by type name (imports them all)."""
    for name in _entry_points():
        channel_type(name)
    return _loaded
