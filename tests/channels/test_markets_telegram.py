"""Markets on a real client library: python-telegram-bot posting one campaign to two markets' Telegram chats."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fake_platform import FakePlatform
from tests.market_project import CAMPAIGN, write_project

TOKEN = "123456:AAFakeTokenThatMustNeverBeLogged"


def test_each_market_chat_gets_its_language_currency_local_time_and_store(tmp_path: Path, fake: FakePlatform, cli,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TG_TOKEN", TOKEN)
    monkeypatch.chdir(tmp_path)
    channels = "".join(
        f'  tg-{m}: {{type: telegram, token: "${{TG_TOKEN}}", chat_id: "@northwind_{m}", '
        f'base_url: "{fake.base_url}/bot", link_preview: false, market: {m}}}\n' for m in ("us", "de"))
    campaign = CAMPAIGN.replace("channel: out-us", "channel: tg-us").replace("channel: out-de", "channel: tg-de")
    write_project(tmp_path, campaign=campaign, extra_channels=channels)
    assert cli("validate").exit_code == 0

    result = cli("send", "mittens", "--at", "2026-12-01 23:00")

    assert result.exit_code == 0, result.output
    posts = {post["chat_id"]: post["shown"] for post in fake.posts("telegram")}
    assert set(posts) == {"@northwind_us", "@northwind_de"}
    us_link, de_link = posts["@northwind_us"].split()[-2], posts["@northwind_de"].split()[-2]
    assert posts["@northwind_us"] == f"New: Alpaca mittens for $39.00, 11:30 EST. {us_link} #Alpaca"
    assert posts["@northwind_de"] == f"Neu: Alpaka-Fäustlinge für 36,00\xa0€, 11:30 CET. {de_link} #Alpaka"
    shown = cli("preview", "mittens", "--market", "de", "--at", "2026-12-01 00:00")
    assert f"{de_link} -> https://shop.example.de/produkte/alpaka?utm_source=tg-de" in shown.output
