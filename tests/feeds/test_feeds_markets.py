"""Store feeds per market (issue 22): each market's feed is posted in its language and currency to its channels."""

from __future__ import annotations

import re
from datetime import datetime

from sqlmodel import select

from drainage.clock import FakeClock
from drainage.store.db import session
from drainage.store.models import Link
from tests.feeds.helpers import deliveries, dispatcher_for, run, texts
from tests.feeds.server import FEEDS
from tests.market_project import write_project

TRACKED = r"https://go\.example\.com/c/[a-z2-7]{12}"
CAMPAIGN = """\
id: shop
title: New in the shop
misfire_grace: 1h
markets: [us, de]
feeds:
  - url: {us}
    market: us
    channels:
      - {{channel: out-us, template: feed.j2}}
  - url: {de}
    market: de
    channels:
      - {{channel: out-de, template: feed.j2}}
"""
TEMPLATES = {
    "feed.j2": "New: {{ entry.title }}{% if entry.price %} for {{ entry | price }}{% endif %} {{ entry.link }}\n",
    "feed.de.j2": "Neu: {{ entry.title }}{% if entry.price %} für {{ entry | price }}{% endif %} {{ entry.link }}\n",
}


def in_euros(document: str) -> bytes:
    """The Shopify fixture as the store's German market serves it: the same products, prices in EUR."""
    return (FEEDS / document).read_text(encoding="utf-8").replace('currency="USD"', 'currency="EUR"').encode()


def test_each_markets_feed_posts_its_new_products_in_its_language_and_currency(tmp_path, feed_server) -> None:
    us = feed_server.serve("/collections/all.atom", "shopify-all.atom")
    atom = "application/atom+xml"
    de = feed_server.serve("/de/collections/all.atom", in_euros("shopify-all.atom"), content_type=atom)
    write_project(tmp_path, campaign=CAMPAIGN.format(us=us, de=de), templates=TEMPLATES, name="shop.yaml")
    clock = FakeClock(datetime.fromisoformat("2026-03-01T10:07:00+00:00"))
    dispatcher = dispatcher_for(tmp_path / "config.yaml", clock)
    run(dispatcher)  # first polls: the catalogues are recorded, nothing is posted
    feed_server.serve("/collections/all.atom", "shopify-all-2.atom")
    feed_server.serve("/de/collections/all.atom", in_euros("shopify-all-2.atom"), content_type=atom)
    clock.set(datetime.fromisoformat("2026-03-01T10:30:00+00:00"))
    run(dispatcher)

    (english,), (german,) = texts(tmp_path, "out-us"), texts(tmp_path, "out-de")
    assert re.fullmatch(rf"New: Lambswool mittens for \$29\.00 {TRACKED}", english)
    assert re.fullmatch(rf"Neu: Lambswool mittens für 29,00\xa0€ {TRACKED}", german)
    keys = sorted(r.key for r in deliveries(dispatcher))
    assert [re.sub(r"[0-9a-f]{32}", "#", k) for k in keys] == ["shop|out-de|feed:#|@de", "shop|out-us|feed:#|@us"]
    with session(dispatcher.engine) as s:
        markets = sorted((link.channel, link.market) for link in s.exec(select(Link)).all())
    assert markets == [("out-de", "de"), ("out-us", "us")]


def test_a_feeds_market_and_its_channels_are_checked(tmp_path, cli, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    wrong = CAMPAIGN.format(us="https://shop.example.com/a.atom", de="https://shop.example.com/de/a.atom").replace(
        "{channel: out-de, template: feed.j2}", "{channel: out-us, template: feed.j2}")
    write_project(tmp_path, campaign=wrong, templates=TEMPLATES, name="shop.yaml")
    result = cli("validate")
    assert result.output == ("campaigns/shop.yaml:13:19: channel 'out-us' belongs to market 'us': this feed is market "
                             "'de's store feed (use a channel of market 'de')\n1 problem in 1 file\n")
    unnamed = CAMPAIGN.format(us="https://shop.example.com/a.atom", de="https://shop.example.com/de/a.atom").replace(
        "    market: de\n", "")
    write_project(tmp_path, campaign=unnamed, templates=TEMPLATES, name="shop.yaml")
    assert cli("validate").output == ("campaigns/shop.yaml:10:5: feeds[1]: a feed in a campaign with markets names "
                                      "the market it is the store feed of (e.g. market: us)\n1 problem in 1 file\n")
