"""Link-in-bio pages: `/l/{page}` lists what a channel's posts currently promote, newest first.

Instagram shows no links in captions: shoppers follow the one link in the profile. That link points here; the
page lists the items posted on the page's channel in the last `days` (one entry per item, newest post first),
each through its tracked link made for that channel when the post was planned (`post.extra["bio"]`, saved
with the post's links), so the clicks and orders the page brings are credited to the channel, its campaign
and item like any other click on `/c/`.

The page is small static HTML (no JavaScript, no external assets, mobile-first, every value escaped), built
at most once per `cache_seconds` per tracker process and sent with `Cache-Control: public, max-age=...` so a
CDN can answer in front of it. Views are counted by agent class (people, link previews, bots) with the same
classification as clicks, in `drainage_tracker_bio_views_total`.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html import escape

from prometheus_client import CollectorRegistry, Counter
from sqlalchemy import Engine
from sqlmodel import col, select
from starlette.requests import Request
from starlette.responses import Response

from drainage.config import BioPageConfig, LoadedConfig
from drainage.store.db import session
from drainage.store.models import Delivery
from drainage.store.models import DeliveryStatus as S
from drainage.tracker.agents import classify

SCAN_FACTOR = 5
"""Posts read per listed item: several posts of one item collapse into one entry."""


@dataclass(frozen=True)
class BioEntry:
    """One item on a link-in-bio page."""

    name: str
    link: str
    image: str | None


def bio_entries(engine: Engine, channel: str, since: datetime, limit: int) -> list[BioEntry]:
    """The items posted on `channel` since `since`, newest post first, one entry per item."""
    with session(engine) as s:
        payloads = s.exec(select(Delivery.payload).where(
            Delivery.channel == channel, Delivery.status == S.SENT, col(Delivery.sent_at) >= since)
            .order_by(col(Delivery.sent_at).desc(), col(Delivery.id).desc()).limit(limit * SCAN_FACTOR)).all()
    entries: dict[str, BioEntry] = {}
    for payload in payloads:
        try:
            bio = json.loads(payload or "{}").get("extra", {}).get("bio")
        except (ValueError, AttributeError):
            continue
        if not isinstance(bio, dict) or not bio.get("link") or bio.get("item") in entries:
            continue
        entries[str(bio.get("item"))] = BioEntry(str(bio.get("name") or bio["item"]), str(bio["link"]),
                                                 str(bio["image"]) if bio.get("image") else None)
        if len(entries) >= limit:
            break
    return list(entries.values())


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>{title}</title>
<style>
*{{box-sizing:border-box}}body{{margin:0;font:16px/1.4 system-ui,sans-serif;color:#1a1a1a;background:#fafafa}}
main{{max-width:30rem;margin:0 auto;padding:1.5rem 1rem 3rem}}h1{{font-size:1.3rem;text-align:center;margin:.5rem 0}}
p{{text-align:center;color:#555;margin:0 0 1.25rem}}ul{{list-style:none;margin:0;padding:0}}
li{{margin:0 0 .75rem}}a{{display:flex;align-items:center;gap:.75rem;padding:.6rem;border-radius:.75rem;
background:#fff;border:1px solid #e2e2e2;color:inherit;text-decoration:none;min-height:3.5rem}}
img{{width:4rem;height:4rem;object-fit:cover;border-radius:.5rem;flex:none;background:#eee}}
span{{font-weight:600}}.home{{justify-content:center;font-weight:600}}
</style></head>
<body><main><h1>{title}</h1>{intro}
<ul>
{items}
</ul>
<a class="home" href="{home}">{home_text}</a>
</main></body></html>
"""


def render_page(page: BioPageConfig, store_name: str, home: str, entries: list[BioEntry]) -> bytes:
    """The page's HTML; every value from config or the journal is escaped."""
    items = "\n".join(
        f'<li><a href="{escape(e.link, quote=True)}">'
        + (f'<img src="{escape(e.image, quote=True)}" alt="" loading="lazy" width="64" height="64">'
           if e.image else "")
        + f"<span>{escape(e.name)}</span></a></li>" for e in entries)
    title = escape(page.title or store_name)
    return _PAGE.format(title=title, intro=f"<p>{escape(page.intro)}</p>" if page.intro else "", items=items,
                        home=escape(home, quote=True), home_text=f"Visit {escape(store_name)}").encode()


class BioPages:
    """The `/l/{page}` route of the tracker: built pages cached for `cache_seconds`, views counted by class."""

    def __init__(self, config: LoadedConfig, engine: Engine, registry: CollectorRegistry) -> None:
        self.pages = config.config.bio_pages
        self.store_name = config.config.store.name
        self.home = config.config.store.base_url
        self.engine = engine
        self._built: dict[str, tuple[float, bytes]] = {}
        self._building: dict[str, asyncio.Lock] = {}
        self.now: Callable[[], datetime] = lambda: datetime.now(UTC)
        self.views = Counter("drainage_tracker_bio_views_total", "Views of link-in-bio pages, by page and agent "
                             "class", ["page", "agent_class"], registry=registry)

    async def respond(self, request: Request) -> Response:
        name = request.path_params["page"]
        page = self.pages.get(name)
        if page is None:
            return Response(b"", status_code=404, headers={"cache-control": "no-store"})
        agent_class, _ = classify(request.headers.get("user-agent", ""), request.method)
        self.views.labels(page=name, agent_class=agent_class).inc()
        body = await self.body(name, page)
        headers = {"cache-control": f"public, max-age={page.cache_seconds}" if page.cache_seconds else "no-cache",
                   "x-content-type-options": "nosniff", "referrer-policy": "strict-origin-when-cross-origin",
                   "content-security-policy": "default-src 'none'; img-src https: http:; style-src 'unsafe-inline'"}
        return Response(b"" if request.method == "HEAD" else body, media_type="text/html; charset=utf-8",
                        headers={**headers, "content-length": str(len(body))})

    async def body(self, name: str, page: BioPageConfig) -> bytes:
        """The page, rebuilt when older than its `cache_seconds` (one build at a time per page)."""
        built = self._built.get(name)
        if built is not None and time.monotonic() - built[0] < page.cache_seconds:
            return built[1]
        async with self._building.setdefault(name, asyncio.Lock()):
            built = self._built.get(name)
            if built is not None and time.monotonic() - built[0] < page.cache_seconds:
                return built[1]
            since = self.now() - timedelta(days=page.days)
            entries = await asyncio.to_thread(bio_entries, self.engine, page.channel, since, page.max_items)
            body = render_page(page, self.store_name, self.home, entries)
            self._built[name] = (time.monotonic(), body)
            return body
