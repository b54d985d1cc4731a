"""Fetching a feed: one conditional GET with httpx, bounded in time and size.

feedparser's own fetching cannot be given a client, a total timeout or a size limit, so drainage fetches with
httpx and hands the bytes (with the final URL, to resolve relative links) to a parser worker
(`drainage.feeds.sandbox`, which runs `drainage.feeds.parse`).
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime

import certifi
import httpx

from drainage import __version__
from drainage.feeds.parse import FeedError

__all__ = ["FeedError", "Fetched", "fetch", "new_client", "retry_after"]

USER_AGENT = f"drainage/{__version__} (store feed poller)"
MAX_BYTES = 10 * 1024 * 1024
"""Largest feed document read (Shopify's product feed is paginated at 50 entries, far below this)."""

@dataclass(frozen=True)
class Fetched:
    """One response: 200 with the document, or 304 (not modified since the validators we sent)."""

    status: int
    url: str
    content: bytes = b""
    etag: str | None = None
    last_modified: str | None = None
    content_type: str | None = None

    @property
    def not_modified(self) -> bool:
        return self.status == 304


@functools.cache
def _tls() -> ssl.SSLContext:
    """One TLS context for every client (building one loads the CA bundle: tens of milliseconds each time)."""
    return ssl.create_default_context(cafile=certifi.where())


def new_client() -> httpx.AsyncClient:
    """The HTTP client feeds are fetched with: drainage's user agent, redirects followed."""
    return httpx.AsyncClient(verify=_tls(), headers={"User-Agent": USER_AGENT, "Accept": "application/atom+xml, "
                                      "application/rss+xml, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"},
                             follow_redirects=True)


async def fetch(client: httpx.AsyncClient, url: str, *, timeout: float, etag: str | None = None,
                last_modified: str | None = None) -> Fetched:
    """GET `url`, conditionally when validators are given; raise FeedError on any failure.

    `timeout` bounds the whole exchange (connect, headers and body), not only each read.
    """
    headers = {}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    try:
        async with asyncio.timeout(timeout):
            return await _get(client, url, headers, timeout)
    except TimeoutError:
        raise FeedError(f"timed out after {timeout:g}s") from None
    except httpx.TimeoutException:
        raise FeedError(f"timed out after {timeout:g}s") from None
    except httpx.HTTPError as exc:
        raise FeedError(f"cannot fetch: {exc.__class__.__name__}: {exc or 'no details'}") from None


async def _get(client: httpx.AsyncClient, url: str, headers: dict[str, str], timeout: float) -> Fetched:
    async with client.stream("GET", url, headers=headers, timeout=timeout) as response:
        final = str(response.url)
        if response.status_code == 304:
            return Fetched(304, final, etag=response.headers.get("etag"),
                           last_modified=response.headers.get("last-modified"))
        if response.status_code >= 400 or response.status_code < 200:
            reason = f"HTTP {response.status_code} {response.reason_phrase}".strip()
            if response.status_code in (404, 410):
                reason += ": check the feed URL"
            raise FeedError(reason, retry_after(response.headers.get("retry-after")))
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > MAX_BYTES:
                limit = f"{MAX_BYTES // 2**20} MB" if MAX_BYTES >= 2**20 else f"{MAX_BYTES} bytes"
                raise FeedError(f"the document is larger than {limit}")
            chunks.append(chunk)
        return Fetched(response.status_code, final, b"".join(chunks), response.headers.get("etag"),
                       response.headers.get("last-modified"), response.headers.get("content-type"))


def retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a Retry-After header (delta seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
