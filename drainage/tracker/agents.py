"""Who is behind a user agent: a person, a link-preview fetch, or another bot; and the device class.

Link previews are fetched by the platforms we post to (TelegramBot, Twitterbot, facebookexternalhit, Discourse's
onebox, Slack, Discord, Bluesky, the fediverse servers...): they are kept but counted apart from people, as are
the other bots (crawlers, monitors, prefetch proxies, AI fetchers, HTTP libraries: `drainage.tracker.bots`).
In-app browsers (Instagram, Facebook's FBAN/FBAV, TikTok, LINE, WeChat...) are people.
"""

from __future__ import annotations

import re
from functools import lru_cache

from drainage.store.models import AgentClass
from drainage.tracker.bots import matcher

_TABLET = re.compile(r"ipad|tablet|playbook|silk/|kindle|nexus (?:7|9|10)\b|sm-t\d")
_MOBILE = re.compile(r"mobi|iphone|ipod|windows phone|opera mini|blackberry")

AGENT_CACHE = 65536
"""User agents whose class is remembered (a day's distinct agents on a busy store fit)."""


@lru_cache(maxsize=AGENT_CACHE)
def classify(user_agent: str, method: str = "GET") -> tuple[str, str]:
    """(agent class, device class) of a request. A HEAD is never a person following a link."""
    agent = user_agent.strip()
    if not agent:
        return AgentClass.BOT, "unknown"
    agent_class = matcher().agent_class(agent)
    if agent_class == AgentClass.PREVIEW:
        return agent_class, "bot"
    if method == "HEAD" or agent_class == AgentClass.BOT:
        return AgentClass.BOT, "bot"
    return AgentClass.HUMAN, device_class(agent)


def device_class(user_agent: str) -> str:
    """'tablet', 'mobile' or 'desktop', as browsers announce themselves (MDN: look for 'Mobi')."""
    lowered = user_agent.lower()
    if _TABLET.search(lowered) or ("android" in lowered and "mobile" not in lowered):
        return "tablet"
    if _MOBILE.search(lowered):
        return "mobile"
    return "desktop"
