"""Reading a fetched document with feedparser, defused first.

A feed is data from the internet, so before feedparser sees it the document is decoded to UTF-8 the way
feedparser itself decodes it (`feedparser.encodings.convert_to_utf8`) and then:

- a document that declares entities (`<!ENTITY ...>` before its first element, or outside CDATA sections
  and comments after it) is refused, the way defusedxml refuses them: expat rejects an expansion bomb, but
  feedparser then falls back to its loose parser, which expands it (one entity referenced 20,000 times is
  gigabytes). No store feed needs one;
- HTML named entities (`&nbsp;`, `&eacute;`), which XML does not define, become character references, so the
  strict parser reads them the way feedparser's loose parser would instead of failing the document.

A document feedparser had to guess at (`bozo`) is refused with the reason, except for the harmless cases (a
wrong declared encoding, a non-XML content type, an undeclared namespace prefix, an entity still unknown after
the above, which feedparser's loose parser keeps as text), so that a broken document never replaces the last
good state. Time and memory are bounded by the worker process this runs in (`drainage.feeds.sandbox`).
"""

from __future__ import annotations

import re
from html.entities import name2codepoint
from typing import Any
from xml.sax import SAXParseException

import feedparser
from feedparser.encodings import convert_to_utf8

HARMLESS = (feedparser.CharacterEncodingOverride, feedparser.NonXMLContentType, feedparser.UndeclaredNamespace)
XML_ENTITIES = frozenset({"amp", "lt", "gt", "quot", "apos"})

_OPAQUE = re.compile(rb"(<!\[CDATA\[.*?(?:\]\]>|\Z)|<!--.*?(?:-->|\Z))", re.DOTALL)
"""CDATA sections and comments: their text is not markup, so nothing inside them is declared or replaced."""
_DECLARATION = re.compile(rb"<!\s*ENTITY", re.IGNORECASE)
_FIRST_ELEMENT = re.compile(rb"<\w")
_NAMED = re.compile(rb"&([A-Za-z][A-Za-z0-9]{1,31});")


class FeedError(Exception):
    """A poll that failed: network, HTTP status, size, or a malformed document. The message says why."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def defuse(content: bytes, content_type: str | None = None) -> bytes:
    """The document as UTF-8 with HTML named entities as character references; FeedError if it declares
    entities (see the module docstring)."""
    scratch: dict[str, Any] = {}
    data = convert_to_utf8({"content-type": content_type or "application/xml"}, content, scratch)
    if not scratch.get("encoding"):  # undecodable: feedparser reads the bytes with its loose parser
        data = content
    # NULs dropped: a UTF-16 or UTF-32 document that passed for UTF-8 still shows its declarations
    probe = data.replace(b"\x00", b"") if b"\x00" in data else data
    # before the first element, even a commented declaration counts: feedparser's loose parser finds
    # declarations there by pattern, comments or not
    start = _FIRST_ELEMENT.search(probe)
    head, body = (probe[:start.start()], probe[start.start():]) if start else (probe, b"")
    if _DECLARATION.search(head) or any(_DECLARATION.search(part) for part in _OPAQUE.split(body)[0::2]):
        raise FeedError("the document declares entities (<!ENTITY ...>): refused, as entity expansion can "
                        "exhaust memory; no RSS or Atom feed needs one")
    parts = _OPAQUE.split(data)
    parts[0::2] = [_NAMED.sub(_character_reference, part) for part in parts[0::2]]
    return b"".join(parts)


def _character_reference(match: re.Match[bytes]) -> bytes:
    name = match.group(1).decode("ascii")
    if name in XML_ENTITIES or name not in name2codepoint:
        return match.group(0)
    return f"&#{name2codepoint[name]};".encode("ascii")


def parse(content: bytes, url: str, content_type: str | None = None) -> tuple[Any, bytes]:
    """feedparser's reading of a document (a FeedParserDict) and the defused UTF-8 bytes it read; FeedError
    when it is not a usable feed."""
    looks_html = content.lstrip()[:200].lower().startswith((b"<!doctype html", b"<html"))
    data = defuse(content, content_type)
    headers = {"content-location": url, "content-type": "application/xml; charset=utf-8"}
    parsed = feedparser.parse(data, response_headers=headers, sanitize_html=True, resolve_relative_uris=True)
    problem = parsed.get("bozo_exception") if parsed.get("bozo") else None
    if looks_html and not parsed.get("version"):
        raise FeedError("not an RSS or Atom feed: the URL returns an HTML page (look for the feed's own URL, "
                        "e.g. /collections/all.atom or /feed/)")
    if problem is not None and not isinstance(problem, HARMLESS) and not _unknown_entity(problem):
        raise FeedError(f"malformed feed: {describe(problem)}")
    if not parsed.get("version") and not parsed.get("entries"):
        raise FeedError("not an RSS or Atom feed")
    return parsed, data


def _unknown_entity(problem: BaseException) -> bool:
    return isinstance(problem, SAXParseException) and problem.getMessage() == "undefined entity"


def describe(problem: BaseException) -> str:
    """A parse error as one line: what and where."""
    if isinstance(problem, SAXParseException):
        return f"{problem.getMessage()} at line {problem.getLineNumber()}, column {problem.getColumnNumber() + 1}"
    text = str(problem) or problem.__class__.__name__
    return text.splitlines()[0]
