"""Store fields feedparser cannot read: Shopify's product namespace and Google Merchant's.

feedparser flattens elements of namespaces it does not know (`s:variant` and the `s:price` inside it become
one string), so these are read from the same bytes with ElementTree (expat; no external entities are
fetched, and expat >= 2.4 refuses entity-expansion bombs):

- Shopify product Atom (`/collections/all.atom`): `s:type` (a category), `s:vendor`, `s:tag`, and each
  `s:variant`'s `s:price currency="USD"` (the lowest variant price is the entry's price);
- Google Merchant fields, written by WooCommerce product-feed plugins and others: `g:price`, `g:sale_price`
  ("49.00 USD"), `g:product_type`, `g:brand`, `g:image_link`.

Prices are read in the machine form these feeds use ("49.00", "49.00 USD"); anything else is no price.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from urllib.parse import urljoin

ATOM = "{http://www.w3.org/2005/Atom}"
RSS1 = "{http://purl.org/rss/1.0/}"
SHOPIFY = "{http://jadedpixel.com/-/spec/shopify}"
GOOGLE = "{http://base.google.com/ns/1.0}"

_PRICE = re.compile(r"^\s*(?:([A-Za-z]{3})\s+)?(\d{1,12}(?:\.\d{1,6})?)(?:\s+([A-Za-z]{3}))?\s*$")


@dataclass(frozen=True)
class Price:
    amount: Decimal
    currency: str | None = None


@dataclass
class StoreFields:
    """What one entry carries beyond RSS/Atom."""

    price: Price | None = None
    previous: Price | None = None  # a regular price above a sale price (Google Merchant)
    categories: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    vendor: str | None = None
    image: str | None = None
    shopify: bool = False


def parse_price(text: str | None, currency: str | None = None) -> Price | None:
    """'49.00', '49.00 USD' or 'USD 49.00' -> Price; anything else (negative, localised, garbage) -> None."""
    if text is None:
        return None
    match = _PRICE.match(text)
    if not match or (match.group(1) and match.group(3)):
        return None
    try:
        amount = Decimal(match.group(2))
    except InvalidOperation:  # pragma: no cover - the pattern only lets digits through
        return None
    code = (match.group(1) or match.group(3) or currency or "").upper() or None
    return Price(amount, code)


def read(content: bytes, base_url: str, encoding: str | None = None) -> dict[str, StoreFields]:
    """Store fields of every entry, keyed by 'id:<id or guid>' and by 'link:<link>' (empty if unreadable)."""
    parser = ET.XMLParser(encoding=encoding) if encoding else None
    try:
        root = ET.fromstring(content, parser=parser)
    except (ET.ParseError, ValueError, LookupError):
        return {}
    found: dict[str, StoreFields] = {}
    for element in root.iter():
        if element.tag not in (f"{ATOM}entry", "item", f"{RSS1}item"):
            continue
        fields = _fields(element, base_url)
        if fields is None:
            continue
        ident, link = _ids(element, base_url)
        if ident:
            found.setdefault(f"id:{ident}", fields)
        if link:
            found.setdefault(f"link:{link}", fields)
    return found


def _text(element: ET.Element | None) -> str:
    return (element.text or "").strip() if element is not None else ""


def _ids(entry: ET.Element, base_url: str) -> tuple[str, str]:
    ident = _text(entry.find(f"{ATOM}id")) or _text(entry.find("guid"))
    link = ""
    for candidate in entry.findall(f"{ATOM}link"):
        if candidate.get("rel", "alternate") == "alternate" and candidate.get("href"):
            link = candidate.get("href", "")
            break
    link = link or _text(entry.find("link")) or _text(entry.find(f"{RSS1}link"))
    return ident, urljoin(base_url, link.strip()) if link else ""


def _fields(entry: ET.Element, base_url: str) -> StoreFields | None:
    shopify = [child for child in entry if child.tag.startswith(SHOPIFY)]
    google = [child for child in entry if child.tag.startswith(GOOGLE)]
    if not shopify and not google:
        return None
    out = StoreFields(shopify=bool(shopify))
    if shopify:
        prices = [parse_price(_text(p), p.get("currency") or p.get("currencyCode"))
                  for p in entry.iter(f"{SHOPIFY}price")]
        out.price = min((p for p in prices if p is not None), key=lambda p: p.amount, default=None)
        out.categories += [t for t in (_text(e) for e in entry.findall(f"{SHOPIFY}type")) if t]
        out.tags += [t for t in (_text(e) for e in entry.findall(f"{SHOPIFY}tag")) if t]
        out.vendor = _text(entry.find(f"{SHOPIFY}vendor")) or None
        image = _text(entry.find(f"{SHOPIFY}image/{SHOPIFY}src")) or _text(entry.find(f"{SHOPIFY}image"))
        out.image = urljoin(base_url, image) if image else None
    if google:
        regular = parse_price(_text(entry.find(f"{GOOGLE}price")))
        sale = parse_price(_text(entry.find(f"{GOOGLE}sale_price")))
        if sale is not None and (regular is None or sale.amount < regular.amount):
            out.price, out.previous = sale, regular
        else:
            out.price = out.price or regular
        out.categories += [t for t in (_text(e) for e in entry.findall(f"{GOOGLE}product_type")) if t]
        out.vendor = out.vendor or _text(entry.find(f"{GOOGLE}brand")) or None
        image = _text(entry.find(f"{GOOGLE}image_link"))
        out.image = out.image or (urljoin(base_url, image) if image else None)
    return out
