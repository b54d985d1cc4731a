"""How platforms count the length of a post."""

from __future__ import annotations


def count_length(text: str, counting: str) -> int:
    """Length of `text` under a counting rule: 'chars' (code points) or 'utf16' (UTF-16 code units)."""
    if counting == "utf16":
        return len(text.encode("utf-16-le")) // 2
    if counting == "x-weighted":
        return x_weighted_length(text)
    return len(text)


def x_weighted_length(text: str) -> int:
    """X's weighted length: any URL counts 23, CJK and emoji weigh 2 (twitter-text rules)."""
    from twitter_text import parse_tweet  # optional dependency of the X plugin

    return int(parse_tweet(text).weightedLength)
