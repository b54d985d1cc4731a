"""Rendering: price / hashtags / shorten filters, fitting a post to a limit with links whole, the sandbox."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jinja2 import TemplateError, UndefinedError
from jinja2.sandbox import SecurityError

from drainage.links import LinkError
from drainage.render import LinkContext, Renderer, fit_text, format_price, hashtags, is_html, shorten
from drainage.textlength import count_length

pytestmark = pytest.mark.pure  # no database: CI's PostgreSQL pass skips it

URL = re.compile(r"https?://\S+")


def utf16(text: str) -> int:
    return count_length(text, "utf16")


def make(tmp_path: Path, files: dict[str, str], **kwargs: str) -> Renderer:
    for name, source in files.items():
        path = tmp_path / "templates" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source, encoding="utf-8")
    (tmp_path / "templates").mkdir(exist_ok=True)
    return Renderer(tmp_path / "templates", **kwargs)


# --- price --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("args", "kwargs", "expected"), [
    ((19.9,), {}, "$19.90"),
    ((1234.5,), {}, "$1,234.50"),
    ((0,), {}, "$0.00"),
    ((19.9, "EUR", "de_DE"), {}, "19,90\xa0€"),
    ((1234.5, "USD", "de_DE"), {}, "1.234,50\xa0$"),
    ((19.9, "EUR"), {}, "€19.90"),
    ((19.9,), {"default_currency": "EUR", "default_locale": "de_DE"}, "19,90\xa0€"),
    (({"price": 89.0, "currency": "EUR"},), {}, "€89.00"),
    (({"price": 89.0, "currency": "EUR"}, None, "de_DE"), {}, "89,00\xa0€"),
    (({"price": 89.0},), {"default_currency": "EUR", "default_locale": "de_DE"}, "89,00\xa0€"),
    (({"price": 89.0, "currency": "EUR"}, "USD"), {}, "$89.00"),  # an explicit currency wins over the item's
    (({"price": None, "currency": "EUR"},), {}, ""),
    (({"name": "no price"},), {}, ""),
    ((None,), {}, ""),
])
def test_format_price(args, kwargs, expected) -> None:
    assert format_price(*args, **kwargs) == expected


def test_price_filter_uses_store_defaults(tmp_path: Path) -> None:
    source = "{{ item | price }} / {{ 5 | price }} / {{ 5 | price('USD', 'en_US') }} / {{ item | price(loc='en_US') }}"
    renderer = make(tmp_path, {"p.j2": source}, currency="EUR", locale="de_DE")
    out = renderer.render("p.j2", {"item": {"price": 1234.5, "currency": "CHF"}})
    assert out == "1.234,50\xa0CHF / 5,00\xa0€ / $5.00 / CHF1,234.50"
    us = make(tmp_path / "us", {"p.j2": "{{ item | price }}"})
    assert us.render("p.j2", {"item": {"price": 29.5}}) == "$29.50"


# --- hashtags -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("tags", "limit", "expected"), [
    (["winter sale", "gifts"], None, "#WinterSale #Gifts"),
    (["winter sale", "gifts", "cosy"], 2, "#WinterSale #Gifts"),
    ({"tags": ["gift ideas", "stocking stuffer"], "name": "x"}, None, "#GiftIdeas #StockingStuffer"),
    ({"name": "no tags"}, None, ""),
    ("winter sale", None, "#WinterSale"),
    ([], None, ""),
    (["50% off!", "!!!", "café crème", "iPhone case", "merino-wool"], None,
     "#50Off #CaféCrème #IPhoneCase #MerinoWool"),
    (["already #Tagged"], None, "#AlreadyTagged"),
])
def test_hashtags(tags, limit, expected) -> None:
    assert hashtags(tags, limit) == expected


def test_hashtags_filter(tmp_path: Path) -> None:
    renderer = make(tmp_path, {"h.j2": "{{ item | hashtags }}|{{ item.tags | hashtags(1) }}"})
    assert renderer.render("h.j2", {"item": {"tags": ["gift ideas", "cosy"]}}) == "#GiftIdeas #Cosy|#GiftIdeas"


# --- shorten ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "width", "expected"), [
    ("short enough", 12, "short enough"),
    ("the quick brown fox", 12, "the quick…"),
    ("the quick brown fox", 10, "the quick…"),
    ("the quick brown fox", 9, "the…"),
    ("the quick brown fox", 1, "…"),
    ("supercalifragilistic word", 10, "…"),
    ("line one\nline two\nline three", 17, "line one\nline…"),
    ("Buy now https://shop.example.com/p and more words", 36, "Buy now https://shop.example.com/p …"),
    ("Buy now https://shop.example.com/p and more words", 35, "Buy now…"),
    ("https://shop.example.com/products/very-long-name and words", 20, "…"),
])
def test_shorten(text: str, width: int, expected: str) -> None:
    assert shorten(text, width) == expected


def test_shorten_placeholder_and_counting() -> None:
    assert shorten("the quick brown fox", 13, " [more]") == "the [more]"
    assert shorten("🎄🎄 gifts for everyone", 9) == "🎄🎄 gifts…"
    assert shorten("🎄🎄 gifts for everyone", 9, count=utf16) == "🎄🎄…"
    assert shorten("🎄🎄 gifts for everyone", 11, count=utf16) == "🎄🎄 gifts…"


def test_shorten_filter(tmp_path: Path) -> None:
    renderer = make(tmp_path, {"s.j2": "{{ item.description | shorten(20) }}"})
    assert renderer.render("s.j2", {"item": {"description": "Soft merino wool, knitted in Portugal."}}) == (
        "Soft merino wool,…")


WORD = st.text(st.sampled_from("abcdefghijkxyzüéß日本🎄!,.()"), min_size=1, max_size=10)
LINK = st.builds(lambda scheme, path: f"{scheme}://shop.example.com/{path}", st.sampled_from(["http", "https"]),
                 st.text(st.sampled_from("abcxyz0129-_/?=&%#.()"), max_size=25))
SPACE = st.sampled_from([" ", " ", " ", "  ", "\n", "\n\n", "\t"])


@st.composite
def posts(draw: st.DrawFn) -> str:
    """Prose with links in it (sometimes right after a word or a bracket), as a template might produce."""
    parts = draw(st.lists(st.one_of(WORD, WORD, LINK, st.builds("({})".format, LINK)), min_size=1, max_size=14))
    text = ""
    for part in parts:
        text += part + draw(SPACE)
    return draw(st.sampled_from(["", " ", "\n"])) + text.rstrip() if draw(st.booleans()) else text


def kept_words(out: str, placeholder: str) -> list[str]:
    """The words of `out` without the placeholders (after a cut word, or on their own)."""
    return [w for w in (word.removesuffix(placeholder) for word in out.split()) if w]


def is_subsequence(small: list[str], big: list[str]) -> bool:
    it = iter(big)
    return all(any(x == y for y in it) for x in small)


@settings(max_examples=150, deadline=None)
@given(posts(), st.integers(0, 200), st.sampled_from([len, utf16]), st.sampled_from(["…", "...", " [more]"]))
def test_shorten_never_cuts_a_link(text: str, width: int, count, placeholder: str) -> None:
    out = shorten(text, width, placeholder, count)
    if count(text) <= width:
        assert out == text
        return
    # every link in the output is one of the input's, whole (no placeholder glued to it, no piece of it)
    links = set(URL.findall(text))
    assert all(found in links for found in URL.findall(out)), out
    # within the width whenever that is possible at all (the placeholder alone)
    if width >= count(placeholder):
        assert count(out) <= width
    # it is the start of the text, cut at a word boundary, then the placeholder
    assert out.endswith(placeholder)
    kept = out.removesuffix(placeholder).rstrip()
    assert text.startswith(kept)
    assert kept == "" or len(kept) == len(text) or text[len(kept)].isspace()


# --- fit_text -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "width", "expected"), [
    ("fits", 10, "fits"),
    ("no links in this rather long text", 20, "no links in this…"),
    ("A long introduction to the product. https://shop.example.com/p #Tag", 50,
     "A long… https://shop.example.com/p #Tag"),
    ("Intro https://shop.example.com/p then a long tail of prose that goes on and on", 40,
     "https://shop.example.com/p then a long…"),
    ("Intro https://shop.example.com/p #Gifts", 33, "https://shop.example.com/p #Gifts"),
    ("Intro https://shop.example.com/p #Gifts", 30, "https://shop.example.com/p …"),
    ("Intro https://shop.example.com/p #Gifts", 26, "https://shop.example.com/p"),
    ("A https://a.example/x middle words https://b.example/y #Tag #Other", 40,
     "https://a.example/x https://b.example/y"),
    ("A https://a.example/x middle https://b.example/y #Tag #Other", 52,
     "https://a.example/x middle https://b.example/y #Tag…"),
    ("See it (https://shop.example.com/p) now", 30, "(https://shop.example.com/p) …"),  # the link's word whole
    ("Intro https://shop.example.com/p", 20, "Intro https://shop.example.com/p"),  # impossible: unchanged
])
def test_fit_text(text: str, width: int, expected: str) -> None:
    assert fit_text(text, width) == expected


@settings(max_examples=150, deadline=None)
@given(posts(), st.integers(0, 200), st.sampled_from([len, utf16]))
def test_fit_text_keeps_every_link_whole(text: str, width: int, count) -> None:
    out = fit_text(text, width, count)
    if count(text) <= width:
        assert out == text
        return
    links = URL.findall(text)
    # every link stays, whole and in order, and so does the word it is in, e.g. '(https://...)'
    assert URL.findall(out) == links
    link_words = [word for word in text.split() if URL.search(word)]
    assert [word for word in out.split() if URL.search(word)] == link_words
    # within the width whenever the links alone fit (and the placeholder, for a text without links)
    if count(" ".join(link_words)) <= width and (links or width >= 1):
        assert count(out) <= width, out
    elif links:
        assert out == text  # impossible: left for the caller to report
    # nothing but the input's own words (the last one possibly cut short by the placeholder)
    assert is_subsequence(kept_words(out, "…"), text.split())


# --- the sandbox --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("source", [
    "{{ ''.__class__.__mro__ }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ joiner.__init__.__globals__.os }}",
    "{{ lipsum.__globals__ }}",
    "{{ ().__class__.__base__.__subclasses__() }}",
    "{{ item.__class__ }}",
    "{{ '{0.__class__}'.format('') }}",
    "{{ self._TemplateReference__context }}",
    "{% for c in ''.__class__.__mro__[1].__subclasses__() %}{{ c }}{% endfor %}",
])
def test_sandbox_blocks_python_internals(tmp_path: Path, source: str) -> None:
    renderer = make(tmp_path, {"evil.j2": source})
    with pytest.raises(SecurityError, match="unsafe"):
        renderer.render("evil.j2", {"item": {"name": "x"}})


def test_sandbox_allows_ordinary_expressions(tmp_path: Path) -> None:
    renderer = make(tmp_path, {"ok.j2": "{{ item.name | upper }} {{ item.tags | join(', ') }} {{ 'x'.upper() }} "
                                        "{{ items | length }} {{ '%s-%d' | format('a', 2) }}"})
    assert renderer.render("ok.j2", {"item": {"name": "scarf", "tags": ["a", "b"]}, "items": [1, 2]}) == (
        "SCARF a, b X 2 a-2")


def test_strict_undefined(tmp_path: Path) -> None:
    renderer = make(tmp_path, {"a.j2": "{{ itme.name }}", "b.j2": "{{ item.prize }}", "c.j2": "{{ item.name }}"})
    with pytest.raises(UndefinedError, match="'itme' is undefined"):
        renderer.render("a.j2", {"item": {"name": "x"}})
    with pytest.raises(UndefinedError, match="has no attribute 'prize'"):
        renderer.render("b.j2", {"item": {"name": "x", "price": 1}})
    assert renderer.render("c.j2", {"item": {"name": "x"}}) == "x"
    with pytest.raises(TemplateError, match="'missing' is undefined"):
        renderer.render_string("{{ missing }}", {})


def test_autoescape_only_for_html(tmp_path: Path) -> None:
    source = "{{ text }}"
    names = ["post.j2", "post.txt", "mail.txt.j2", "mail.html", "mail.html.j2", "MAIL.HTML", "page.htm",
             "notes.html.txt"]
    renderer = make(tmp_path, dict.fromkeys(names, source))
    context = {"text": "<b>Fish & Chips</b> \"quoted\""}
    raw = context["text"]
    escaped = "&lt;b&gt;Fish &amp; Chips&lt;/b&gt; &#34;quoted&#34;"
    for name in names:
        assert renderer.render(name, context) == (escaped if is_html(name) else raw), name
    assert [n for n in names if is_html(n)] == ["mail.html", "mail.html.j2", "MAIL.HTML", "page.htm"]
    assert renderer.render_string(source, context) == raw


def test_render_trims_blocks_and_whitespace(tmp_path: Path) -> None:
    source = "\n{% if item.code %}\nCode {{ item.code }}\n{% endif %}\nBuy it\n\n"
    renderer = make(tmp_path, {"t.j2": source})
    assert renderer.render("t.j2", {"item": {"code": "X1"}}) == "Code X1\nBuy it"
    assert renderer.render("t.j2", {"item": {"code": None}}) == "Buy it"


# --- link() in a template -----------------------------------------------------------------------------------

def link_context(**overrides: object) -> LinkContext:
    values = {"public_url": "https://go.example.com", "base_url": "https://shop.example.com",
              "allowed_hosts": ["shop.example.com"], "campaign": "launch", "channel": "mastodon", "item": "scarf",
              "variant": "a", "utm": {"utm_source": "mastodon", "utm_medium": "social", "utm_campaign": "launch",
                                      "utm_content": "a", "utm_term": None}}
    values.update(overrides)
    return LinkContext(**values)


def test_link_in_a_template(tmp_path: Path) -> None:
    renderer = make(tmp_path, {"l.j2": "{{ link(item) }} {{ link('/sale?x=1#top', content='banner') }} "
                                       "{{ link(item) }}"})
    links = link_context()
    out = renderer.render("l.j2", {"item": {"key": "scarf", "url": "/products/scarf"}, "link": links})
    first, second = links.made
    assert out == f"{first.url} {second.url} {first.url}"
    assert first.target == ("https://shop.example.com/products/scarf"
                            "?utm_source=mastodon&utm_medium=social&utm_campaign=launch&utm_content=a")
    assert second.target == ("https://shop.example.com/sale?x=1"
                             "&utm_source=mastodon&utm_medium=social&utm_campaign=launch&utm_content=banner#top")
    assert re.fullmatch(r"https://go\.example\.com/c/[a-z2-7]{12}", first.url)
    assert first.code != second.code


def test_link_errors(tmp_path: Path) -> None:
    links = link_context()
    with pytest.raises(LinkError, match="not one of the store's hosts"):
        links("https://evil.org/")
    with pytest.raises(LinkError, match="unknown argument 'campain'"):
        links("/p", campain="x")
    with pytest.raises(LinkError, match="needs an item or a URL"):
        links()
    assert links.made == []


def test_compiled_templates_keep_jinjas_globals_and_each_context(tmp_path: Path) -> None:
    """Templates are compiled once and their globals copied into one dict: every render still sees Jinja's
    globals and only its own context."""
    from drainage.render import none_forbidden

    renderer = make(tmp_path, {"g.j2": "{% set ns = namespace(n=0) %}{% for i in range(3) %}{% set ns.n = ns.n + i %}"
                                       "{% endfor %}{{ ns.n }} {{ dict(a=1).a }} {{ item.name }}"})
    assert renderer.render("g.j2", {"item": {"name": "Ruby"}}) == "3 1 Ruby"
    assert renderer.render("g.j2", {"item": {"name": "Moss"}}) == "3 1 Moss"
    with none_forbidden():
        assert renderer.render("g.j2", {"item": {"name": "Teal"}}) == "3 1 Teal"
    assert renderer.render_string("{{ range(2) | list | length }} {{ item.name }}", {"item": {"name": "A"}}) == "2 A"
    assert renderer.render_string("{{ range(2) | list | length }} {{ item.name }}", {"item": {"name": "B"}}) == "2 B"


def test_hashtags_of_different_tags_differ() -> None:
    assert hashtags(["winter sale", "gifts"]) == "#WinterSale #Gifts"
    assert hashtags(["winter sale"]) == "#WinterSale"
    assert hashtags({"tags": ["a b", 3]}) == "#AB #3"
    assert hashtags(("x", "y", "z"), 2) == "#X #Y"
