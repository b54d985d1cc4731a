"""Which user agents are not people: maintained lists plus the kinds of agents they are made of, in one matcher.

Two maintained lists are merged: CrawlerDetect's patterns and the crawler-user-agents patterns (both pip
packages, updated upstream). A list only knows the agents someone reported, so the generic kinds below catch the
ones nobody listed yet, by what they call themselves: link-preview fetchers (chat apps, social networks and the
fediverse servers that unfurl a link), crawlers and scrapers, monitoring and uptime agents, prefetch proxies and
CDNs fetching on someone's behalf, AI fetchers, headless and automated browsers, HTTP client libraries, security
and mail link scanners, and agents that leave a contact address (browsers never do).

Everything is compiled once (at first use) into one RE2 set, so an agent is matched in one linear pass whatever
the number of patterns: microseconds per agent where CrawlerDetect's backtracking alternation took about half a
millisecond (bench/agents.py). CrawlerDetect's patterns only name candidates (their lookarounds, which RE2 cannot
run, dropped), which CrawlerDetect itself confirms; a list pattern RE2 cannot compile at all is left out.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import re2

from drainage.store.models import AgentClass

PREVIEW_AGENTS = (
    "TelegramBot", "Twitterbot", "facebookexternalhit", "facebookcatalog", "Facebot", "meta-externalagent",
    "Discourse Forum Onebox", "Slackbot", "Slack-ImgProxy", "WhatsApp/", "Discordbot", "LinkedInBot",
    "Pinterestbot", "redditbot", "SkypeUriPreview", "Iframely", "Embedly", "vkShare", "Mastodon", "Pleroma",
    "Akkoma", "Misskey", "Sharkey", "Firefish", "Calckey", "gotosocial", "Friendica", "Hubzilla", "Lemmy",
    "PeerTube", "Pixelfed", "Bluesky", "Cardyb", "SnapURLPreview", "ClickUpLinkUnfurler", "Google-PageRenderer",
    "Microsoft Preview", "BingPreview", "KakaoTalk-scrap", "Yahoo Link Preview", "Mattermost", "Rocket.Chat",
)
"""Names of the platforms, chat apps and fediverse servers that fetch a link to show its preview."""

PREVIEW_KINDS = (
    r"preview", r"unfurl", r"embed(?:ly|bot|der)", r"onebox", r"link[\s_-]?expand", r"open[\s_-]?graph",
    r"meta[\s_-]?inspector", r"oembed", r"url[\s_-]?(?:expander|resolver)",
)
"""What a preview fetcher calls itself."""

BOT_KINDS = (
    # crawlers, scrapers, indexers and archivers
    r"robot", r"crawl", r"spider", r"scrap(?:er|ing|y)", r"slurp", r"archiv", r"index(?:er|ing)", r"harvest",
    r"fetch", r"extractor", r"parser", r"reader/", r"feed", r"\brss", r"aggregat", r"\bsearch/", r"research",
    r"lookup", r"measurement", r"prospect", r"verification", r"thumbnail", r"analy[sz]er", r"finder", r"detector",
    r"audit", r"\bseo\b", r"\bserp", r"domain", r"lead[\s_-]?(?:gen|discovery|radar)",
    # monitoring, uptime and link checking
    r"monitor", r"uptime", r"pingdom", r"\bping\b", r"status[\s_-]?(?:cake|gator|page|checker)",
    r"health[\s_-]?check", r"checker", r"check[\s_/-]", r"validator", r"\bprobe", r"synthetic", r"datadog",
    r"new[\s_-]?relic", r"site24x7", r"nagios", r"zabbix", r"icinga", r"prometheus", r"blackbox", r"catchpoint",
    r"dynatrace", r"ruxit", r"heartbeat", r"watchdog", r"\bcron\b", r"cron-?job",
    # prefetch proxies, CDNs and other fetchers on someone's behalf
    r"prefetch", r"prerender", r"privacy preserving", r"proxy/", r"\bproxy\b(?:.*(?:http|@))", r"cloudfront",
    r"akamai", r"fastly", r"cloudflare", r"varnish", r"\bcdn\b",
    # AI fetchers and agents
    r"\bai[\s_-]?(?:agent|assistant|search|crawler|fetch|research)", r"gpt", r"chatgpt", r"openai", r"anthropic",
    r"claude", r"cohere", r"perplexity", r"mistral", r"\bllm", r"diffbot", r"bytespider",
    # headless and automated browsers, performance tools
    r"headless", r"phantomjs", r"puppeteer", r"playwright", r"selenium", r"webdriver", r"cypress", r"lighthouse",
    r"pagespeed", r"gtmetrix", r"\bptst\b", r"rendertron", r"splash", r"nightmare", r"zombie\.js", r"jsdom",
    r"htmlunit", r"mechanize", r"simplepie",
    # HTTP client libraries and command-line tools
    r"\bcurl\b", r"wget", r"python", r"aiohttp", r"httpx", r"\burllib", r"go-http", r"okhttp", r"apache-httpclient",
    r"jakarta", r"libwww-perl", r"\blwp", r"axios", r"node-fetch", r"node\.js", r"undici", r"\bruby/", r"faraday",
    r"guzzle", r"\bphp/", r"http\.rb", r"reqwest", r"\bhyper/", r"\bdart[/:]", r"postman", r"insomnia", r"httpie",
    r"rest-?client", r"restsharp", r"winhttp", r"\bhttp[\s_-]?(?:client|request|lib|kit)", r"\bperl/", r"scrapy",
    r"colly", r"symfony", r"laravel", r"wordpress", r"drupal", r"powershell", r"microsoft office", r"ms-office",
    r"\boffice/", r"outlook-",
    # security scanners and mail link protection
    r"scan", r"nmap", r"nikto", r"masscan", r"zgrab", r"nuclei", r"sqlmap", r"censys", r"shodan", r"netcraft",
    r"virustotal", r"safebrowsing", r"phish", r"barracuda", r"mimecast", r"proofpoint", r"urldefense", r"safelinks",
    # a contact address (browsers never carry one)
    r"https?:", r"\+http", r"www\.", r"[a-z0-9._-]@[a-z0-9-]+\.[a-z]",
)
"""What crawlers, monitors, proxies, AI fetchers, automated browsers and HTTP libraries call themselves (any case)."""

BOT_TOKENS = (
    r"(?:^|[^uU]|[^cC][uU])[Bb]ot(?:\b|[/_;:,.)+-])", r"\bJava/", r"\bgot\b", r"\bnode\b",
    r"\.(?:com|org|net|io)\b", r"^Mozilla/\d\.\d\s*(?:\(compatible\)\s*)?$", r"Agent\b",
    r"^Mozilla/\d\.\d\s+[^\s(]+$", r"\(compatible; ?[^;()]+\)",
)
"""Kinds told apart by their case: a "bot" (not a CUBOT phone), Java's client (not a device), a lowercase domain
(not ".NET CLR"), a bare "Mozilla/5.0"."""

BROWSER_SHAPE = (
    r"mozilla/", r"opera", r"browser", r"webkit", r"gecko", r"khtml", r"safari", r"chrome", r"firefox", r"msie",
    r"android", r"iphone", r"ipad", r"ipod", r"windows", r"linux", r"macintosh", r"x11", r"blackberry", r"nokia",
    r"symbian", r"series ?\d0", r"midp", r"j2me", r"up\.browser", r"wap\b", r"docomo", r"obigo", r"teleca",
    r"netfront", r"ucweb", r"lynx", r"links", r"w3m", r"dillo", r"netsurf", r"amaya", r"hotjava", r"hbbtv",
    r"smart-?tv", r"\btv\b", r"dalvik", r"cfnetwork", r"cronet", r"\([^()]*;[^()]*\)",
)
"""What browsers (down to feature phones, TVs and text browsers) and in-app browsers show: an agent with none of it
is a program."""


PREVIEW, BOT, BROWSER, CRAWLERDETECT = range(4)
"""The patterns of the set, in the order they are added."""


@dataclass(frozen=True)
class AgentMatcher:
    """All patterns in one RE2 set, matched in one pass of a lazily built DFA (no submatches to extract): which
    of preview / bot / browser shape / CrawlerDetect candidate an agent matches. A CrawlerDetect candidate is
    confirmed by CrawlerDetect itself (it first strips the tokens its patterns must not see, such as a CUBOT
    phone's name), so its slower check only runs on the few agents nothing else flagged."""

    patterns: Any
    confirm: Callable[[str], bool]

    def agent_class(self, agent: str) -> str:
        """'preview', 'bot' or 'human'."""
        found = self.patterns.Match(agent) or ()
        if PREVIEW in found:
            return AgentClass.PREVIEW
        if BOT in found or BROWSER not in found or (CRAWLERDETECT in found and self.confirm(agent)):
            return AgentClass.BOT
        return AgentClass.HUMAN


_LOOKAROUND = re.compile(r"\(\?<?[!=](?:[^()\\]|\\.)*\)")


def _any_case(patterns: list[str] | tuple[str, ...]) -> str:
    return "(?i:" + "|".join(f"(?:{p})" for p in patterns) + ")"


@cache
def matcher() -> AgentMatcher:
    """The matcher, compiled on first use (a fraction of a second) and kept for the life of the process."""
    import crawleruseragents
    from crawlerdetect import CrawlerDetect
    from crawlerdetect.providers.crawlers import data as crawlerdetect_patterns

    options = re2.Options()
    options.log_errors = False
    options.max_mem = 64 << 20  # room for the DFA of a few thousand alternatives
    def runnable(patterns: list[str]) -> list[str]:
        try:  # the usual case: all of them (one compile, not thousands)
            re2.compile("|".join(f"(?:{p})" for p in patterns), options)
        except re2.error:
            pass
        else:
            return patterns
        kept = []
        for pattern in patterns:
            try:
                re2.compile(pattern, options)
            except re2.error:
                continue
            kept.append(pattern)
        return kept

    listed = runnable([entry["pattern"] for entry in crawleruseragents.CRAWLER_USER_AGENTS_DATA])  # case-sensitive
    patterns = re2.Set.SearchSet(options)
    for index, pattern in (
        (PREVIEW, _any_case([re.escape(a) for a in PREVIEW_AGENTS] + list(PREVIEW_KINDS))),
        (BOT, "|".join([*(f"(?:{p})" for p in listed), _any_case(BOT_KINDS), *BOT_TOKENS])),
        (BROWSER, _any_case(BROWSER_SHAPE)),
        # a superset of CrawlerDetect's patterns (without the lookarounds RE2 cannot run): candidates only
        (CRAWLERDETECT, _any_case(runnable([_LOOKAROUND.sub("", p) for p in crawlerdetect_patterns]))),
    ):
        if patterns.Add(pattern) != index:
            raise RuntimeError(f"agent pattern {index} did not compile")
    patterns.Compile()
    detector = CrawlerDetect()
    detector.is_crawler("warm")  # compiles its patterns now rather than on the first candidate
    return AgentMatcher(patterns, detector.is_crawler)
