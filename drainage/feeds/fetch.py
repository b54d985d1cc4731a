"""Fetching a feed: one conditional GET with httpx, then feedparser on the bytes.

feedparser's own fetching cannot be given a client, a total timeout or a size limit, so drainage fetches with
httpx and hands the bytes (with the final URL, to resolve relative links) to `feedparser.parse`. A document
feedparser had to guess at (`bozo`) is refused with the reason, except for the harmless cases (a wrong
declared encoding, a non-XML content type, an undeclared namespace prefix), so that a broken document never
replaces the last good state.
"""

from __future__ import annotations

import asyncio
import email.utils
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from xml.sax import SAXParseException

import feedparser
import httpx

from drainage import __version__

USER_AGENT = f"drainage/{__version__} (store feed poller)"
MAX_BYTES = 10 * 1024 * 1024
"""Largest feed document read (Shopify's product feed is paginated at 50 entries, far below this)."""

HARMLESS = (feedparser.CharacterEncodingOverride, feedparser.NonXMLContentType, feedparser.UndeclaredNamespace)


class FeedError(Exception):
    """A poll that failed: network, HTTP status, size, or a malformed document. The message says why."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


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


def new_client() -> httpx.AsyncClient:
    """The HTTP client feeds are fetched with: drainage's user agent, redirects followed."""
    return httpx.AsyncClient(headers={"User-Agent": USER_AGENT, "Accept": "application/atom+xml, "
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


def parse(content: bytes, url: str, content_type: str | None = None) -> Any:
    """feedparser's reading of a document (a FeedParserDict); FeedError when it is not a usable feed."""
    headers = {"content-location": url, "content-type": content_type or "application/xml"}
    parsed = feedparser.parse(content, response_headers=headers, sanitize_html=True, resolve_relative_uris=True)
    problem = parsed.get("bozo_exception") if parsed.get("bozo") else None
    looks_html = content.lstrip()[:200].lower().startswith((b"<!doctype html", b"<html"))
    if looks_html and not parsed.get("version"):
        raise FeedError("not an RSS or Atom feed: the URL returns an HTML page (look for the feed's own URL, "
                        "e.g. /collections/all.atom or /feed/)")
    if problem is not None and not isinstance(problem, HARMLESS):
        raise FeedError(f"malformed feed: {describe(problem)}")
    if not parsed.get("version") and not parsed.get("entries"):
        raise FeedError("not an RSS or Atom feed")
    return parsed


def describe(problem: BaseException) -> str:
    """A parse error as one line: what and where."""
    if isinstance(problem, SAXParseException):
        return f"{problem.getMessage()} at line {problem.getLineNumber()}, column {problem.getColumnNumber() + 1}"
    text = str(problem) or problem.__class__.__name__
    return text.splitlines()[0]
