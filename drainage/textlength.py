"""How platforms count the length of a post."""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from twitter_text import extract_urls_with_indices, parse_tweet

MASTODON_URL_LENGTH = 23
"""What Mastodon counts for any http(s) URL (its instances' `characters_reserved_per_url`)."""

UNITS = {
    "chars": "characters",
    "utf16": "UTF-16 code units",
    "x-weighted": "long by X's weighted count (every URL counts 23, CJK characters and emoji 2)",
    "graphemes": "graphemes (user-perceived characters)",
    "mastodon": "long by Mastodon's count (graphemes; every URL counts 23)",
}
"""How each counting rule is named in messages: 'is 300 characters', 'is 290 long by X's weighted count'."""

_MENTION_DOMAIN = re.compile(r"(?<![\w/])(@\w+)@[\w.-]+\w")


def count_length(text: str, counting: str) -> int:
    """Length of `text` under a counting rule: 'chars' (code points), 'utf16' (UTF-16 code units),
    'x-weighted' (X's weighted length), 'graphemes' (extended grapheme clusters, as Bluesky counts) or
    'mastodon' (graphemes, every URL 23, a remote mention only by its user name)."""
    if counting == "utf16":
        return len(text.encode("utf-16-le")) // 2
    if counting == "x-weighted":
        return x_weighted_length(text)
    if counting == "graphemes":
        return grapheme_length(text)
    if counting == "mastodon":
        return mastodon_length(text)
    return len(text)


def x_weighted_length(text: str) -> int:
    """X's weighted length: any URL counts 23, CJK and emoji weigh 2 (twitter-text's v3 configuration)."""
    return int(parse_tweet(text).weightedLength)


def grapheme_length(text: str) -> int:
    """Extended grapheme clusters (Unicode UAX #29): a flag, a skin-toned or family emoji each count 1."""
    return len(_graphemes().findall(text))


@cache
def _graphemes() -> Any:
    r"""The `regex` module's `\X` (the stdlib's `re` has none), imported on first use: most commands never count
    graphemes, and every command's start-up would pay for the import."""
    import regex

    return regex.compile(r"\X")


def mastodon_length(text: str, url_length: int = MASTODON_URL_LENGTH) -> int:
    """Mastodon's count: each http(s) URL counts `url_length`, '@user@domain' counts as '@user', the rest
    in graphemes (its StatusLengthValidator, whose URLs are found by the same twitter-text extractor)."""
    parts, end = [], 0
    for found in extract_urls_with_indices(text):
        start, stop = found["indices"]
        if "://" not in found["url"]:
            continue  # Mastodon links only URLs with a scheme
        parts += [text[end:start], "x" * url_length]
        end = stop
    parts.append(text[end:])
    return grapheme_length(_MENTION_DOMAIN.sub(r"\1", "".join(parts)))
