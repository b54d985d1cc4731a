"""Parsed YAML files remembered by their content, so that a catalog is parsed once, not at every command.

A campaign of thousands of items is megabytes of YAML: even libyaml's C parser then costs a good part of a
second per file, at every `plan`, `send`, `validate` and daemon start. The plain data a large valid file parses
to (`MIN_SIZE` and up; small files parse faster than a cache is read) is kept as JSON, named by the SHA-256 of
the file's text and this module's format, in `DRAINAGE_CACHE_DIR` (default `$XDG_CACHE_HOME/drainage/yaml`, else
`~/.cache/drainage/yaml`; an empty value turns the cache off). An edited file has another hash, so an entry is
never stale; the oldest entries beyond `MAX_ENTRIES` are removed.

JSON (ASCII), not pickle: reading a cache entry can never run code. Dates, times and binary values, which JSON lacks,
are listed apart with their place in the data. A missing, unreadable or corrupt entry is parsed again, and a
cache that cannot be written is skipped: the cache never changes what a file means, nor fails a command.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import tempfile
from datetime import date, datetime
from pathlib import Path
from typing import Any

FORMAT = "drainage-yaml-1"
"""Changes whenever the plain data a text parses to could change (the loader's rules, this encoding); entries
are also named by drainage's and PyYAML's versions."""
MIN_SIZE = 64 * 1024
"""Files smaller than this (characters) are parsed every time."""
MAX_ENTRIES = 256

Loc = list[str | int]


def cache_dir() -> Path | None:
    """Where entries are kept; None when the cache is off."""
    configured = os.environ.get("DRAINAGE_CACHE_DIR")
    if configured is not None:
        return Path(configured) if configured.strip() else None
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "drainage" / "yaml"


def _entry(folder: Path, text: str) -> Path:
    """The entry of `text`: named by its hash with this format's, drainage's and PyYAML's versions (a new
    release of either may read a text differently)."""
    import yaml

    from drainage import __version__

    stamp = f"{FORMAT}|{__version__}|{yaml.__version__}|{yaml.__with_libyaml__}"
    digest = hashlib.sha256(f"{stamp}\n{text}".encode("utf-8", "surrogatepass")).hexdigest()
    return folder / f"{digest}.json"


def recall(text: str) -> tuple[bool, Any]:
    """(True, data) if `text` was parsed before, else (False, None)."""
    folder = cache_dir()
    if folder is None or len(text) < MIN_SIZE:
        return False, None
    try:
        stored = json.loads(_entry(folder, text).read_text(encoding="ascii"))
        if stored.get("format") != FORMAT:
            return False, None
        return True, _restore(stored["data"], stored["special"])
    except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError):
        return False, None


def remember(text: str, data: Any) -> None:
    """Keep the data `text` parsed to (quietly not, if the cache is off or cannot be written)."""
    folder = cache_dir()
    if folder is None or len(text) < MIN_SIZE:
        return
    special: list[list[Any]] = []
    temporary: str | None = None
    try:
        encoded = json.dumps({"format": FORMAT, "data": _plain(data, [], special), "special": special})
        folder.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=folder, suffix=".tmp")
        with os.fdopen(handle, "w", encoding="ascii") as out:
            out.write(encoded)
        os.replace(temporary, _entry(folder, text))
        temporary = None
        _prune(folder)
    except (OSError, ValueError, TypeError):
        pass
    finally:
        if temporary is not None:
            with contextlib.suppress(OSError):
                os.unlink(temporary)


def _prune(folder: Path) -> None:
    entries = list(folder.glob("*.json"))
    if len(entries) <= MAX_ENTRIES:
        return
    by_age = sorted(entries, key=lambda p: p.stat().st_mtime)
    for old in by_age[: len(entries) - MAX_ENTRIES]:
        with contextlib.suppress(OSError):
            old.unlink()


def _plain(value: Any, loc: Loc, special: list[list[Any]]) -> Any:
    """`value` with what JSON cannot hold set to None and listed in `special` as [loc, kind, text]."""
    if type(value) is dict:
        if not all(type(key) is str for key in value):
            raise TypeError("a key that is not text")
        return {key: _plain(item, [*loc, key], special) for key, item in value.items()}
    if type(value) is list:
        return [_plain(item, [*loc, index], special) for index, item in enumerate(value)]
    if isinstance(value, datetime):
        special.append([loc, "datetime", value.isoformat()])
        return None
    if isinstance(value, date):
        special.append([loc, "date", value.isoformat()])
        return None
    if isinstance(value, bytes):
        special.append([loc, "bytes", base64.b64encode(value).decode("ascii")])
        return None
    if value is None or type(value) in (str, int, float, bool):
        return value
    raise TypeError(f"cannot keep a {type(value).__name__}")


def _restore(data: Any, special: list[list[Any]]) -> Any:
    for loc, kind, text in special:
        value: Any = (datetime.fromisoformat(text) if kind == "datetime" else date.fromisoformat(text)
                      if kind == "date" else base64.b64decode(text))
        if not loc:
            return value
        parent = data
        for step in loc[:-1]:
            parent = parent[step]
        parent[loc[-1]] = value
    return data
