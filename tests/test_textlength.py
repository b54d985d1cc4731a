"""X's weighted length (twitter-text-parser) and fitting posts to it, checked on generated text."""

from __future__ import annotations

from functools import partial

from hypothesis import given
from hypothesis import strategies as st

from drainage.channel import Limits
from drainage.render import fit_text
from drainage.textlength import count_length, mastodon_length, x_weighted_length

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
