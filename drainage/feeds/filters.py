"""Which entries of a feed are posted: categories, tags, price range and title, all that are set must pass."""

from __future__ import annotations

import re

from drainage.campaigns import FeedFilters
from drainage.feeds.entries import FeedEntry


def rejection(entry: FeedEntry, filters: FeedFilters) -> str | None:
    """Why `entry` is filtered out, in words; None when it passes every filter."""
    if filters.categories and not _overlap(filters.categories, entry.categories):
        return (f"not in categories {_list(filters.categories)} "
                f"({'its categories: ' + _list(entry.categories) if entry.categories else 'it has none'})")
    if filters.tags and not _overlap(filters.tags, entry.tags):
        return (f"has none of the tags {_list(filters.tags)} "
                f"({'its tags: ' + _list(entry.tags) if entry.tags else 'it has none'})")
    if filters.min_price is not None or filters.max_price is not None:
        if entry.price is None:
            return "has no price (the feed's price filter needs one)"
        if filters.min_price is not None and entry.price < filters.min_price:
            return f"price {entry.price:g} is below min_price {filters.min_price:g}"
        if filters.max_price is not None and entry.price > filters.max_price:
            return f"price {entry.price:g} is above max_price {filters.max_price:g}"
    if filters.title is not None and not re.search(filters.title, entry.title, re.IGNORECASE):
        return f"title does not match '{filters.title}'"
    return None


def _overlap(wanted: list[str], have: tuple[str, ...]) -> bool:
    return bool({w.casefold().strip() for w in wanted} & {h.casefold().strip() for h in have})


def _list(values: list[str] | tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)
