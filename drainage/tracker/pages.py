"""The few HTML pages the tracker shows to visitors. Nothing from the request is ever echoed."""

from __future__ import annotations

from html import escape

_NOT_FOUND = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="robots" content="noindex"><title>Link not found</title>
<style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:15vh auto;padding:0 1rem;color:#222}}
a{{color:#0b57d0}}</style></head>
<body><h1>This link has expired or does not exist</h1>
<p>You can still visit <a href="{home}">{name}</a>.</p></body></html>
"""


def not_found_page(store_name: str, home: str) -> bytes:
    """The 404 page: a way on to the store's home page."""
    return _NOT_FOUND.format(home=escape(home, quote=True), name=escape(store_name)).encode()
