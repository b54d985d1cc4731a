"""Email per market (issue 22): each subscriber gets their market's mail, by their locale, through real SMTP."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from drainage.email.subscribers import ImportReport, import_subscribers, read_csv
from drainage.markets import Market, market_of_locale, markets_of
from drainage.project import load_project
from tests.email_helpers import engine_for, fanouts, slot_arg, write_project
from tests.fakes.smtp import SmtpRecorder, smtp_server

MARKETS = """\
markets:
  us: {locale: en_US, currency: USD, timezone: America/New_York}
  de: {locale: de_DE, currency: EUR, timezone: Europe/Berlin, base_url: "https://shop.example.com/de"}
"""
GERMAN_HTML = """\
<html><body><h1>Hallo {{ subscriber.name }}</h1>
<p>Der <a href="{{ link(item) }}">{{ item.name }}</a> ist wieder da, für {{ item | price }}.</p>
</body></html>
"""
GERMAN_TEXT = ("Hallo {{ subscriber.name }}, der {{ item.name }} ist wieder da: {{ link(item) }}\n"
               "{{ unsubscribe_url }}\n")


@pytest.fixture
def smtp() -> Iterator[SmtpRecorder]:
    with smtp_server() as (recorder, port):
        recorder.port = port  # type: ignore[attr-defined]
        yield recorder


def market_project(root: Path, port: int) -> None:
    write_project(root, port, campaign_extra="    subjects: {de: \"Für {{ subscriber.name }}: {{ item.name }}\"}")
    config = (root / "config.yaml").read_text(encoding="utf-8")
    (root / "config.yaml").write_text(config.replace("timezone: UTC\n", "timezone: UTC\n" + MARKETS),
                                      encoding="utf-8")
    campaign = (root / "campaigns" / "spring.yaml").read_text(encoding="utf-8")
    campaign = campaign.replace("misfire_grace: 1h\n", "misfire_grace: 1h\nmarkets: [us, de]\n").replace(
        "    price: 49.0\n", "    prices: {USD: 49, EUR: 45}\n    markets: {de: {name: Merino-Schal}}\n")
    (root / "campaigns" / "spring.yaml").write_text(campaign, encoding="utf-8")
    (root / "templates" / "email" / "spring.de.html.j2").write_text(GERMAN_HTML, encoding="utf-8")
    (root / "templates" / "email" / "spring.de.txt.j2").write_text(GERMAN_TEXT, encoding="utf-8")


def subscribe(root: Path, rows: list[tuple[str, str]], countries: dict[str, str] | None = None) -> None:
    lines = ["email,name,locale,consent_source,consent_at,country"]
    lines += [f"{a},{a.split('@')[0].title()},{locale},test,2025-01-01T00:00:00Z,{(countries or {}).get(a, '')}"
              for a, locale in rows]
    report = ImportReport()
    engine = engine_for(root)
    import_subscribers(engine, read_csv(io.StringIO("\n".join(lines) + "\n"), report), ["newsletter"], report)
    engine.dispose()


def test_each_subscriber_gets_the_mail_of_their_market(tmp_path: Path, smtp: SmtpRecorder, cli) -> None:
    market_project(tmp_path, smtp.port)  # type: ignore[attr-defined]
    subscribe(tmp_path, [("ann@example.com", "en_US"), ("bob@example.com", "de_DE"), ("carl@example.com", "de-AT"),
                         ("dora@example.com", "fr_FR"), ("emil@example.com", "")])
    result = cli("send", "spring", "--at", slot_arg(), "--config", str(tmp_path / "config.yaml"))
    assert result.exit_code == 0, result.output
    subjects = {r.recipient: r.message["Subject"] for r in smtp.received}
    assert subjects == {  # German speakers (de_DE, de-AT) get the German mail; the rest the home market's (us)
        "ann@example.com": "Für Ann: Merino scarf", "dora@example.com": "Für Dora: Merino scarf",
        "emil@example.com": "Für Emil: Merino scarf",
        "bob@example.com": "Für Bob: Merino-Schal", "carl@example.com": "Für Carl: Merino-Schal"}
    bob = smtp.to("bob@example.com")[0].message.get_body(("plain",)).get_content()
    assert bob.startswith("Hallo Bob, der Merino-Schal ist wieder da: https://go.example.com/c/")
    ann = smtp.to("ann@example.com")[0].message.get_body(("html",)).get_content()
    assert "for $49.00" in ann
    assert sorted((f.delivery_key.rsplit("|", 1)[1], f.total) for f in fanouts(engine_for(tmp_path))) == [
        ("@de", 2), ("@us", 3)]


def test_a_country_attribute_picks_the_market_when_the_locale_does_not(tmp_path: Path, smtp: SmtpRecorder,
                                                                        cli) -> None:
    market_project(tmp_path, smtp.port)  # type: ignore[attr-defined]
    subscribe(tmp_path, [("ann@example.com", "en"), ("bob@example.com", "de"), ("carl@example.com", "en_US"),
                         ("dora@example.com", ""), ("emil@example.com", "en")],
              {"ann@example.com": "DE", "bob@example.com": "US", "carl@example.com": "de", "dora@example.com": "de"})
    result = cli("send", "spring", "--at", slot_arg(), "--config", str(tmp_path / "config.yaml"))
    assert result.exit_code == 0, result.output
    subjects = {r.recipient: r.message["Subject"] for r in smtp.received}
    assert subjects == {  # ann: en + DE -> de; bob: de + US -> us; carl: the exact locale en_US wins over DE
        "ann@example.com": "Für Ann: Merino-Schal", "bob@example.com": "Für Bob: Merino scarf",
        "carl@example.com": "Für Carl: Merino scarf", "dora@example.com": "Für Dora: Merino-Schal",
        "emil@example.com": "Für Emil: Merino scarf"}
    assert sorted((f.delivery_key.rsplit("|", 1)[1], f.total) for f in fanouts(engine_for(tmp_path))) == [
        ("@de", 2), ("@us", 3)]


def test_a_country_picks_among_markets_of_that_country_by_language() -> None:
    from zoneinfo import ZoneInfo

    def market(id_: str, locale: str) -> Market:
        return Market(id_, locale, "CHF", ZoneInfo("UTC"), "https://shop.example.com", ("shop.example.com",))

    markets = {m.id: m for m in (market("us", "en_US"), market("ch-de", "de_CH"), market("ch-fr", "fr_CH"),
                                 market("at", "de_AT"))}
    pick = {(loc, c): market_of_locale(loc, markets, c).id for loc, c in (  # type: ignore[union-attr]
        ("fr", "CH"), ("de", "CH"), ("it", "CH"), ("fr_CH", ""), ("de_CH", "AT"), ("de", ""), ("it_IT", "at"),
        ("", "XX"))}
    assert pick == {("fr", "CH"): "ch-fr", ("de", "CH"): "ch-de", ("it", "CH"): "ch-de", ("fr_CH", ""): "ch-fr",
                    ("de_CH", "AT"): "ch-de", ("de", ""): "ch-de", ("it_IT", "at"): "at", ("", "XX"): "us"}


def test_a_locale_picks_its_market() -> None:
    project_markets = markets_of(load_project_config())
    pick = {loc: market_of_locale(loc, project_markets).id for loc in  # type: ignore[union-attr]
            ("de_DE", "de-AT", "de", "en_US", "en_GB", "fr_FR", "", "DE_de")}
    assert pick == {"de_DE": "de", "de-AT": "de", "de": "de", "en_US": "us", "en_GB": "us", "fr_FR": "us", "": "us",
                    "DE_de": "de"}
    assert market_of_locale("de_DE", {}) is None


def load_project_config():  # type: ignore[no-untyped-def]
    from tests.conftest import REPO

    return load_project(REPO / "config.yaml").config.config
