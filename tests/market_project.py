"""A small store selling in three markets (US, Germany, Austria), written to a folder for the markets tests."""

from __future__ import annotations

from pathlib import Path

from tests.databases import database_url

CONFIG = """\
store:
  name: Northwind Knits
  base_url: https://shop.example.com
  locale: en_US
  currency: USD
database:
  url: {database_url}
tracker:
  public_url: https://go.example.com
timezone: UTC
markets:
  us: {{locale: en_US, currency: USD, timezone: America/New_York}}
  de: {{locale: de_DE, currency: EUR, timezone: Europe/Berlin, base_url: "https://shop.example.com/de",
       link_hosts: [shop.example.de]}}
  at: {{locale: de_AT, currency: EUR, timezone: Europe/Vienna, base_url: "https://shop.example.com/at"}}
channels:
  out-us: {{type: outbox, path: outbox, kind: social, max_length: 280, market: us}}
  out-de: {{type: outbox, path: outbox, kind: social, max_length: 280, market: de}}
  out-all: {{type: outbox, path: outbox, kind: social, max_length: 280}}
{extra_channels}"""

CAMPAIGN = """\
id: mittens
title: Alpaca mittens
start: 2026-11-01
markets: [us, de]
items:
  - id: mittens
    name: Alpaca mittens
    url: /products/alpaca-mittens
    prices: {USD: 39, EUR: 36}
    discount_code: WARM10
    tags: [alpaca]
    markets:
      de: {name: Alpaka-Fäustlinge, url: "https://shop.example.de/produkte/alpaka", tags: [Alpaka]}
      de_AT: {name: Alpaka-Handschuhe}
schedule:
  - cron: "30 11 * * *"
channels:
  - channel: out-us
    template: social/post.j2
  - channel: out-de
    template: social/post.j2
"""

TEMPLATES = {
    "social/post.j2": "New: {{ item.name }} for {{ item | price }}, {{ slot.strftime('%H:%M %Z') }}. "
                      "{{ link(item) }} {{ item | hashtags }}\n",
    "social/post.de.j2": "Neu: {{ item.name }} für {{ item | price }}, {{ slot.strftime('%H:%M %Z') }}. "
                         "{{ link(item) }} {{ item | hashtags }}\n",
}


def write_project(root: Path, *, campaign: str = CAMPAIGN, extra_channels: str = "",
                  templates: dict[str, str] | None = None, name: str = "mittens.yaml") -> Path:
    """config.yaml, campaigns/`name` and the templates under `root` (on the suite's database)."""
    (root / "campaigns").mkdir(parents=True, exist_ok=True)
    (root / "config.yaml").write_text(CONFIG.format(database_url=database_url(root), extra_channels=extra_channels),
                                      encoding="utf-8")
    (root / "campaigns" / name).write_text(campaign, encoding="utf-8")
    for file, text in (TEMPLATES if templates is None else templates).items():
        (root / "templates" / file).parent.mkdir(parents=True, exist_ok=True)
        (root / "templates" / file).write_text(text, encoding="utf-8")
    return root
