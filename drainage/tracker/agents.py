"""Who is behind a user agent: a person, a link-preview fetch, or another bot; and the device class.

Link previews are fetched by the platforms we post to (TelegramBot, Twitterbot, facebookexternalhit, Discourse's
onebox...): they are kept but counted apart from people, as are crawlers, which the maintained CrawlerDetect
patterns recognise.
"""

from __future__ import annotations

import re
from functools import lru_cache

from crawlerdetect import CrawlerDetect

from drainage.store.models import AgentClass

PREVIEW_AGENTS = (
    "TelegramBot", "Twitterbot", "facebookexternalhit", "facebookcatalog", "Facebot", "meta-externalagent",
    "Discourse Forum Onebox", "Slackbot", "Slack-ImgProxy", "WhatsApp", "Discordbot", "LinkedInBot",
    "Pinterestbot", "redditbot", "SkypeUriPreview", "Iframely", "Embedly", "vkShare", "Mastodon", "Pleroma",
    "Cardyb", "Google-PageRenderer", "Microsoft Preview", "BingPreview", "KakaoTalk-scrap", "Yahoo Link Preview",
)
"""Substrings of the agents that platforms, chat apps and mail clients use to fetch a link's preview."""

_PREVIEW = re.compile("|".join(re.escape(a) for a in PREVIEW_AGENTS), re.IGNORECASE)
_TABLET = re.compile(r"iPad|Tablet|PlayBook|Silk/|Kindle|Nexus (7|9|10)\b|SM-T\d|Android(?!.*Mobile)", re.IGNORECASE)
_MOBILE = re.compile(r"Mobi|iPhone|iPod|Android.*Mobile|Windows Phone|Opera Mini|BlackBerry", re.IGNORECASE)
_detector = CrawlerDetect()


@lru_cache(maxsize=4096)
def classify(user_agent: str, method: str = "GET") -> tuple[str, str]:
    """(agent class, device class) of a request. A HEAD is never a person following a link."""
    agent = user_agent.strip()
    if not agent:
        return AgentClass.BOT, "unknown"
    if _PREVIEW.search(agent):
        return AgentClass.PREVIEW, "bot"
    if method == "HEAD" or _detector.isCrawler(agent):
        return AgentClass.BOT, "bot"
    return AgentClass.HUMAN, device_class(agent)


def device_class(user_agent: str) -> str:
    """'tablet', 'mobile' or 'desktop', as browsers announce themselves (MDN: look for 'Mobi')."""
    if _TABLET.search(user_agent):
        return "tablet"
    if _MOBILE.search(user_agent):
        return "mobile"
    return "desktop"
