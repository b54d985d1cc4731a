"""Feed entries: who an entry is (its identity) and what templates see of it.

Identity, in order: the entry's id (Atom `id`, RSS `guid`), else its link, else a hash of its title and link.
An id that several entries of the same document share is no identity at all (feeds that give every item the
site's URL as guid exist), so those entries fall back to their links, and links shared the same way fall
back to the hash (of title, link and the shared id). Entries identical in all three are one entry.

Fields: `title`, `url` (the link as the feed has it), `summary` (HTML stripped, whitespace collapsed, for
social posts; Shopify's vendor/type/price table is left out), `image` (media:content, media:thumbnail, an
image enclosure, Google's image_link, else the first <img> of the content or summary), `price`, `currency`
and `regular_price` where the feed carries them (see `storefields`), `categories`, `tags`, `author`, `vendor`,
`published`, `updated`, and `id`.
"""

from __future__ import annotations

import calendar
import hashlib
import html
import json
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin, urlsplit

from drainage.feeds import storefields
from drainage.feeds.parse import parse
from drainage.feeds.storefields import StoreFields

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".webp", ".avif")
TEMPLATE_FIELDS = ("id", "title", "url", "summary", "image", "price", "currency", "regular_price",
                   "previous_price", "categories", "tags", "author", "vendor", "published", "updated")
"""Every key of `entry` in a template (besides `link` and `event`, added when it is rendered)."""


@dataclass(frozen=True)
class FeedEntry:
    """One entry of a feed document, as drainage uses it."""

    identity: str
    title: str
    url: str | None = None
    id: str | None = None
    summary: str = ""
    image: str | None = None
    price: float | None = None
    currency: str | None = None
    regular_price: float | None = None
    categories: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    author: str | None = None
    vendor: str | None = None
    published: datetime | None = None
    updated: datetime | None = None
    position: int = 0  # place in the document, 0 first

    @property
    def digest(self) -> str:
        """The identity's hash: what the journal and the seen-entries table key the entry by."""
        return digest_of(self.identity)

    @property
    def order(self) -> float:
        """Posting order, oldest first: publication time, else update time, else reverse document order."""
        moment = self.published or self.updated
        return moment.timestamp() if moment else -float(self.position)

    def fingerprint(self) -> dict[str, Any]:
        """The fields a repost event compares with the last seen version."""
        return {"price": self.price, "currency": self.currency}

    def fields(self, previous_price: float | None = None) -> dict[str, Any]:
        """The entry as templates see it (`link` and `event` are added at rendering)."""
        return {"id": self.id, "title": self.title, "url": self.url, "summary": self.summary, "image": self.image,
                "price": self.price, "currency": self.currency, "regular_price": self.regular_price,
                "previous_price": previous_price, "categories": list(self.categories), "tags": list(self.tags),
                "author": self.author, "vendor": self.vendor, "published": self.published, "updated": self.updated}


def defect(entry: FeedEntry) -> str | None:
    """Why an entry cannot make a good post whatever the template (no headline, nowhere to send readers), or None."""
    if not entry.title:
        return "no title: a post needs a headline"
    if not entry.url:
        return "no link: the post would send readers nowhere"
    if urlsplit(entry.url).scheme not in ("http", "https"):
        return f"its link is not a web address: {entry.url[:80]}"
    return None


def digest_of(identity: str) -> str:
    return hashlib.sha256(identity.encode("utf-8")).hexdigest()[:32]


def fields_to_json(fields: dict[str, Any]) -> str:
    return json.dumps(fields, ensure_ascii=False, default=_json_value)


def _json_value(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def fields_from_json(text: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(text)
    for name in ("published", "updated"):
        if isinstance(data.get(name), str):
            data[name] = datetime.fromisoformat(data[name])
    return {name: data.get(name) for name in TEMPLATE_FIELDS}


def identities(raw: list[tuple[str, str, str]]) -> list[str]:
    """Identity of each (id, link, title) of one document, by the rules in this module's docstring."""
    ids = Counter(i for i, _, _ in raw if i)
    links = Counter(link for _, link, _ in raw if link)
    out = []
    for ident, link, title in raw:
        if ident and ids[ident] == 1:
            out.append(f"id:{ident}")
        elif link and links[link] == 1:
            out.append(f"link:{link}")
        else:  # the shared id goes into the hash too, so that it still tells these entries from id-less ones
            material = f"{title}\n{link}\n{ident}".encode()
            out.append(f"hash:{hashlib.sha256(material).hexdigest()}")
    return out


@dataclass(frozen=True)
class Document:
    """A good feed document: its title and entries (each identity once, in document order)."""

    title: str
    entries: list[FeedEntry]


def read_document(content: bytes, url: str, content_type: str | None = None) -> Document:
    """Parse a fetched document (FeedError when it is not a usable feed) into entries with store fields."""
    parsed, defused = parse(content, url, content_type)
    extras = storefields.read(defused, url)
    title = _clean((parsed.get("feed") or {}).get("title"))
    return Document(title, build_entries(parsed, extras, url))


def build_entries(parsed: Any, extras: dict[str, StoreFields], base_url: str) -> list[FeedEntry]:
    """The entries of a feedparser result, with identities and store fields; each identity once."""
    raw = [(_clean(e.get("id")), _clean(e.get("link")), _clean(e.get("title"))) for e in parsed.get("entries", [])]
    out: list[FeedEntry] = []
    seen: set[str] = set()
    for position, (entry, identity) in enumerate(zip(parsed.get("entries", []), identities(raw), strict=True)):
        if identity in seen:
            continue
        seen.add(identity)
        ident, link, _ = raw[position]
        store = extras.get(f"id:{ident}") if ident else None
        store = store or (extras.get(f"link:{link}") if link else None) or StoreFields()
        out.append(_entry(entry, identity, ident, link, store, base_url, position))
    return out


def _entry(entry: Any, identity: str, ident: str, link: str, store: StoreFields, base_url: str,
           position: int) -> FeedEntry:
    title = _plain(entry.get("title"), (entry.get("title_detail") or {}).get("type"))
    summary_html, summary_type = _summary(entry)
    found = html_text(summary_html, drop_tables=store.shopify) if summary_type != "text/plain" else None
    summary = found.text if found else " ".join(summary_html.split())
    base = link or base_url
    image = _image(entry, store, base, found)
    # WordPress writes term names HTML-escaped inside CDATA ('Wool &amp; Cashmere'): decode them once
    categories = _unique([*(html.unescape(_clean(t.get("term") or t.get("label"))) for t in entry.get("tags") or []),
                          *store.categories])
    price = store.price
    return FeedEntry(
        identity=identity, title=title, url=link or None, id=ident or None, summary=summary, image=image,
        price=float(price.amount) if price else None, currency=price.currency if price else None,
        regular_price=float(store.previous.amount) if store.previous else None,
        categories=tuple(categories), tags=tuple(_unique([*store.tags, *categories])),
        author=_plain(entry.get("author"), (entry.get("author_detail") or {}).get("type")) or None,
        vendor=store.vendor,
        # dict.get: feedparser's own get() maps a missing 'updated' to 'published' with a DeprecationWarning
        published=_moment(dict.get(entry, "published_parsed") or dict.get(entry, "updated_parsed")),
        updated=_moment(dict.get(entry, "updated_parsed")), position=position)


def _summary(entry: Any) -> tuple[str, str]:
    detail = entry.get("summary_detail") or {}
    if entry.get("summary"):
        return str(entry["summary"]), str(detail.get("type") or "text/html")
    for content in entry.get("content") or []:
        if content.get("value"):
            return str(content["value"]), str(content.get("type") or "text/html")
    return "", "text/plain"


def _image(entry: Any, store: StoreFields, base: str, summary: _HtmlText | None) -> str | None:
    candidates: list[str | None] = [store.image]
    for media in entry.get("media_content") or []:
        kind = str(media.get("medium") or media.get("type") or "")
        if kind.startswith("image") or _looks_like_image(media.get("url")):
            candidates.append(media.get("url"))
    candidates += [m.get("url") for m in entry.get("media_thumbnail") or []]
    candidates += [link.get("href") for link in entry.get("links") or []
                   if link.get("rel") == "enclosure" and str(link.get("type") or "").startswith("image")]
    for content in entry.get("content") or []:
        candidates.append(html_text(str(content.get("value") or "")).image)
    candidates.append(summary.image if summary else None)
    for candidate in candidates:
        if candidate and candidate.strip():
            absolute = urljoin(base, candidate.strip())
            if urlsplit(absolute).scheme in ("http", "https"):
                return absolute
    return None


def _looks_like_image(url: Any) -> bool:
    return isinstance(url, str) and urlsplit(url).path.lower().endswith(IMAGE_SUFFIXES)


def _moment(parsed: Any) -> datetime | None:
    if not parsed:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(parsed), UTC)
    except (OverflowError, ValueError, TypeError, OSError):
        return None


def _plain(value: Any, kind: Any) -> str:
    """A text construct as plain text: HTML and XHTML ones stripped of their markup (entities decoded)."""
    text = _clean(value)
    if kind in ("text/html", "application/xhtml+xml", "html", "xhtml") or (kind != "text/plain" and "<" in text):
        return html_text(text).text
    return text


def _clean(value: Any) -> str:
    return " ".join(str(value).split()) if value else ""


def _unique(values: list[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for value in values:
        if value and value.casefold() not in seen:
            seen.add(value.casefold())
            out.append(value)
    return out


@dataclass
class _HtmlText:
    text: str
    image: str | None


def html_text(markup: str, *, drop_tables: bool = False) -> _HtmlText:
    """Plain text of an HTML fragment (entities decoded, whitespace collapsed) and its first image."""
    parser = _TextParser(drop_tables)
    parser.feed(markup)
    parser.close()
    return _HtmlText(" ".join("".join(parser.parts).split()), parser.image)


class _TextParser(HTMLParser):
    """Collects text outside script/style (and tables, for Shopify's summary) and the first <img src>."""

    SKIP = frozenset({"script", "style", "template", "noscript", "head", "title", "iframe", "object"})
    BREAKS = frozenset({"p", "div", "br", "li", "tr", "td", "th", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol",
                        "table", "blockquote", "section", "article", "header", "footer", "figure", "figcaption",
                        "pre", "hr", "dd", "dt"})

    def __init__(self, drop_tables: bool) -> None:
        super().__init__(convert_charrefs=True)
        self.skip = self.SKIP | ({"table"} if drop_tables else set())
        self.parts: list[str] = []
        self.image: str | None = None
        self.depth = 0  # how many skipped elements we are inside

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img" and self.image is None:
            src = dict(attrs).get("src")
            self.image = src.strip() if src and src.strip() else None
        if tag in self.skip:
            self.depth += 1
        if tag in self.BREAKS:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.skip and self.depth:
            self.depth -= 1
        if tag in self.BREAKS:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self.depth:
            self.parts.append(data)
