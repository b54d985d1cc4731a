"""How platforms count the length of a post."""

from __future__ import annotations

from twitter_text import parse_tweet

UNITS = {
    "chars": "characters",
    "utf16": "UTF-16 code units",
    "x-weighted": "long by X's weighted count (every URL counts 23, CJK characters and emoji 2)",
}
"""How each counting rule is named in messages: 'is 300 characters', 'is 290 long by X's weighted count'."""


def count_length(text: str, counting: str) -> int:
    """Length of `text` under a counting rule: 'chars' (code points), 'utf16' (UTF-16 code units) or
    'x-weighted' (X's weighted length)."""
    if counting == "utf16":
        return len(text.encode("utf-16-le")) // 2
    if counting == "x-weighted":
        return x_weighted_length(text)
    return len(text)


def x_weighted_length(text: str) -> int:
    """X's weighted length: any URL counts 23, CJK and emoji weigh 2 (twitter-text's v3 configuration)."""
    return int(parse_tweet(text).weightedLength)
