"""Hostile and messy feed documents, built here so that their shape is plain to read."""

from __future__ import annotations


def entity_bomb(references: int = 20_000) -> bytes:
    """An RSS document (~110 kB) whose item title references one 5 kB entity `references` times, and whose
    description references a nested ('billion laughs') entity: gigabytes once expanded."""
    nested = ['<!ENTITY lol0 "lollollollollollollollollollol">']
    nested += [f'<!ENTITY lol{n} "{f"&lol{n - 1};" * 10}">' for n in range(1, 10)]
    return ('<?xml version="1.0"?>\n<!DOCTYPE rss [\n'
            f'<!ENTITY big "{"x" * 5000}">\n' + "\n".join(nested) + "\n]>\n"
            '<rss version="2.0"><channel><title>Bomb</title><link>https://shop.example.com/</link>\n'
            f'<item><title>{"&big;" * references}</title><link>https://shop.example.com/products/bomb</link>'
            '<guid>bomb-1</guid><description>&lol9;</description></item>\n'
            '</channel></rss>\n').encode()


def rss(*items: str, title: str = "Shop") -> bytes:
    """An RSS 2.0 document around raw <item> elements."""
    return (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>{title}</title>'
            f'<link>https://shop.example.com/</link>{"".join(items)}</channel></rss>').encode()


def item(guid: str, title: str | None, link: str | None = "default", *, author: str | None = None,
         hour: int = 12) -> str:
    """One RSS item; `link` 'default' is a product page named after the guid, None leaves the link out."""
    parts = [f'<guid isPermaLink="false">{guid}</guid>', f"<pubDate>Sun, 01 Mar 2026 {hour:02d}:00:00 +0000</pubDate>"]
    if title is not None:
        parts.append(f"<title>{title}</title>")
    if link is not None:
        parts.append(f"<link>{'https://shop.example.com/products/' + guid if link == 'default' else link}</link>")
    if author is not None:
        parts.append(f"<author>{author}</author>")
    return f"<item>{''.join(parts)}</item>"


def big_feed(entries: int) -> bytes:
    """A well-formed feed with many entries (slow to parse, for the time limit)."""
    return rss(*(item(f"p{n}", f"Product {n} " + "wool " * 20, author="shop@example.com (Shop)")
                 for n in range(entries)))
