"""Feeds served from outside the store's hosts: a warning `drainage validate` prints (no network, no database)."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from drainage.errors import Problem
from drainage.links import host_allowed

if TYPE_CHECKING:
    from drainage.project import Project


def off_host_feeds(project: Project) -> list[Problem]:
    """A warning for each feed URL whose host is not one of the store's hosts (`validate` prints them).

    Only a warning: a feed may be served from elsewhere (a feed proxy, a CDN) while its entries link to the
    store; but an entry linking off the store's hosts fails at its posting slot, so this is usually a mistake.
    """
    store = project.config.config.store
    hosts = store.allowed_hosts()
    out = []
    for campaign in sorted(project.campaigns.values(), key=lambda c: c.id):
        for index, feed in enumerate(campaign.model.feeds):
            host = urlsplit(feed.url).hostname or ""
            if not host_allowed(host, hosts):
                out.append(campaign.positions.problem(
                    ("feeds", index, "url"), f"feed host '{host}' is not one of the store's hosts "
                    f"({', '.join(hosts)}): its entries' posts fail if their links point there too",
                    "if the feed and its links are yours, add the host to store.link_hosts in "
                    f"{project.config.shown_as}"))
    return out
