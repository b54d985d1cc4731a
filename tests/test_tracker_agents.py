"""Bot classification against maintained corpora: recall over the crawler-user-agents instances, false positives
over real browser agents (in-app browsers are people), and the kinds of agents no list names yet."""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path

import crawleruseragents
import pytest
from hypothesis import given
from hypothesis import strategies as st

from drainage.tracker.agents import classify

DATA = Path(__file__).parent / "data"


def _browser_agents() -> list[str]:
    lines = (DATA / "browser_agents.txt").read_text().splitlines()
    return [line for line in lines if line.strip() and not line.startswith("#")]


def _fake_useragent_corpus() -> list[str]:
    """Real-world browser agents as the fake-useragent package ships them (a dev dependency, no network)."""
    text = files("fake_useragent").joinpath("data/browsers.jsonl").read_text()
    return sorted({json.loads(line)["useragent"] for line in text.splitlines() if line.strip()})


def test_recall_over_the_crawler_user_agents_instances_is_at_least_99_percent() -> None:
    instances = [ua for entry in crawleruseragents.CRAWLER_USER_AGENTS_DATA for ua in entry["instances"]]
    assert len(instances) > 1500
    missed = [ua for ua in instances if classify(ua)[0] == "human"]
    assert len(missed) <= 0.01 * len(instances), missed[:20]


def test_at_most_half_a_percent_of_real_browser_agents_are_flagged() -> None:
    corpus = _fake_useragent_corpus()
    assert len(corpus) > 500
    flagged = [ua for ua in corpus if classify(ua)[0] != "human"]
    assert len(flagged) <= 0.005 * len(corpus), flagged[:20]


@pytest.mark.parametrize("agent", _browser_agents())
def test_browsers_and_in_app_browsers_are_people(agent: str) -> None:
    assert classify(agent)[0] == "human"


@pytest.mark.parametrize("agent", [
    "Mozilla/5.0 (compatible; SnapURLPreview/1.0; +https://developers.snap.com/robots)",
    "Mozilla/5.0 (compatible; Bluesky Cardyb/1.1; +mailto:support@bsky.app)",
    "Mozilla/5.0 (compatible; ClickUpLinkUnfurler/1.0)",
    "gotosocial/0.16.0 (+https://social.example.org/)",
    "http.rb/5.1.1 (Mastodon/4.2.10; +https://mastodon.example/)",
    "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
    "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
    # kinds nobody lists: what they call themselves
    "AcmeChat-LinkPreview/2.1", "Mozilla/5.0 (compatible; ZorbUnfurler/1.0)", "QuuxSocial Embedder 3",
])
def test_link_preview_fetchers_are_previews(agent: str) -> None:
    assert classify(agent) == ("preview", "bot")


@pytest.mark.parametrize("agent", [
    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; Perplexity-User/1.0; +https://perplexity.ai/perplexity-user)",
    "anthropic-ai", "cohere-ai",
    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; +https://openai.com/gptbot)",
    "Datadog Agent/7.52.0", "Amazon CloudFront",
    "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36 "
    "(compatible; Chrome Privacy Preserving Prefetch Proxy)",
    # kinds nobody lists
    "QuuxUptimeMonitor/3.0", "Mozilla/5.0 (compatible; BlorpHealthCheck/1.0)", "ZetaGPT-User/1.0",
    "Mozilla/5.0 (compatible; NewEngineSpider/1.0)", "QwertyCrawler/0.1", "FooBar-Scraper 2.0",
    "Mozilla/5.0 (compatible; Barbot/1.2)", "Mozilla/5.0 (compatible; Mystery/1.0; +https://example.org/about)",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36",
    "Go-http-client/2.0", "okhttp/4.12.0", "axios/1.7.2", "node-fetch/1.0", "Java/17.0.2", "aiohttp/3.9.5",
    "python-httpx/0.27.0", "Wget/1.21.4", "MyInternalTool/1.0", "Mozilla/5.0", "Mozilla/5.0 (compatible; Kpqr/1.0)",
])
def test_crawlers_monitors_proxies_ai_fetchers_and_clients_are_bots(agent: str) -> None:
    assert classify(agent) == ("bot", "bot")


@given(st.text(max_size=600))
def test_any_agent_gets_a_class_and_a_device(agent: str) -> None:
    agent_class, device = classify(agent)
    assert agent_class in ("human", "preview", "bot")
    assert device in ("desktop", "mobile", "tablet", "bot", "unknown")
