"""Markets (issue 22): one campaign posted in several markets, each in its language, currency, time zone, channels
and store URLs; journal keys of campaigns without markets never change; every market problem at its file:line."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlmodel import select

from drainage.campaign_markets import resolve_item
from drainage.campaigns import Item, MarketValues
from drainage.clock import FakeClock
from drainage.links import link_code
from drainage.markets import Market, MarketValueError, localized_names
from drainage.posts import plan_campaign
from drainage.project import load_project
from drainage.reports.query import build_report
from drainage.reports.render_csv_json import to_json
from drainage.reports.request import parse_request
from drainage.store.db import make_engine, session
from drainage.store.models import Delivery, Link
from drainage.tracker.visitors import VisitorHasher
from drainage.tracker.writer import write_batch
from tests.conftest import REPO
from tests.daemon_helpers import make_dispatcher, rows
from tests.market_project import CAMPAIGN, TEMPLATES, write_project

BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"


@pytest.fixture
def shop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return write_project(tmp_path)


def outbox(root: Path, channel: str) -> list[dict]:
    path = root / "outbox" / f"{channel}.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []


def market(id_: str, locale: str, currency: str) -> Market:
    from zoneinfo import ZoneInfo

    return Market(id_, locale, currency, ZoneInfo("UTC"), "https://shop.example.com", ("shop.example.com",))


# -- one campaign, two markets, end to end ---------------------------------------------------------------------

def test_two_markets_validate_plan_and_send_each_in_its_language_currency_time_channel_and_store(shop, cli) -> None:
    assert cli("validate").output.strip() == ("ok: config.yaml and 1 campaign are valid; every template renders "
                                              "within its channel's limit")
    plan = cli("plan", "--from", "2026-12-01T00:00:00+00:00", "--days", "1")
    assert plan.exit_code == 0, plan.output
    lines = [line for line in plan.output.splitlines() if "2026-12-01" in line and "mittens" in line]
    assert len(lines) == 2
    assert "Tue 2026-12-01 11:30 CET" in lines[0] and " de " in lines[0] and "out-de" in lines[0]
    assert "Neu: Alpaka-Fäustlinge für 36,00\xa0€, 11:30 CET." in lines[0]
    assert "Tue 2026-12-01 11:30 EST" in lines[1] and " us " in lines[1] and "out-us" in lines[1]
    assert "New: Alpaca mittens for $39.00, 11:30 EST." in lines[1]

    sent = cli("send", "mittens", "--at", "2026-12-01 23:00")
    assert sent.exit_code == 0, sent.output
    (us,), (de,) = outbox(shop, "out-us"), outbox(shop, "out-de")
    assert us["key"] == "mittens|out-us|mittens|-|2026-12-01T16:30:00Z|@us"  # 11:30 in New York
    assert de["key"] == "mittens|out-de|mittens|-|2026-12-01T10:30:00Z|@de"  # 11:30 in Berlin
    us_link, de_link = us["links"][0], de["links"][0]
    assert us["text"] == f"New: Alpaca mittens for $39.00, 11:30 EST. {us_link} #Alpaca"
    assert de["text"] == f"Neu: Alpaka-Fäustlinge für 36,00\xa0€, 11:30 CET. {de_link} #Alpaka"
    assert (us["market"], de["market"]) == ("us", "de")
    assert outbox(shop, "out-all") == []

    engine = make_engine(load_project(shop / "config.yaml").config.database_url)
    with session(engine) as s:
        links = {link.market: link for link in s.exec(select(Link)).all()}
        deliveries = {d.market: d.key for d in s.exec(select(Delivery)).all()}
    engine.dispose()
    assert links["us"].target == ("https://shop.example.com/products/alpaca-mittens?utm_source=out-us"
                                  "&utm_medium=social&utm_campaign=mittens")
    assert links["de"].target == ("https://shop.example.de/produkte/alpaka?utm_source=out-de&utm_medium=social"
                                  "&utm_campaign=mittens")
    assert us_link.endswith(links["us"].code) and de_link.endswith(links["de"].code)
    assert deliveries == {"us": us["key"], "de": de["key"]}

    again = cli("send", "mittens", "--at", "2026-12-01 23:00")
    assert [line.split(" | ")[0] for line in again.output.splitlines()] == [
        "already sent mittens -> out-us", "already sent mittens -> out-de"]


def test_plan_and_preview_take_a_market(shop, cli) -> None:
    plan = cli("plan", "--from", "2026-12-01T00:00:00+00:00", "--days", "1", "--market", "de")
    assert "1 posts planned" in plan.output and "out-us" not in plan.output and "out-de" in plan.output
    shown = cli("preview", "mittens", "--market", "us", "--at", "2026-12-01 00:00")
    assert shown.exit_code == 0, shown.output
    assert "mittens -> out-us | Tue 2026-12-01 11:30 EST | item mittens | market us" in shown.output
    assert "out-de" not in shown.output
    assert "template social/post.j2" in shown.output
    german = cli("preview", "mittens", "--market", "de", "--at", "2026-12-01 00:00")
    assert "template social/post.de.j2" in german.output
    assert "-> https://shop.example.de/produkte/alpaka?utm_source=out-de" in german.output
    unknown = cli("preview", "mittens", "--market", "fr")
    assert (unknown.exit_code, unknown.output.splitlines()[0]) == (2, "config.yaml: no market 'fr' (markets: at, de, "
                                                                   "us)")
    other = cli("preview", "mittens", "--market", "at")
    assert (other.exit_code, other.output.splitlines()[0]) == (
        2, "campaigns/mittens.yaml: campaign 'mittens' does not post in market 'at' (its markets: us, de)")


def test_send_takes_a_market_and_reads_at_in_its_time_zone(shop, cli) -> None:
    german = cli("send", "mittens", "--market", "de", "--at", "2026-12-01 11:20")  # 10:20 UTC: before today's 11:30
    assert german.exit_code == 0, german.output
    assert [p["key"] for p in outbox(shop, "out-de")] == ["mittens|out-de|mittens|-|2026-11-30T10:30:00Z|@de"]
    assert outbox(shop, "out-us") == []
    american = cli("send", "mittens", "--market", "us", "--at", "2026-12-01 11:40")  # 16:40 UTC in New York
    assert american.exit_code == 0, american.output
    assert [p["key"] for p in outbox(shop, "out-us")] == ["mittens|out-us|mittens|-|2026-12-01T16:30:00Z|@us"]
    assert len(outbox(shop, "out-de")) == 1
    none = cli("send", "mittens", "--market", "us", "--channel", "out-de")
    assert (none.exit_code, none.output.splitlines()[0]) == (
        2, "campaigns/mittens.yaml: campaign 'mittens' posts nothing for market 'us' on channel 'out-de' (see "
           "`drainage plan --market us`)")
    other = cli("send", "mittens", "--market", "at")
    assert (other.exit_code, other.output.splitlines()[0]) == (
        2, "campaigns/mittens.yaml: campaign 'mittens' does not post in market 'at' (its markets: us, de)")


def test_status_shows_each_markets_next_slot_in_the_markets_time_zone(shop, cli) -> None:
    from drainage.status import collect

    project = load_project(shop / "config.yaml")
    runs = collect(project, None, datetime(2026, 12, 1, 12, 0, tzinfo=UTC)).next_runs
    assert [(r.channel, r.market, r.local) for r in runs] == [
        ("out-us", "us", "Tue 2026-12-01 11:30 EST"), ("out-de", "de", "Wed 2026-12-02 11:30 CET")]
    shown = cli("status")
    assert shown.exit_code == 0, shown.output
    row = next(line for line in shown.output.splitlines() if "out-de" in line)
    assert " de " in row and "11:30 CE" in row  # CET or CEST, whichever today is in Berlin


def test_the_daemon_plans_each_market_at_its_own_local_time_with_its_own_rotation(shop) -> None:
    two_items = CAMPAIGN.replace("schedule:", """  - id: beanie
    name: Alpaca beanie
    url: /products/alpaca-beanie
    prices: {USD: 45, EUR: 42}
schedule:""")
    (shop / "campaigns" / "mittens.yaml").write_text(two_items, encoding="utf-8")
    clock = FakeClock(datetime(2026, 12, 1, 0, 0, tzinfo=UTC))
    _, dispatcher = make_dispatcher(shop / "config.yaml", clock)
    asyncio.run(dispatcher.run_all())  # first sight: cursors start now
    clock.set(datetime(2026, 12, 2, 17, 0, tzinfo=UTC))  # 30 minutes after the US slot
    asyncio.run(dispatcher.run_all())
    got = [(r.market, r.channel, r.item, r.slot_at.strftime("%d %H:%M"), r.status) for r in rows(dispatcher)]
    assert got == [  # each market starts its own round-robin: both post the mittens first
        ("de", "out-de", "mittens", "01 10:30", "missed"),
        ("us", "out-us", "mittens", "01 16:30", "missed"),
        ("de", "out-de", "beanie", "02 10:30", "missed"),
        ("us", "out-us", "beanie", "02 16:30", "sent"),
    ]


def test_a_channel_of_no_market_takes_each_markets_post_only_where_the_entry_says(shop, cli) -> None:
    campaign = CAMPAIGN + "  - channel: out-all\n    template: social/post.j2\n    markets: [de]\n"
    (shop / "campaigns" / "mittens.yaml").write_text(campaign, encoding="utf-8")
    assert cli("send", "mittens", "--at", "2026-12-01 23:00").exit_code == 0
    (post,) = outbox(shop, "out-all")
    assert post["text"].startswith("Neu: Alpaka-Fäustlinge für 36,00\xa0€") and post["market"] == "de"
    both = CAMPAIGN + "  - channel: out-all\n    template: social/post.j2\n"
    (shop / "campaigns" / "mittens.yaml").write_text(both, encoding="utf-8")
    assert cli("send", "mittens", "--at", "2026-12-02 23:00").exit_code == 0
    texts = sorted(p["text"].split(",")[0] for p in outbox(shop, "out-all")[1:])
    assert texts == ["Neu: Alpaka-Fäustlinge für 36", "New: Alpaca mittens for $39.00"]
    codes = {p["links"][0] for p in outbox(shop, "out-all")[1:]}
    assert len(codes) == 2  # one channel, two markets: two links, each recorded with its market


def test_themes_limited_to_a_market_show_only_there(shop, cli) -> None:
    campaign = CAMPAIGN.replace("title: Alpaca mittens", "title: Alpaca mittens\nthemes:\n  - {name: advent, "
                                "from: 12-01, to: 12-24, markets: [de], templates: {social/post.j2: social/advent.j2}}")
    (shop / "campaigns" / "mittens.yaml").write_text(campaign, encoding="utf-8")
    (shop / "templates" / "social" / "advent.j2").write_text("Advent: {{ item.name }} {{ link(item) }}\n",
                                                              encoding="utf-8")  # the theme's usual template
    (shop / "templates" / "social" / "advent.de.j2").write_text("Adventszeit: {{ item.name }} {{ link(item) }}\n",
                                                                 encoding="utf-8")
    assert cli("validate").exit_code == 0
    assert cli("send", "mittens", "--at", "2026-12-01 23:00").exit_code == 0
    assert outbox(shop, "out-de")[0]["text"].startswith("Adventszeit: Alpaka-Fäustlinge https://go.example.com/c/")
    assert outbox(shop, "out-us")[0]["text"].startswith("New: Alpaca mittens for $39.00")


# -- key stability: an upgraded daemon must never post again ------------------------------------------------------

def test_keys_and_link_codes_of_campaigns_without_markets_do_not_change(project_dir: Path) -> None:
    """Pinned: the example launch campaign's first key and link code as every earlier release made them. The
    example config.yaml declares markets now; a campaign without `markets:` must not notice."""
    project = load_project(project_dir / "config.yaml")
    launch = project.campaign("scarf-launch")
    (first,) = [p for p in plan_campaign(launch, datetime(2026, 11, 27, 7, tzinfo=UTC),
                                         datetime(2026, 11, 27, 9, tzinfo=UTC)) if p.channel == "social-outbox"]
    assert first.market is None
    assert first.key == "scarf-launch|social-outbox|merino-scarf-red|benefit|2026-11-27T08:00:00Z"
    composed = project.compose(first)
    assert [link.code for link in composed.links] == ["iueiap5glknv"]  # as drainage made it before markets
    assert composed.links[0].target == ("https://shop.example.com/products/merino-scarf?color=red&utm_source="
                                        "social-outbox&utm_medium=social&utm_campaign=merino-launch-2026"
                                        "&utm_content=benefit")
    assert composed.links[0].market == "" and composed.post.market == ""
    assert link_code("https://shop.example.com/x", "c", "ch", "i", "v") == "iqkshcmgytcg"
    assert link_code("https://shop.example.com/x", "c", "ch", "i", "v", market="de") != "iqkshcmgytcg"


def test_the_example_project_ships_a_german_market(project_dir: Path, cli) -> None:
    assert "markets:" in (REPO / "config.yaml").read_text(encoding="utf-8")
    shown = cli("preview", "mitten-launch", "--market", "de", "--at", "2026-12-01 00:00")
    assert shown.exit_code == 0, shown.output
    assert "Tue 2026-12-01 11:30 CET" in shown.output and "template social/arrival.de.j2" in shown.output
    assert "Neu im Shop: Alpaka-Fäustlinge, Hafer für 36,00\xa0€." in shown.output
    assert "-> https://shop.example.com/de/products/alpaca-mittens?utm_source=social-outbox-de" in shown.output


# -- items per market: the fallback chain and its errors -----------------------------------------------------------

def test_item_values_fall_back_market_locale_language_then_the_item() -> None:
    item = Item(id="scarf", name="Scarf", url="/scarf", price=49, prices={"EUR": 45, "CHF": 52},
                description="Warm.", markets={"de": MarketValues(name="Schal", description="Warm auf Deutsch."),
                                              "de_AT": MarketValues(name="Halstuch"),
                                              "ch": MarketValues(price=50)})
    austria = resolve_item(item, market("at", "de_AT", "EUR"), "USD")
    assert (austria.name, austria.description, austria.price, austria.currency) == (
        "Halstuch", "Warm auf Deutsch.", 45, "EUR")
    germany = resolve_item(item, market("de", "de_DE", "EUR"), "USD")
    assert (germany.name, germany.price) == ("Schal", 45)
    swiss = resolve_item(item, market("ch", "de_CH", "CHF"), "USD")
    assert (swiss.name, swiss.price) == ("Schal", 50)  # the market's own price beats prices[CHF]
    us = resolve_item(item, market("us", "en_US", "USD"), "USD")
    assert (us.name, us.price, us.key) == ("Scarf", 49, "scarf")
    unnamed = Item(name="Scarf", url="/s", markets={"de": MarketValues(name="Schal")})
    assert resolve_item(unnamed, market("de", "de_DE", "EUR"), "USD").key == "scarf"  # not 'schal'
    article = Item(name="Care guide", url="/blog/care")  # no price anywhere: nothing to convert, no error
    assert resolve_item(article, market("de", "de_DE", "EUR"), "USD").price is None
    with pytest.raises(MarketValueError) as caught:
        resolve_item(item, market("jp", "ja_JP", "JPY"), "USD")
    assert str(caught.value) == "item 'scarf' has no price in JPY for market 'jp' (it has CHF, EUR, USD)"


def test_translated_template_names() -> None:
    de = market("de", "de_DE", "EUR")
    assert localized_names("social/launch.j2", de) == ["social/launch.de_DE.j2", "social/launch.de.j2"]
    assert localized_names("email/gift.txt.j2", de) == ["email/gift.de_DE.txt.j2", "email/gift.de.txt.j2"]
    assert localized_names("mail.html", market("fr", "fr", "EUR")) == ["mail.fr.html"]


def validate(root: Path, cli, campaign: str, templates: dict[str, str] | None = None, extra: str = "") -> str:
    write_project(root, campaign=campaign, templates=templates, extra_channels=extra)
    result = cli("validate")
    assert result.exit_code == 2, result.output
    return result.output


def test_a_market_without_a_price_in_its_currency_is_an_error_at_the_item(shop, cli) -> None:
    output = validate(shop, cli, CAMPAIGN.replace("prices: {USD: 39, EUR: 36}", "prices: {USD: 39}"))
    assert output == ("campaigns/mittens.yaml:9:13: item 'mittens' has no price in EUR for market 'de' (it has "
                      "USD) (add it to the item: prices: {EUR: ...} (prices are never converted))\n"
                      "1 problem in 1 file\n")


def test_a_missing_translation_is_an_error_unless_the_market_allows_the_default(shop, cli) -> None:
    english_only = {"social/post.j2": TEMPLATES["social/post.j2"]}
    (shop / "templates" / "social" / "post.de.j2").unlink()
    output = validate(shop, cli, CAMPAIGN, english_only)
    assert output == ("campaigns/mittens.yaml:21:15: no de translation of 'social/post.j2' for market 'de' (add "
                      "templates/social/post.de_DE.j2 or templates/social/post.de.j2, or set 'untranslated: default' "
                      "on market 'de' in config.yaml)\n1 problem in 1 file\n")
    config = (shop / "config.yaml").read_text(encoding="utf-8")
    (shop / "config.yaml").write_text(config.replace("base_url: \"https://shop.example.com/de\",",
                                                     "base_url: \"https://shop.example.com/de\", untranslated: "
                                                     "default,"), encoding="utf-8")
    assert cli("validate").exit_code == 0


def test_market_references_are_checked_with_file_and_line(shop, cli) -> None:
    output = validate(shop, cli, CAMPAIGN.replace("markets: [us, de]", "markets: [us, dee]"))
    assert output == ("campaigns/mittens.yaml:4:15: no market 'dee' in config.yaml (did you mean 'de'?)\n"
                      "1 problem in 1 file\n")
    wrong_channel = CAMPAIGN.replace("markets: [us, de]", "markets: [us]")
    output = validate(shop, cli, wrong_channel)
    assert output == ("campaigns/mittens.yaml:20:14: channel 'out-de' belongs to market 'de', which this entry does "
                      "not post for (it posts for us) (add 'de' to the campaign's markets, or use a channel of us)\n"
                      "1 problem in 1 file\n")
    no_markets = CAMPAIGN.replace("markets: [us, de]\n", "")
    output = validate(shop, cli, no_markets)
    assert output.splitlines()[0] == (
        "campaigns/mittens.yaml:17:14: channel 'out-us' belongs to market 'us': a campaign without markets would "
        "post the store's default language on it (add 'markets: [us]' to the campaign)")
    bad_key = CAMPAIGN.replace("de_AT: {name", "de-XX: {name")
    output = validate(shop, cli, bad_key)
    assert output == ("campaigns/mittens.yaml:14:7: 'de-XX' is not a market id, locale or language of "
                      "config.yaml's markets (known: at, de, de_AT, de_DE, en, en_US, us)\n1 problem in 1 file\n")
    narrowed = CAMPAIGN + "  - channel: out-all\n    template: social/post.j2\n    markets: [fr]\n"
    output = validate(shop, cli, narrowed)
    assert output == ("campaigns/mittens.yaml:24:14: channels[2].markets: market 'fr' is not one of the "
                      "campaign's markets (the "
                      "campaign's markets: us, de)\n1 problem in 1 file\n")


def test_item_urls_of_a_market_campaign_are_checked_against_each_markets_own_hosts(shop, cli) -> None:
    german_only = CAMPAIGN.replace("markets: [us, de]", "markets: [de]").replace(
        "url: /products/alpaca-mittens", "url: https://shop.example.de/produkte/alpaka-mittens").split(
        "  - channel: out-us")[0] + "  - channel: out-de\n    template: social/post.j2\n"
    write_project(shop, campaign=german_only)
    result = cli("validate")
    assert result.exit_code == 0, result.output  # shop.example.de is only market de's host, not the store's
    both = german_only.replace("markets: [de]", "markets: [us, de]").replace(
        "      de: {name: Alpaka-Fäustlinge, url: \"https://shop.example.de/produkte/alpaka\", ",
        "      de: {name: Alpaka-Fäustlinge, ")
    output = validate(shop, cli, both)
    assert output == ("campaigns/mittens.yaml:8:10: market 'us': link host 'shop.example.de' is not one of the "
                      "store's hosts (shop.example.com); add it to store.link_hosts if it is yours (or, for "
                      "market 'us' alone, to markets.us.link_hosts in config.yaml)\n1 problem in 1 file\n")


VARIANT_VARS = """\
    variants:
      - name: a
        vars: {hook: Warm hands., code: 10}
"""


def test_variant_and_theme_vars_are_translated_per_market_or_a_problem(shop, cli) -> None:
    hooked = {name: "{{ variant.hook | default('-') }} {{ theme.greeting | default('-') }} " + text
              for name, text in TEMPLATES.items()}
    campaign = CAMPAIGN.replace("  - channel: out-de\n    template: social/post.j2\n",
                                "  - channel: out-de\n    template: social/post.j2\n" + VARIANT_VARS)
    campaign += "themes:\n  - {name: xmas, from: 12-01, to: 12-26, vars: {greeting: Merry Christmas!}}\n"
    output = validate(shop, cli, campaign, hooked)
    assert output == (
        "campaigns/mittens.yaml:24:16: no de translation of var 'hook' of variant 'a' for market 'de' (add "
        "market_vars: {de: {hook: \"...\"}} beside its vars, or set 'untranslated: default' on market 'de' in "
        "config.yaml)\n"
        "campaigns/mittens.yaml:26:49: no de translation of var 'greeting' of theme 'xmas' for market 'de' (add "
        "market_vars: {de: {greeting: \"...\"}} beside its vars, or set 'untranslated: default' on market 'de' in "
        "config.yaml)\n2 problems in 1 file\n")
    translated = campaign.replace("vars: {hook: Warm hands., code: 10}",
                                  "vars: {hook: Warm hands., code: 10}\n        market_vars: {de: {hook: Warme "
                                  "Hände.}, de_AT: {hook: Warme Pfoten.}}").replace(
        "vars: {greeting: Merry Christmas!}", "vars: {greeting: Merry Christmas!}, market_vars: {de_DE: {greeting: "
        "Frohe Weihnachten!}}")
    write_project(shop, campaign=translated, templates=hooked)
    assert cli("validate").exit_code == 0
    german = cli("preview", "mittens", "--market", "de", "--at", "2026-12-01 00:00")
    assert "Warme Hände. Frohe Weihnachten! Neu: Alpaka-Fäustlinge" in german.output, german.output
    english = cli("preview", "mittens", "--market", "us", "--at", "2026-12-01 00:00")
    assert "- Merry Christmas! New: Alpaca mittens" in english.output, english.output
    typo = translated.replace("de_AT: {hook:", "de_AT: {hok:")
    output = validate(shop, cli, typo, hooked)
    assert output == ("campaigns/mittens.yaml:25:57: 'hok' is not one of the vars of variant 'a' (did you mean "
                      "'hook'?)\n1 problem in 1 file\n")
    config = (shop / "config.yaml").read_text(encoding="utf-8")
    write_project(shop, campaign=campaign, templates=hooked)
    (shop / "config.yaml").write_text(config.replace("base_url: \"https://shop.example.com/de\",",
                                                     "base_url: \"https://shop.example.com/de\", untranslated: "
                                                     "default,"), encoding="utf-8")
    assert cli("validate").exit_code == 0  # the market takes the vars as written
    fallback = cli("preview", "mittens", "--market", "de", "--at", "2026-12-01 00:00")
    assert "Warm hands. Merry Christmas! Neu: Alpaka-Fäustlinge" in fallback.output, fallback.output


def test_a_channel_market_must_exist(shop, cli) -> None:
    output = validate(shop, cli, CAMPAIGN, extra="  out-fr: {type: outbox, path: outbox, market: fr}\n")
    assert output == "config.yaml:20:48: no market 'fr' in markets (markets: at, de, us)\n1 problem in 1 file\n"


def test_validate_renders_and_length_checks_every_markets_post(shop, cli) -> None:
    long_german = {**TEMPLATES, "social/post.de.j2": "{{ 'ü' * 300 }} {{ link(item) }}\n"}
    output = validate(shop, cli, CAMPAIGN, long_german)
    assert output == ("campaigns/mittens.yaml:21:15: post for channel 'out-de', market 'de', item 'mittens' is 338 "
                      "characters, over the channel's limit of 280 (shorten the template, or set 'truncate: true' on "
                      "the channel to cut it; links are kept)\n1 problem in 1 file\n")


# -- reports split by market ----------------------------------------------------------------------------------------

def test_reports_group_and_filter_by_market(shop, cli) -> None:
    assert cli("send", "mittens", "--at", "2026-12-01 23:00").exit_code == 0
    engine = make_engine(load_project(shop / "config.yaml").config.database_url)
    with session(engine) as s:
        codes = {link.market: link.code for link in s.exec(select(Link)).all()}
    noon = datetime(2026, 12, 1, 12, tzinfo=UTC).timestamp()
    people = [("de", 1), ("de", 1), ("de", 2), ("de", 3), ("de", 4), ("us", 1), ("us", 5)]  # de: 5 clicks, 4 people
    write_batch(engine, [(f"k{n}", codes[market], noon + n, f"10.0.0.{person}", BROWSER, "GET", "")
                         for n, (market, person) in enumerate(people)], VisitorHasher(b"k" * 32))
    request = parse_request(start="2026-12-01", end="2026-12-02", by="market")
    report = build_report(engine, request)
    assert [(r.market, r.posts_sent, r.human_clicks, r.unique_visitors) for r in report.rows] == [
        ("de", 1, 5, 4), ("us", 1, 2, 2)]
    only_de = build_report(engine, parse_request(start="2026-12-01", end="2026-12-02", by="channel", markets=["de"]))
    assert [(r.channel, r.posts_sent, r.human_clicks) for r in only_de.rows] == [("out-de", 1, 5)]
    doc = json.loads(to_json(only_de))
    assert doc["filters"]["market"] == ["de"]
    engine.dispose()
    table = cli("report", "--from", "2026-12-01", "--to", "2026-12-02", "--by", "market")
    assert table.exit_code == 0, table.output
    assert "by market" in table.output
    html = cli("report", "--from", "2026-12-01", "--to", "2026-12-02", "--format", "html")
    assert "<h2>By market</h2>" in html.output
    csv_out = cli("report", "--from", "2026-12-01", "--to", "2026-12-02", "--by", "market", "--format", "csv")
    assert csv_out.output.splitlines()[0].endswith(",revenue_per_post,market")
    assert csv_out.output.splitlines()[1].endswith(",de")


def test_market_placeholder_in_utm_tags_and_subject_lines_per_market(shop, cli) -> None:
    campaign = CAMPAIGN.replace("title: Alpaca mittens", "title: Alpaca mittens\nutm: {campaign: \"mittens-{market}\"}")
    entry = "  - channel: out-de\n    template: social/post.j2\n"
    campaign = campaign.replace(entry, entry + "    subject: \"New: {{ item.name }}\"\n")
    output = validate(shop, cli, campaign)
    assert output == ("campaigns/mittens.yaml:23:14: no de subject line for market 'de' (add subjects: {de: \"...\"} "
                      "to this channel, or set 'untranslated: default' on market 'de' in config.yaml)\n"
                      "1 problem in 1 file\n")
    fixed = campaign.replace("    subject: \"New: {{ item.name }}\"\n",
                             "    subject: \"New: {{ item.name }}\"\n    subjects: {de: \"Neu: {{ item.name }}\"}\n")
    write_project(shop, campaign=fixed)
    shown = cli("preview", "mittens", "--market", "de", "--at", "2026-12-01 00:00")
    assert shown.exit_code == 0, shown.output
    assert "Subject: Neu: Alpaka-Fäustlinge" in shown.output
    assert "utm_campaign=mittens-de" in shown.output


GETTEXT = {"social/post.j2": "{% trans name=item.name, price=item | price %}New: {{ name }} for {{ price }}."
                             "{% endtrans %} {{ link(item) }} {{ _('Warm hands.') }}\n"}
PO = """\
msgid ""
msgstr ""
"Content-Type: text/plain; charset=UTF-8\\n"

msgid "New: %(name)s for %(price)s."
msgstr "Neu: %(name)s für %(price)s."
"""


def test_gettext_catalogs_translate_trans_blocks_and_validate_names_each_missing_message(shop, cli) -> None:
    (shop / "templates" / "social" / "post.de.j2").unlink()
    write_project(shop, templates=GETTEXT)
    catalog = shop / "locales" / "de" / "LC_MESSAGES" / "messages.po"
    catalog.parent.mkdir(parents=True)
    catalog.write_text(PO, encoding="utf-8")
    output = cli("validate").output
    assert output == ("templates/social/post.j2:1: no de translation of \"Warm hands.\" for market 'de' in "
                      "locales/de/LC_MESSAGES/messages.po (add it (pybabel update, then translate it), or translate "
                      "the whole template in a file of its own)\n1 problem in 1 file\n")
    catalog.write_text(PO + '\nmsgid "Warm hands."\nmsgstr "Warme Hände."\n', encoding="utf-8")
    assert cli("validate").exit_code == 0
    assert cli("send", "mittens", "--at", "2026-12-01 23:00").exit_code == 0
    (us,), (de,) = outbox(shop, "out-us"), outbox(shop, "out-de")
    assert us["text"] == f"New: Alpaca mittens for $39.00. {us['links'][0]} Warm hands."
    assert de["text"] == f"Neu: Alpaka-Fäustlinge für 36,00\xa0€. {de['links'][0]} Warme Hände."
