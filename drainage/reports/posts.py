"""Which post brought a click: clicks on a link go to the latest post that carried it.

A link's code depends only on its target and attribution, so a post that is repeated (same campaign, channel,
item and variant) reuses its links. The clicks of a link on a UTC day are credited to the most recent post sent on
or before that day that carried the link; on a day when a link is posted again, the day's clicks go to the newer
post. Personal links (one per email recipient) are not written into the journal's copy of a post; they go to the
latest post of their campaign, channel, item and variant in the same way.

This module turns posts into *windows* (post, link or series, first day, last day); `query` sums the daily link
rollups over each window in SQL.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from datetime import date, timedelta

from drainage.links import CODE_LENGTH
from drainage.reports.model import PostFigures

_CODE_IN_TEXT = re.compile(rf"/c/([a-z2-7]{{{CODE_LENGTH}}})(?![a-z2-7])")

Series = tuple[str, str, str, str]
"""(campaign, channel, item, variant): the attribution that links and deliveries share."""


def codes_in(text: str | None) -> set[str]:
    """The tracked-link codes in a post's journal copy (its text, HTML and list of links)."""
    return set(_CODE_IN_TEXT.findall(text or ""))


@dataclass(frozen=True)
class SentPost:
    """A post of the report with the day it went out and the codes of the links in its text."""

    figures: PostFigures
    day: date
    """The UTC day it went out (from when its links count)."""
    slot_day: date
    """The UTC day of its slot (the day rows count it on, like every post)."""
    codes: frozenset[str]

    @property
    def series(self) -> Series:
        f = self.figures
        return f.campaign, f.channel, f.item, f.variant


@dataclass(frozen=True)
class Window:
    """Days on which the clicks of `key` (a link code or a series) belong to post number `post`."""

    post: int
    key: Hashable
    first: date
    last: date


def link_windows(posts: list[SentPost], last: date) -> list[Window]:
    """For each link in the posts' text: which post it belonged to on which days, up to `last`."""
    return _windows(((code, i, p) for i, p in enumerate(posts) for code in p.codes), last)


def series_windows(posts: list[SentPost], last: date) -> list[Window]:
    """For each series: which post its personal links belonged to on which days, up to `last`."""
    return _windows(((p.series, i, p) for i, p in enumerate(posts)), last)


def _windows(entries: Iterable[tuple[Hashable, int, SentPost]], last: date) -> list[Window]:
    timelines: dict[Hashable, list[tuple[int, SentPost]]] = defaultdict(list)
    for key, index, post in entries:
        timelines[key].append((index, post))
    windows = []
    for key, carried in timelines.items():
        carried.sort(key=lambda e: (e[1].day, e[1].figures.sent_at, e[1].figures.delivery_id))
        for n, (index, post) in enumerate(carried):
            until = carried[n + 1][1].day - timedelta(days=1) if n + 1 < len(carried) else last
            if post.day <= until:
                windows.append(Window(index, key, post.day, until))
    return windows


def credit(post: PostFigures, human: int, preview: int, bot: int, visitors: int) -> None:
    """Add a window's clicks to its post."""
    post.human_clicks += int(human)
    post.preview_clicks += int(preview)
    post.bot_clicks += int(bot)
    post.unique_visitors += int(visitors)
