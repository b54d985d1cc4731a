"""Building tracked links: resolve a target on the store, merge UTM tags, derive a stable code.

The target URL keeps everything it had (query parameters, their order and percent-encoding, fragment,
IDN host as written); UTM tags that the URL already carries are kept, missing ones are appended.
The code is derived from the target and its attribution, so the same link always gets the same code
and `preview` shows the exact URL that `send` will post.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl, quote, urljoin, urlsplit

UTM_ORDER = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", "utm_id")
CODE_LENGTH = 12
_HOST_NAME = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*")  # a host name as host_key() gives it


class LinkError(ValueError):
    """A link cannot be built (bad URL, or a host outside the store's domains)."""


@dataclass(frozen=True)
class TrackedLink:
    """A link as posted: `url` on the tracker, redirecting to `target` (which carries the UTM tags)."""

    code: str
    url: str
    target: str
    campaign: str
    channel: str
    item: str
    variant: str
    recipient: str = ""
    market: str = ""


@lru_cache(maxsize=4096)
def host_key(host: str) -> str:
    """Comparable form of a host name: lower-case ASCII (IDNA) without a trailing dot."""
    host = host.rstrip(".").lower()
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return host


def host_allowed(host: str, allowed: list[str]) -> bool:
    """True when `host` is one of `allowed` ('*.example.com' also allows every subdomain and the apex)."""
    key = host_key(host)
    for pattern in allowed:
        if pattern.startswith("*."):
            apex = host_key(pattern[2:])
            if key == apex or key.endswith("." + apex):
                return True
        elif key == host_key(pattern):
            return True
    return False


_STORE_PATH = re.compile(r"(?:/[A-Za-z0-9_~-][A-Za-z0-9_.~-]*)+/?(?:\?[A-Za-z0-9_.~=&%+-]+)?")
"""A plain store path ('/products/scarf-2?c=1'): no dot segments, no empty ones, no parameters or fragment, so that
joining it to the store's URL is putting the two together (checked against `urljoin` by a test)."""


def resolve_target(url: str, base_url: str, allowed_hosts: list[str]) -> str:
    """A store path or absolute URL -> absolute URL on an allowed host (LinkError otherwise)."""
    url = str(url)
    if _STORE_PATH.fullmatch(url):  # the usual item URL of a catalog of thousands: no parsing
        prefix = _store_prefix(base_url, tuple(allowed_hosts))
        if prefix is not None:
            return prefix + url[1:]
    return _resolve(url, base_url, allowed_hosts)


@lru_cache(maxsize=64)
def _store_prefix(base_url: str, allowed_hosts: tuple[str, ...]) -> str | None:
    """What a plain store path's remainder is appended to, or None if the store's URL is not plain enough."""
    try:
        probe = _resolve("/x", base_url, list(allowed_hosts))
        prefix = probe[:-1]
        fits = probe.endswith("/x") and _resolve("/a/b.c?d=e", base_url, list(allowed_hosts)) == prefix + "a/b.c?d=e"
    except LinkError:
        return None
    return prefix if fits else None


def _resolve(url: str, base_url: str, allowed_hosts: list[str]) -> str:
    url = url.strip()
    if not url:
        raise LinkError("empty link target")
    if any(c < " " or c == "\x7f" for c in url):
        raise LinkError("link target contains control characters")
    if url.startswith("//"):
        absolute = "https:" + url
    elif urlsplit(url).scheme:
        absolute = url
    else:
        absolute = urljoin(base_url.rstrip("/") + "/", url.lstrip("/"))
    parts = urlsplit(absolute)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise LinkError(f"link target '{url}' is not an http(s) URL or a store path such as '/products/x'")
    # browsers read a backslash as '/' and decode '%': https://evil.org\@shop.example.com goes to evil.org
    if "\\" in parts.netloc or not _HOST_NAME.fullmatch(host_key(parts.hostname)):
        raise LinkError(f"link target '{url}' does not have a valid host name")
    if not host_allowed(parts.hostname, allowed_hosts):
        raise LinkError(f"link host '{parts.hostname}' is not one of the store's hosts "
                        f"({', '.join(allowed_hosts)}); add it to store.link_hosts if it is yours")
    return absolute


def add_utm(url: str, tags: Mapping[str, str | None]) -> str:
    """Append UTM tags the URL does not already carry; keep the rest of the URL byte for byte."""
    # split by hand (as urlsplit does: fragment first, then query) so that nothing else is re-encoded or lost
    rest, hash_mark, fragment = url.partition("#")
    before, _, query = rest.partition("?")
    present = _query_keys(query) if query else frozenset()
    given = tuple(tags.items())
    try:  # with the values' types: the cache must not take True for 1 ('True' and '1' in a URL)
        added = _added(given, tuple(map(type, tags.values())), present)
    except TypeError:  # a value that cannot be a cache key (a list from a template)
        added = _added.__wrapped__(given, (), present)
    if not added:
        return url
    query = f"{query}&{added}" if query and not query.endswith("&") else query + added
    return f"{before}?{query}{hash_mark}{fragment}"


@lru_cache(maxsize=4096)
def _query_keys(query: str) -> frozenset[str]:
    """The parameter names a query string carries (decoded)."""
    return frozenset(k for k, _ in parse_qsl(query, keep_blank_values=True))


@lru_cache(maxsize=4096)
def _added(tags: tuple[tuple[str, Any], ...], _types: tuple[type, ...], present: frozenset[str]) -> str:
    """The encoded tags to append to a query that already has the parameters `present` (the same few tags come
    back for every link of a channel and variant, whatever the target)."""
    given = dict(tags)
    extra = [(k, v) for k in UTM_ORDER if (v := given.get(k)) and k not in present]
    extra += [(k, v) for k, v in given.items() if k not in UTM_ORDER and v and k not in present]
    return "&".join(f"{quote(k, safe='')}={quote(str(v), safe='')}" for k, v in extra)


_B32_PAIRS = tuple(a + b for a in "abcdefghijklmnopqrstuvwxyz234567" for b in "abcdefghijklmnopqrstuvwxyz234567")
"""Two base32 digits (RFC 4648 alphabet, lower case) for each 10-bit value."""


def link_code(target: str, campaign: str, channel: str, item: str, variant: str, recipient: str = "",
              market: str = "") -> str:
    """A stable, non-sequential code for one tracked link: the first 60 bits of a SHA-256, base32, lower case.

    The same as `base64.b32encode(digest[:10]).decode().lower()[:12]` (pinned by a test), without the
    pure-Python encoder: one is made per link per recipient of a fan-out. A market's link has the market in its
    material (two markets' posts on one channel never share a code); a link without one has the code it always had.
    """
    parts = (target, campaign, channel, item, variant, recipient) + ((market,) if market else ())
    material = "\x1f".join(parts).encode()
    bits = int.from_bytes(hashlib.sha256(material).digest()[:8], "big") >> 4
    pairs = _B32_PAIRS
    return (pairs[bits >> 50] + pairs[(bits >> 40) & 1023] + pairs[(bits >> 30) & 1023]
            + pairs[(bits >> 20) & 1023] + pairs[(bits >> 10) & 1023] + pairs[bits & 1023])


def tracked_link(public_url: str, target: str, campaign: str, channel: str, item: str, variant: str,
                 recipient: str = "", market: str = "") -> TrackedLink:
    """Build the tracked link for a UTM-tagged target."""
    code = link_code(target, campaign, channel, item, variant, recipient, market)
    return TrackedLink(code, f"{public_url.rstrip('/')}/c/{code}", target, campaign, channel, item, variant,
                       recipient, market)
