"""X's weighted length (drainage.textlength, twitter-text v3 rules) and fitting posts to it, checked on generated
text."""

from __future__ import annotations

import unicodedata
from functools import partial

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drainage.channel import Limits
from drainage.render import fit_text
from drainage.textlength import X_LIGHT_RANGES, count_length, mastodon_length, x_url_spans, x_weighted_length

pytestmark = pytest.mark.pure  # no database: CI's PostgreSQL pass skips it

PATHS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=300)
CJK = st.text(alphabet=st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF), min_size=1, max_size=100)
KANA = st.text(alphabet=st.characters(min_codepoint=0x3041, max_codepoint=0x3096), min_size=1, max_size=100)
EMOJI = st.lists(st.sampled_from(["😀", "🧣", "🎁", "❤️", "👍🏽", "🇩🇪", "👩‍👩‍👧"]), min_size=1, max_size=20)
LATIN = st.text(alphabet="abcdefghijklmnopqrstuvwxyz ABC,!?", min_size=1, max_size=200)  # no '.': see below


@given(PATHS)
def test_any_url_weighs_23(path: str) -> None:
    assert x_weighted_length(f"https://go.example.com/c/{path}") == 23
    assert x_weighted_length(f"see https://shop.example.com/{path}?utm_source=x now") == 4 + 23 + 4


@given(st.one_of(CJK, KANA))
def test_cjk_characters_weigh_2(text: str) -> None:
    assert x_weighted_length(text) == 2 * len(text)


@given(EMOJI)
def test_each_emoji_weighs_2_even_when_made_of_several_code_points(emoji: list[str]) -> None:
    assert x_weighted_length("".join(emoji)) == 2 * len(emoji)


@given(LATIN)
def test_latin_characters_weigh_1(text: str) -> None:
    assert x_weighted_length(text) == len(text)


@given(LATIN, CJK, PATHS)
def test_weights_add_up(latin: str, cjk: str, path: str) -> None:
    text = f"{latin} {cjk} https://go.example.com/c/{path}"
    assert count_length(text, "x-weighted") == len(latin) + 1 + 2 * len(cjk) + 1 + 23


@given(st.lists(st.one_of(LATIN, CJK, EMOJI.map("".join)), min_size=1, max_size=12), PATHS)
def test_truncated_posts_fit_x_and_keep_the_link_whole(parts: list[str], path: str) -> None:
    link = f"https://go.example.com/c/{path}"
    text = " ".join(parts) + " " + link
    limits = Limits(max_length=280, counting="x-weighted")
    fitted = fit_text(text, 280, partial(count_length, counting="x-weighted"))
    assert limits.count(fitted) <= 280
    assert fitted.endswith(link)


def test_a_bare_domain_is_a_link_to_x() -> None:
    assert x_weighted_length("Made in A.BA") == 8 + 23  # .ba is a country's domain: X links it, and counts 23
    assert x_weighted_length("Made in Sarajevo.") == 17


def test_utf16_counts_code_units() -> None:
    assert count_length("a😀", "utf16") == 3
    assert count_length("a😀", "chars") == 2


def _light(char: str) -> bool:
    return any(low <= ord(char) <= high for low, high in X_LIGHT_RANGES)


PLAIN = st.characters(exclude_categories=("Cs", "So", "Sk", "Cn", "Co", "Mn", "Me", "Mc"),
                      exclude_characters=".\r\u200d\ufe0f#*0123456789")


@given(st.lists(PLAIN, min_size=1, max_size=60))
def test_each_code_point_weighs_by_its_range(chars: list[str]) -> None:
    text = unicodedata.normalize("NFC", "".join(chars))
    assert x_weighted_length(text) == sum(1 if _light(c) else 2 for c in text)


@given(st.lists(st.sampled_from(["👩", "👨", "👧", "🧑", "💻", "🚀", "❤️", "🔥"]), min_size=2, max_size=5),
       st.sampled_from(["", "\U0001f3fb", "\U0001f3fd", "\U0001f3ff"]))
def test_a_zwj_sequence_with_skin_tones_is_one_emoji(parts: list[str], tone: str) -> None:
    sequence = "\u200d".join(part + tone if part[0] in "👩👨👧🧑" else part for part in parts)
    assert x_weighted_length(f"a {sequence} b") == 2 + 2 + 2


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyzàéîõüçñ", min_size=1, max_size=40))
def test_composed_and_decomposed_text_weigh_the_same(text: str) -> None:
    assert x_weighted_length(unicodedata.normalize("NFD", text)) == x_weighted_length(text) == len(
        unicodedata.normalize("NFC", text))


@given(PATHS, st.sampled_from([".", ",", "!", "?", ":", ";", ")", "'", '"']))
def test_sentence_punctuation_after_a_url_is_not_part_of_it(path: str, punct: str) -> None:
    text = f"Buy it (now) at https://shop.example.com/p/{path}{punct} thanks"
    assert x_url_spans(text) == [(16, 16 + len(f"https://shop.example.com/p/{path}"))]
    assert x_weighted_length(text) == 16 + 23 + 1 + 7


@given(LATIN, LATIN)
def test_a_bare_domain_counts_only_with_a_top_level_domain_x_knows(before: str, after: str) -> None:
    assert x_weighted_length(f"{before} shop.example.de {after}") == len(before) + 1 + 23 + 1 + len(after)
    assert x_weighted_length(f"{before} node.js {after}") == len(before) + 9 + len(after)  # .js is no TLD


def test_where_x_sees_urls_and_where_not() -> None:
    assert x_weighted_length("write to me@shop.com") == 20  # an address, not a link
    assert x_weighted_length("http://twitter.com/これは日本語です。example.com中国語") == 23 + 18 + 23 + 6
    assert x_weighted_length("(https://x.com/a_(b))") == 1 + 23 + 1  # balanced parentheses belong to the URL
    assert x_weighted_length("see https://x.com/a.") == 4 + 23 + 1
    assert x_weighted_length("shop.example.com:8080/p?q=1, ok") == 23 + 4
    assert x_weighted_length("https://localhost/x") == 19  # no top-level domain
    assert x_weighted_length("foo_bar.com") == 11
    assert x_weighted_length("1️⃣ #️⃣ 🇩🇪 🏴\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f ©") == 5 * 2 + 4
    assert x_weighted_length("line\r\nbreak") == 10


@given(EMOJI, LATIN)
def test_graphemes_count_each_emoji_once_however_many_code_points(emoji: list[str], latin: str) -> None:
    text = latin + "".join(emoji) + "e\u0301"  # and an e with a combining acute accent
    assert count_length(text, "graphemes") == len(latin) + len(emoji) + 1


@given(LATIN, EMOJI, PATHS)
def test_mastodon_counts_any_url_23_and_a_remote_mention_by_its_user_name(latin: str, emoji: list[str],
                                                                           path: str) -> None:
    text = f"{latin} {''.join(emoji)} https://shop.example.com/{path}?utm_source=m @shop@mastodon.social"
    assert count_length(text, "mastodon") == len(latin) + 1 + len(emoji) + 1 + 23 + 1 + len("@shop")


def test_mastodon_links_only_urls_with_a_scheme() -> None:
    assert count_length("see shop.example.com", "mastodon") == 20
    assert mastodon_length("see https://shop.example.com/a", url_length=30) == 4 + 30


@given(st.lists(st.one_of(LATIN, EMOJI.map("".join)), min_size=1, max_size=40), PATHS)
def test_truncated_posts_fit_bluesky_in_graphemes_and_keep_the_link_whole(parts: list[str], path: str) -> None:
    link = f"https://go.example.com/c/{path[:60]}"
    fitted = fit_text(" ".join(parts) + " " + link, 300, partial(count_length, counting="graphemes"))
    assert count_length(fitted, "graphemes") <= 300
    assert fitted.endswith(link)
