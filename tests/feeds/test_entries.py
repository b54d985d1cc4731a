"""Entry identity and field extraction: the fixture shapes (Shopify, WooCommerce, WordPress), and properties."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drainage.feeds.entries import TEMPLATE_FIELDS, html_text, identities, read_document
from drainage.feeds.fetch import FeedError
from drainage.feeds.storefields import Price, parse_price
from tests.feeds.server import FEEDS

pytestmark = pytest.mark.pure  # no database: CI's PostgreSQL pass skips it


def entries_of(name: str, url: str = "https://shop.example.com/feed/") -> list:  # type: ignore[type-arg]
    return read_document((FEEDS / name).read_bytes(), url).entries


def test_shopify_product_atom() -> None:
    scarf, hat, card = entries_of("shopify-all.atom", "https://shop.example.com/collections/all.atom")
    assert scarf.identity == "id:https://shop.example.com/products/7301"
    assert (scarf.title, scarf.url) == ("Merino scarf", "https://shop.example.com/products/merino-scarf")
    assert (scarf.price, scarf.currency) == (45.0, "USD")  # the lowest variant price
    assert scarf.summary == "Extra-fine merino, knitted in a double rib. Soft & warm."  # no vendor/type/price table
    assert scarf.image == "https://shop.example.com/cdn/shop/products/scarf_compact.jpg?v=1700000000"
    assert (scarf.categories, scarf.tags, scarf.vendor) == (("Scarves",), ("merino", "winter", "Scarves"),
                                                            "Northwind Knits")
    assert scarf.published == datetime(2026, 2, 27, 14, 0, tzinfo=UTC)
    assert (hat.price, card.price, card.image) == (35.0, 25.0, None)


def test_shopify_namespace_prefix_does_not_matter() -> None:
    body = (FEEDS / "shopify-all.atom").read_text(encoding="utf-8")
    renamed = body.replace('xmlns:s="', 'xmlns:shop="').replace("<s:", "<shop:").replace("</s:", "</shop:")
    scarf = read_document(renamed.encode(), "https://shop.example.com/collections/all.atom").entries[0]
    assert (scarf.price, scarf.categories) == (45.0, ("Scarves",))


def test_woocommerce_product_rss() -> None:
    cardigan, yarn = entries_of("woocommerce-products.rss")
    assert cardigan.identity == "id:https://shop.example.com/?post_type=product&p=812"
    assert (cardigan.price, cardigan.regular_price, cardigan.currency) == (99.0, 129.0, "USD")  # on sale
    assert cardigan.categories == ("Cardigans", "Wool & Cashmere")
    assert cardigan.image == "https://shop.example.com/wp-content/uploads/2026/02/cardigan.jpg"
    assert cardigan.summary == "A heavy cable knit in undyed wool, with horn buttons."
    assert (cardigan.author, cardigan.vendor) == ("northwind", "Northwind Knits")
    assert (yarn.price, yarn.regular_price, yarn.image) == (14.5, None, None)


def test_wordpress_blog_rss() -> None:
    care, mill = entries_of("wordpress-blog.rss", "https://blog.example.com/feed/")
    assert care.identity == "id:https://blog.example.com/?p=1042"
    assert care.image == "https://blog.example.com/wp-content/uploads/2026/02/washing-1200.jpg"  # media:content
    assert care.summary.startswith("Five steps, cold water, no wringing. Merino is forgiving if you treat it like "
                                   "your own hair – here is how we do it at the mill.")
    assert (care.price, care.categories, care.author) == (None, ("Care guides", "merino"), "Ingrid")
    assert (mill.image, mill.summary) == (None, "Meet the people who spin our yarn. […]")


def test_first_image_of_the_content_is_made_absolute() -> None:
    body = (FEEDS / "wordpress-blog.rss").read_text(encoding="utf-8").replace(
        '<media:content url="https://blog.example.com/wp-content/uploads/2026/02/washing-1200.jpg" medium="image"/>',
        "")
    care = read_document(body.encode(), "https://blog.example.com/feed/").entries[0]
    assert care.image == "https://blog.example.com/wp-content/uploads/2026/02/washing.jpg"


def test_identity_falls_back_to_the_link_then_to_a_hash() -> None:
    shawl, needles, studio = entries_of("missing-guids.rss")
    assert shawl.identity == "link:https://shop.example.com/products/lace-shawl"
    assert needles.identity == "link:https://shop.example.com/products/bamboo-needles"
    assert studio.identity.startswith("hash:") and len(studio.identity) == 5 + 64


def test_a_guid_shared_by_several_entries_is_no_identity() -> None:
    assert [e.identity for e in entries_of("duplicate-guids.rss")] == [
        "link:https://blog.example.com/spring-colours/", "link:https://blog.example.com/dye-garden/",
        "link:https://blog.example.com/winter-sale/"]


def test_broken_documents_are_refused_with_the_reason() -> None:
    with pytest.raises(FeedError, match=r"^malformed feed: mismatched tag at line 10, column 4$"):
        entries_of("broken-xml.rss")


def test_entry_fields_are_exactly_what_validate_samples() -> None:
    from drainage.project import load_project
    from drainage.validation import sample_entries
    from tests.conftest import REPO

    (entry, *_) = entries_of("shopify-all.atom")
    assert tuple(entry.fields()) == TEMPLATE_FIELDS
    project = load_project(REPO / "config.yaml")
    feed = project.campaigns["new-arrivals"].model.feeds[0]
    refs = sample_entries(project, feed, 0)
    assert [(ref.digest, ref.event) for ref in refs] == [
        ("sample-full", "new"), ("sample-sparse", "new"), ("sample-full", "price_drop:49.00")]
    for ref in refs:
        assert tuple(ref.fields) == TEMPLATE_FIELDS


# -- properties ------------------------------------------------------------------------------------------------

triples = st.lists(st.tuples(st.sampled_from(["", "g1", "g2", "g3"]),
                             st.sampled_from(["", "https://a/1", "https://a/2"]),
                             st.sampled_from(["", "Hat", "Scarf"])), max_size=8)


@given(triples, st.randoms(use_true_random=False))
def test_identities_do_not_depend_on_the_order_of_entries(raw, rnd: random.Random) -> None:
    shuffled = list(raw)
    rnd.shuffle(shuffled)
    mine = dict(zip(raw, identities(raw), strict=True))
    assert dict(zip(shuffled, identities(shuffled), strict=True)) == mine


@given(triples)
def test_distinct_entries_get_distinct_identities_and_a_unique_id_wins(raw) -> None:
    found = identities(raw)
    by_entry = dict(zip(raw, found, strict=True))
    assert len(set(by_entry.values())) == len(by_entry)  # identical entries share one, distinct ones never do
    for (ident, _link, _title), identity in zip(raw, found, strict=True):
        if ident and [i for i, _, _ in raw].count(ident) == 1:
            assert identity == f"id:{ident}"  # a unique id is the identity, whatever the title or link


@given(st.decimals(min_value=0, max_value=10**9, places=2, allow_nan=False, allow_infinity=False),
       st.sampled_from(["USD", "EUR", "gbp", None]), st.booleans())
def test_prices_in_feed_form_are_read_exactly(amount: Decimal, currency: str | None, code_first: bool) -> None:
    text = f"{amount:.2f}" if currency is None else (
        f"{currency} {amount:.2f}" if code_first else f"{amount:.2f} {currency}")
    assert parse_price(text) == Price(Decimal(f"{amount:.2f}"), currency.upper() if currency else None)


@given(st.text(max_size=40))
def test_anything_else_is_no_price_and_never_an_error(text: str) -> None:
    price = parse_price(text)
    assert price is None or price.amount >= 0


@pytest.mark.parametrize("text", ["-5.00", "1.299,00 EUR", "49,00", "USD 5 EUR", "5 dollars", ""])
def test_localised_or_odd_prices_are_not_guessed(text: str) -> None:
    assert parse_price(text) is None


@given(st.text(max_size=200))
def test_html_text_never_fails_and_never_leaves_a_tag(markup: str) -> None:
    found = html_text(f"<p>{markup}</p><script>var x = '<b>';</script>")
    assert "<p>" not in found.text and "<script>" not in found.text and "var x" not in found.text
    assert found.text == " ".join(found.text.split())
