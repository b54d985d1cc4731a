"""Tracked links: UTM tagging that keeps the target byte for byte, store hosts only, stable link codes."""

from __future__ import annotations

import base64
import hashlib
import re
from urllib.parse import parse_qsl

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drainage.links import (
    CODE_LENGTH,
    UTM_ORDER,
    LinkError,
    TrackedLink,
    add_utm,
    host_allowed,
    link_code,
    resolve_target,
    tracked_link,
)

pytestmark = pytest.mark.pure  # no database: CI's PostgreSQL pass skips it

BASE = "https://shop.example.com"
HOSTS = ["shop.example.com"]

# --- add_utm: properties over random URLs -------------------------------------------------------------------

HOST_NAMES = ["shop.example.com", "SHOP.Example.COM", "bücher.example", "xn--bcher-kva.example",
              "münchen.example.de", "a-b.example.org", "shop.example.com."]
PORTS = ["", ":80", ":443", ":8080"]
ENCODED = ["%20", "%2F", "%3F", "%23", "%26", "%3D", "%25", "%C3%BC", "%E2%82%AC", "%F0%9F%8E%84", "%zz", "%",
           "+"]
# characters that may appear raw in a path / query piece (no '?', '#'; '&' and '=' only where they separate)
PATH_CHARS = st.characters(exclude_characters="?#%\t\r\n", exclude_categories=("Cs", "Cc"))
PIECE_CHARS = st.characters(exclude_characters="?#&=%\t\r\n", exclude_categories=("Cs", "Cc"))
FRAGMENT_CHARS = st.characters(exclude_characters="\t\r\n", exclude_categories=("Cs", "Cc"))


def pieces(chars: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """Text mixing raw (possibly unicode) characters with percent-encoded bytes and '+'."""
    return st.lists(st.one_of(st.text(chars, min_size=1, max_size=6), st.sampled_from(ENCODED)),
                    max_size=4).map("".join)


@st.composite
def query_strings(draw: st.DrawFn) -> str:
    """A query string: repeated keys, blank values, keys without '=', existing UTM tags, stray '&'."""
    keys = st.one_of(pieces(PIECE_CHARS), st.sampled_from(["q", "ref", "variant", "utm_source", "utm_medium",
                                                           "utm_campaign", "utm_content", "utm%5Fterm", "UTM_ID"]))
    params = []
    for key in draw(st.lists(keys, max_size=6)):
        form = draw(st.sampled_from(["key=value", "key=", "key", "key=value", "key=value=more"]))
        value = draw(pieces(PIECE_CHARS))
        params.append(form.replace("key", key).replace("value", value).replace("more", draw(pieces(PIECE_CHARS))))
    if params and draw(st.booleans()):
        params.append(params[0])  # the same key and value twice
    query = "&".join(params)
    return draw(st.sampled_from(["", "&"])) + query + draw(st.sampled_from(["", "", "&"]))


@st.composite
def urls(draw: st.DrawFn) -> tuple[str, str, str | None, str | None]:
    """(url, part before '?', query or None, fragment or None)."""
    scheme = draw(st.sampled_from(["http", "https"]))
    netloc = draw(st.sampled_from(HOST_NAMES)) + draw(st.sampled_from(PORTS))
    segments = draw(st.lists(pieces(PATH_CHARS), max_size=4))
    path = "".join("/" + s for s in segments) + draw(st.sampled_from(["", "/"]))
    query = draw(st.none() | query_strings())
    fragment = draw(st.none() | st.text(FRAGMENT_CHARS, max_size=8))
    prefix = f"{scheme}://{netloc}{path}"
    url = prefix + ("" if query is None else "?" + query) + ("" if fragment is None else "#" + fragment)
    return url, prefix, query, fragment


TAG_VALUES = st.one_of(st.none(), st.just(""), st.text(min_size=1, max_size=12),
                       st.sampled_from(["a&b=c", "#hash", "100%", "a b", "a+b", "ü€🎄", "%20", "x=y&utm_source=z"]))


@st.composite
def utm_tags(draw: st.DrawFn) -> dict[str, str | None]:
    keys = draw(st.permutations(UTM_ORDER))  # the dict's own order must not matter
    return {k: draw(TAG_VALUES) for k in keys[: draw(st.integers(0, len(keys)))]}


def expected_extra(query: str | None, tags: dict[str, str | None]) -> list[tuple[str, str]]:
    present = {k for k, _ in parse_qsl(query or "", keep_blank_values=True)}
    return [(k, tags[k]) for k in UTM_ORDER if tags.get(k) and k not in present]


@settings(max_examples=150, deadline=None)
@given(urls(), utm_tags())
def test_add_utm_keeps_url_and_appends_missing_tags(parts, tags) -> None:
    url, prefix, query, fragment = parts
    extra = expected_extra(query, tags)
    out = add_utm(url, tags)
    if not extra:
        assert out == url
        return
    # (a) scheme, host (IDN as written), port, path and fragment byte for byte
    assert out.startswith(prefix + "?")
    if fragment is None:
        assert "#" not in out[len(prefix):]
        new_query = out[len(prefix) + 1:]
    else:
        assert out.endswith("#" + fragment)
        new_query = out[len(prefix) + 1: len(out) - len(fragment) - 1]
        assert "#" not in new_query
    # (b) the original query string is an unchanged prefix of the new one
    assert new_query.startswith(query or "")
    # (c) it parses back to the original params, then the missing tags with their exact values
    original = parse_qsl(query or "", keep_blank_values=True)
    assert parse_qsl(new_query, keep_blank_values=True) == original + extra
    # (d) idempotent, also when asked with other values for the same tags
    assert add_utm(out, tags) == out
    assert add_utm(out, {k: "other" for k, v in tags.items() if v}) == out


@settings(max_examples=60, deadline=None)
@given(urls(), st.dictionaries(st.sampled_from(["ref", "gclid", "x y", "a&b"]), TAG_VALUES, max_size=3),
       utm_tags())
def test_add_utm_appends_non_utm_tags_after_utm_ones(parts, others, tags) -> None:
    url, _, query, _ = parts
    present = {k for k, _ in parse_qsl(query or "", keep_blank_values=True)}
    expected = expected_extra(query, tags) + [(k, v) for k, v in others.items() if v and k not in present]
    out = add_utm(url, {**others, **tags})
    new_query = out.partition("#")[0].partition("?")[2]
    assert parse_qsl(new_query, keep_blank_values=True) == parse_qsl(query or "", keep_blank_values=True) + expected
    assert add_utm(out, {**others, **tags}) == out


# --- add_utm: examples --------------------------------------------------------------------------------------

TAGS = {"utm_source": "mastodon", "utm_medium": "social", "utm_campaign": "scarf-launch"}


def test_add_utm_plain_url() -> None:
    assert add_utm("https://shop.example.com/products/scarf", TAGS) == (
        "https://shop.example.com/products/scarf?utm_source=mastodon&utm_medium=social&utm_campaign=scarf-launch")


def test_add_utm_canonical_order_and_skips_empty_tags() -> None:
    tags = {"utm_content": "b", "utm_term": "", "utm_id": None, "utm_campaign": "c", "utm_source": "s"}
    assert add_utm("https://shop.example.com/", tags) == (
        "https://shop.example.com/?utm_source=s&utm_campaign=c&utm_content=b")


def test_add_utm_keeps_existing_query_encoding_and_fragment() -> None:
    url = "https://bücher.example:8443/b%C3%BCcher/l%20ist?q=caf%C3%A9&q=th%C3%A9&empty=&flag&plus=a+b#frag?x=1&y"
    assert add_utm(url, TAGS) == (
        "https://bücher.example:8443/b%C3%BCcher/l%20ist?q=caf%C3%A9&q=th%C3%A9&empty=&flag&plus=a+b"
        "&utm_source=mastodon&utm_medium=social&utm_campaign=scarf-launch#frag?x=1&y")


def test_add_utm_keeps_tags_already_there() -> None:
    url = "https://shop.example.com/p?utm_source=newsletter&utm_medium="
    assert add_utm(url, TAGS) == url + "&utm_campaign=scarf-launch"
    assert add_utm(url + "&utm_campaign=x", TAGS) == url + "&utm_campaign=x"


def test_add_utm_encodes_tag_values() -> None:
    out = add_utm("https://shop.example.com/p", {"utm_campaign": "Winter & Sale #1 = 100% ü"})
    assert out == "https://shop.example.com/p?utm_campaign=Winter%20%26%20Sale%20%231%20%3D%20100%25%20%C3%BC"


@pytest.mark.parametrize(("url", "expected"), [
    ("https://shop.example.com/p?", "https://shop.example.com/p?utm_source=s"),
    ("https://shop.example.com/p#", "https://shop.example.com/p?utm_source=s#"),
    ("https://shop.example.com/p?#", "https://shop.example.com/p?utm_source=s#"),
    ("https://shop.example.com/p?a=1&", "https://shop.example.com/p?a=1&utm_source=s"),
    ("https://shop.example.com", "https://shop.example.com?utm_source=s"),
    ("https://shop.example.com#top", "https://shop.example.com?utm_source=s#top"),
])
def test_add_utm_edge_separators(url: str, expected: str) -> None:
    assert add_utm(url, {"utm_source": "s"}) == expected


def test_add_utm_nothing_to_add_returns_url_unchanged() -> None:
    url = "https://shop.example.com/p?x=1#f"
    assert add_utm(url, {}) == url
    assert add_utm(url, {"utm_source": None, "utm_medium": ""}) == url


# --- resolve_target -----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("target", "base", "expected"), [
    ("/products/scarf", BASE, "https://shop.example.com/products/scarf"),
    ("products/scarf", BASE, "https://shop.example.com/products/scarf"),
    ("/products/scarf", BASE + "/", "https://shop.example.com/products/scarf"),
    ("/products/scarf?color=red#reviews", BASE, "https://shop.example.com/products/scarf?color=red#reviews"),
    ("  /products/scarf \n", BASE, "https://shop.example.com/products/scarf"),
    ("/products/scarf", "https://example.com/shop", "https://example.com/shop/products/scarf"),
    ("/products/scarf", "https://example.com/shop/", "https://example.com/shop/products/scarf"),
    ("//shop.example.com/x", BASE, "https://shop.example.com/x"),
    ("https://shop.example.com/a?b=1", BASE, "https://shop.example.com/a?b=1"),
    ("http://shop.example.com/a", BASE, "http://shop.example.com/a"),
    ("HTTPS://SHOP.EXAMPLE.COM/A", BASE, "HTTPS://SHOP.EXAMPLE.COM/A"),
    ("https://shop.example.com:8443/a", BASE, "https://shop.example.com:8443/a"),
    ("https://shop.example.com./a", BASE, "https://shop.example.com./a"),
])
def test_resolve_target_accepts(target: str, base: str, expected: str) -> None:
    hosts = ["shop.example.com", "example.com"]
    assert resolve_target(target, base, hosts) == expected


@pytest.mark.parametrize("target", [
    "https://shop.example.com.evil.org/",
    "https://evil.org/?shop.example.com",
    "https://evil.org/#shop.example.com",
    "https://evil.org/shop.example.com",
    "https://shop.example.com@evil.org/",
    "https://shop.example.com:443@evil.org/",
    "https://evil.org\\@shop.example.com/",
    "https://evil.org\\.shop.example.com/",
    "https://evil.org%2F.shop.example.com/",
    "https://evilshop.example.com/",
    "https://example.com/",
    "//evil.org/x",
    "javascript:alert(1)",
    "JavaScript:alert(document.cookie)//shop.example.com",
    " javascript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "ftp://shop.example.com/x",
    "mailto:info@shop.example.com",
    "https://",
    "https:///products/x",
    "https:shop.example.com/x",
])
def test_resolve_target_rejects_other_hosts(target: str) -> None:
    with pytest.raises(LinkError):
        resolve_target(target, BASE, HOSTS)


@pytest.mark.parametrize("char", ["\r", "\n", "\t", "\x00", "\x01", "\x08", "\x0b", "\x1b", "\x1f", "\x7f"])
@pytest.mark.parametrize("template", ["/products/sca{}rf", "https://shop.example.com/a{}b",
                                      "https://evil.org{}.shop.example.com/", "https://shop.example.com{}/"])
def test_resolve_target_rejects_control_characters(char: str, template: str) -> None:
    with pytest.raises(LinkError):
        resolve_target(template.format(char), BASE, ["*.example.com"])


@pytest.mark.parametrize("target", ["", "   ", "\n"])
def test_resolve_target_rejects_empty(target: str) -> None:
    with pytest.raises(LinkError, match="empty"):
        resolve_target(target, BASE, HOSTS)


def test_resolve_target_error_names_the_host() -> None:
    with pytest.raises(LinkError, match=r"link host 'evil\.org' is not one of the store's hosts \(shop\.example\.com"):
        resolve_target("https://shop.example.com@evil.org/x", BASE, HOSTS)


def test_resolve_target_wildcard_and_idn() -> None:
    hosts = ["*.example.com", "bücher.example"]
    assert resolve_target("https://blog.example.com/x", BASE, hosts) == "https://blog.example.com/x"
    assert resolve_target("https://example.com/x", BASE, hosts) == "https://example.com/x"
    assert resolve_target("https://xn--bcher-kva.example/x", BASE, hosts) == "https://xn--bcher-kva.example/x"
    assert resolve_target("https://BÜCHER.example/x", BASE, hosts) == "https://BÜCHER.example/x"
    with pytest.raises(LinkError):
        resolve_target("https://example.com.evil.org/", BASE, hosts)
    with pytest.raises(LinkError):
        resolve_target("https://bucher.example/", BASE, hosts)


# --- host_allowed -------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("host", "allowed", "expected"), [
    ("shop.example.com", ["shop.example.com"], True),
    ("SHOP.Example.com", ["shop.example.com"], True),
    ("shop.example.com.", ["shop.example.com"], True),
    ("shop.example.com", ["Shop.Example.Com."], True),
    ("www.shop.example.com", ["shop.example.com"], False),
    ("example.com", ["shop.example.com"], False),
    ("shop.example.com.evil.org", ["shop.example.com"], False),
    ("evilshop.example.com", ["shop.example.com"], False),
    ("shop.example.com", [], False),
    ("shop.example.com", ["*.example.com"], True),
    ("a.b.example.com", ["*.example.com"], True),
    ("example.com", ["*.example.com"], True),
    ("EXAMPLE.COM.", ["*.example.com"], True),
    ("badexample.com", ["*.example.com"], False),
    ("example.com.evil.org", ["*.example.com"], False),
    ("example.org", ["*.example.com"], False),
    ("bücher.example", ["xn--bcher-kva.example"], True),
    ("xn--bcher-kva.example", ["bücher.example"], True),
    ("BÜCHER.example", ["bücher.example"], True),
    ("shop.xn--bcher-kva.example", ["*.bücher.example"], True),
    ("bucher.example", ["bücher.example"], False),
    ("other.org", ["shop.example.com", "other.org"], True),
])
def test_host_allowed(host: str, allowed: list[str], expected: bool) -> None:
    assert host_allowed(host, allowed) is expected


# --- link codes ---------------------------------------------------------------------------------------------

ATTRIBUTION = {"target": "https://shop.example.com/p?utm_source=x", "campaign": "scarf-launch",
               "channel": "mastodon", "item": "scarf", "variant": "a", "recipient": ""}


def test_link_code_is_stable() -> None:
    # a code is stored in the journal and printed in posts: it must never change for the same link
    assert link_code(**ATTRIBUTION) == "gercfju2ekxf"
    assert link_code(**ATTRIBUTION) == link_code(*ATTRIBUTION.values())
    assert link_code(**{**ATTRIBUTION, "recipient": "ann@example.org"}) == "l4byxqbevyvc"


@settings(max_examples=300)
@given(st.lists(st.text(), min_size=6, max_size=6))
def test_link_code_is_the_first_12_base32_digits_of_the_sha256(fields: list[str]) -> None:
    digest = hashlib.sha256("\x1f".join(fields).encode("utf-8", "surrogatepass")).digest()
    try:
        code = link_code(*fields)
    except UnicodeEncodeError:  # a lone surrogate: no string of a real link has one
        return
    assert code == base64.b32encode(digest[:10]).decode("ascii").lower()[:12]


def test_link_code_form() -> None:
    code = link_code(**ATTRIBUTION)
    assert CODE_LENGTH == 12
    assert re.fullmatch(r"[a-z2-7]{12}", code)


@pytest.mark.parametrize("field", list(ATTRIBUTION))
def test_link_code_changes_with_each_field(field: str) -> None:
    base = link_code(**ATTRIBUTION)
    assert link_code(**{**ATTRIBUTION, field: ATTRIBUTION[field] + "x"}) != base
    assert link_code(**{**ATTRIBUTION, field: "other"}) != base


def test_link_code_fields_do_not_run_together() -> None:
    a = link_code("https://shop.example.com/p", "ab", "c", "item", "v")
    b = link_code("https://shop.example.com/p", "a", "bc", "item", "v")
    assert a != b


@settings(max_examples=150, deadline=None)
@given(st.lists(st.text(st.characters(exclude_characters="\x1f", exclude_categories=("Cs",)), max_size=8),
                min_size=6, max_size=6),
       st.integers(0, 5), st.text(st.characters(exclude_characters="\x1f", exclude_categories=("Cs",)), max_size=8))
def test_link_code_differs_when_any_field_differs(fields, index, replacement) -> None:
    code = link_code(*fields)
    assert re.fullmatch(r"[a-z2-7]{12}", code)
    assert link_code(*fields) == code
    changed = list(fields)
    changed[index] = replacement
    assert (link_code(*changed) == code) is (changed == fields)


def test_tracked_link() -> None:
    link = tracked_link("https://go.example.com/", **ATTRIBUTION)
    assert link == TrackedLink(code="gercfju2ekxf", url="https://go.example.com/c/gercfju2ekxf",
                               target=ATTRIBUTION["target"], campaign="scarf-launch", channel="mastodon",
                               item="scarf", variant="a", recipient="")
    assert tracked_link("https://go.example.com", **ATTRIBUTION) == link
    other = tracked_link("https://go.example.com/t", **{**ATTRIBUTION, "recipient": "ann@example.org"})
    assert other.url == "https://go.example.com/t/c/l4byxqbevyvc"
    assert other.recipient == "ann@example.org"


# --- the caches behind add_utm and resolve_target ---------------------------------------------------------


def test_add_utm_tells_true_from_one_and_each_value_from_another() -> None:
    base = "https://shop.example.com/p?c=1"
    assert add_utm(base, {"utm_term": True}) == base + "&utm_term=True"
    assert add_utm(base, {"utm_term": 1}) == base + "&utm_term=1"
    assert add_utm(base, {"utm_term": ["a"]}) == base + "&utm_term=%5B%27a%27%5D"
    assert add_utm(base, {"utm_term": 0}) == base  # empty values are skipped, as always
    assert add_utm("https://shop.example.com/p?utm_term=x", {"utm_term": "y"}) == (
        "https://shop.example.com/p?utm_term=x")


@settings(max_examples=400)
@given(path=st.text(alphabet="ab./?=&%~_-#;:@ \\+\t", max_size=14),
       base=st.sampled_from(["https://shop.example.com", "https://shop.example.com/de", "HTTPS://Shop.example.com",
                             "https://shop.example.com/x/../y", "https://shop.example.com/a?q=1"]))
def test_resolve_target_joins_plain_store_paths_as_urljoin_does(path: str, base: str) -> None:
    """The shortcut for plain store paths gives what the full resolution gives, error or URL."""
    from drainage.links import _resolve

    def outcome(resolve: object) -> str:
        try:
            return resolve("/" + path, base, ["shop.example.com"])  # type: ignore[operator]
        except LinkError as exc:
            return f"error: {exc}"

    assert outcome(resolve_target) == outcome(_resolve)
