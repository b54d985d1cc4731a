"""How platforms count the length of a post, including X's weighted length.

X counts by twitter-text's v3 configuration: every code point weighs 200 (scale 100, so 2) except those in four
ranges (Latin, Cyrillic, Greek, Hebrew, Arabic, Indic... up to U+10FF, and some general punctuation) that weigh
100; any URL weighs 23 whatever its length; an emoji, however many code points it is made of (skin tones,
ZWJ families, flags, keycaps), weighs 2. The text is NFC-normalized first. URLs are found as twitter-text finds
them: with a scheme, or bare domains ending in a top-level domain X knows (`drainage/data/x-tlds.txt`).
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache
from pathlib import Path
from typing import Any

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

X_URL_LENGTH = 23
X_LIGHT_RANGES = ((0x0000, 0x10FF), (0x2000, 0x200D), (0x2010, 0x201F), (0x2032, 0x2037))
"""Code points that weigh 1 (twitter-text v3 `ranges` with weight 100); all others weigh 2."""

_EXTENDED_PICTOGRAPHIC = (
    "\u00a9\u00ae\u203c\u2049\u2122\u2139\u2194-\u2199\u21a9\u21aa\u231a\u231b\u2328\u23cf\u23e9-\u23f3"
    "\u23f8-\u23fa\u24c2\u25aa\u25ab\u25b6\u25c0\u25fb-\u25fe\u2600-\u27bf\u2934\u2935\u2b05-\u2b07\u2b1b\u2b1c"
    "\u2b50\u2b55\u3030\u303d\u3297\u3299\U0001f000-\U0001faff"
)
_ONE_EMOJI = (f"[{_EXTENDED_PICTOGRAPHIC}](?:\ufe0f|[\U0001f3fb-\U0001f3ff])?"
              "(?:[\U000e0020-\U000e007e]+\U000e007f)?")
_EMOJI = re.compile(
    "[\U0001f1e6-\U0001f1ff]{2}"  # a flag: two regional indicators
    "|[#*0-9]\ufe0f?\u20e3"  # a keycap
    f"|{_ONE_EMOJI}(?:\u200d{_ONE_EMOJI})*"  # a pictograph with its presentation, skin tone, tags and ZWJ partners
)

_PATH_CHARS = r"[A-Za-z0-9!*';:=+,.$/%#\[\]\-_~&|@()?\u00c0-\u024f\u0400-\u04ff]"
_URL = re.compile(
    r"(?<![A-Za-z0-9@$#\uff20\uff03])"  # not inside a word, a mention, a cashtag or a hashtag
    r"(?:(?P<scheme>https?://)(?P<host>[^\W_](?:[\w-]*[^\W_])?(?:\.[^\W_](?:[\w-]*[^\W_])?)*)"
    r"|(?P<bare>(?:[A-Za-z0-9](?:[A-Za-z0-9_-]*[A-Za-z0-9])?\.)+[A-Za-z0-9-]+))"
    rf"(?P<rest>(?::[0-9]{{1,5}})?[/?]{_PATH_CHARS}*)?",
    re.IGNORECASE,
)
_URL_ENDING = re.compile(r"[A-Za-z0-9=_#/+\-\u00c0-\u024f\u0400-\u04ff]")
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
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n"))
    total = 0
    at = 0
    for start, end in x_url_spans(text):
        total += _weigh_plain(text[at:start]) + X_URL_LENGTH
        at = end
    return total + _weigh_plain(text[at:])


def x_url_spans(text: str) -> list[tuple[int, int]]:
    """Where X sees URLs in `text`: (start, end) index pairs, in order."""
    if "." not in text:
        return []
    spans: list[tuple[int, int]] = []
    for match in _URL.finditer(text):
        span = _url_span(text, match)
        if span is not None:
            spans.append(span)
    return spans


def _url_span(text: str, match: re.Match[str]) -> tuple[int, int] | None:
    host = match["host"] or match["bare"]
    start = match.start()
    if match["bare"] is not None and start > 0 and text[start - 1] in "-_./":
        return None
    kept = _known_domain(host)
    if kept is None:
        return None
    end = start + len(match["scheme"] or "") + len(kept)
    rest = match["rest"] or ""
    if kept != host or not rest:
        return (start, end) if text[end:end + 1] not in ("@", "+") else None
    return start, end + len(_trim_url_ending(rest))


def _known_domain(host: str) -> str | None:
    """`host` cut after its last label that is a top-level domain X knows (so 'shop.com中国' keeps 'shop.com');
    None when there is none after at least one other label."""
    labels = host.split(".")
    tlds = _x_tlds()
    for count in range(len(labels), 1, -1):
        last = labels[count - 1].lower()
        if "_" in labels[count - 2]:  # subdomains may hold '_', the name before the TLD may not
            return None
        if last in tlds:
            return ".".join(labels[:count])
        for size in range(len(last) - 1, 1, -1):  # a TLD followed by text that is not ASCII: 'com中国'
            if last[:size] in tlds and not last[size].isascii():
                return ".".join([*labels[:count - 1], labels[count - 1][:size]])
    return None


def _trim_url_ending(rest: str) -> str:
    """A URL's port, path and query without the punctuation that ends the sentence around it: cut at a
    parenthesis that is not balanced, then back to the last character a URL may end with."""
    depth, opened = 0, []
    for index, char in enumerate(rest):
        if char == "(":
            opened.append(index)
            depth += 1
        elif char == ")":
            if not depth:
                rest = rest[:index]
                break
            opened.pop()
            depth -= 1
    if opened:
        rest = rest[:opened[0]]
    while rest and not (rest[-1] == ")" or _URL_ENDING.fullmatch(rest[-1])):
        rest = rest[:-1]
    return rest


def _weigh_plain(text: str) -> int:
    total = 0
    at = 0
    for emoji in _EMOJI.finditer(text):
        total += _weigh_chars(text[at:emoji.start()]) + 2
        at = emoji.end()
    return total + _weigh_chars(text[at:])


def _weigh_chars(text: str) -> int:
    return sum(1 if any(low <= ord(char) <= high for low, high in X_LIGHT_RANGES) else 2 for char in text)


@cache
def _x_tlds() -> frozenset[str]:
    lines = (Path(__file__).parent / "data" / "x-tlds.txt").read_text(encoding="utf-8").splitlines()
    return frozenset(name for line in lines if not line.startswith("#") for name in line.split())



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
    for start, stop in x_url_spans(text):
        if "://" not in text[start:stop]:
            continue  # Mastodon links only URLs with a scheme
        parts += [text[end:start], "x" * url_length]
        end = stop
    parts.append(text[end:])
    return grapheme_length(_MENTION_DOMAIN.sub(r"\1", "".join(parts)))
