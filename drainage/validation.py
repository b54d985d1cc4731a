"""`validate`'s rendering check: every post a campaign can send, rendered for its channel and checked against the
channel's limits, with each problem at its `file:line`.

The work is shared among the CPUs on a catalog (forked workers, see `check_rendering`), and posts that render
alike for every variant and theme are rendered once per item (`render_groups`, `TemplateReads`).
"""

from __future__ import annotations

import gc
import multiprocessing as mp
import os
import threading
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from jinja2 import TemplateError, meta

from drainage.campaigns import FeedSource, Item, LoadedCampaign, Variant
from drainage.errors import Problem
from drainage.links import LinkError
from drainage.markets import Market
from drainage.posts import FeedRef, PlannedPost, feed_post
from drainage.project import Project, item_context
from drainage.render import InlineTemplateError, Renderer
from drainage.textlength import UNITS

PARALLEL_FROM = 20_000
"""Posts to check (items x channel entries) from which `check_rendering` shares the work among the CPUs."""


def check_rendering(project: Project, workers: int | None = None) -> list[Problem]:
    """Render every template with every item, variant and theme; check every post's length.

    The work is items x variants x themes renders at most, and fewer: posts whose templates read neither
    `variant`, `theme` nor `slot` render alike for each of them, so such a group of shapes (see `render_groups`)
    is rendered once per item, and again for each of its other shapes only when that render found a problem (so
    every problem is still named).

    With `workers` > 1 the items are shared among that many processes (forked: each has the project as loaded),
    unless this process has threads; by default, one per CPU on a catalog (`PARALLEL_FROM` posts or more).
    """
    if workers is None:
        size = sum(len(c.model.items) * len(c.model.channels) for c in project.campaigns.values())
        workers = 1 if size < PARALLEL_FROM else min(
            len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1, 8)
    if workers <= 1 or threading.active_count() > 1 or "fork" not in mp.get_all_start_methods():
        return sorted(_check_part(project, 0, 1))  # a process with threads is never forked (nor can it be here)
    return sorted(_check_forked(project, workers))


_FORKED: list[Project] = []
"""The project the forked workers of `check_rendering` check (inherited, never pickled)."""


def _check_forked(project: Project, workers: int) -> set[Problem]:
    _FORKED.append(project)
    gc.freeze()  # the loaded project stays shared with the workers: no collection writes to its pages
    try:
        with ProcessPoolExecutor(workers - 1, mp_context=mp.get_context("fork")) as pool:
            others = [pool.submit(_forked_part, part, workers) for part in range(1, workers)]
            problems = _check_part(project, 0, workers)  # this process takes a share too
            for future in others:
                problems |= future.result()
    finally:
        _FORKED.clear()
        gc.unfreeze()
    return problems


def _forked_part(part: int, parts: int) -> set[Problem]:
    return _check_part(_FORKED[0], part, parts)


def _check_part(project: Project, part: int, parts: int) -> set[Problem]:
    """The problems of share `part` of `parts` of the items of every campaign (feeds: the first share)."""
    problems: set[Problem] = set()
    probe = datetime(2024, 6, 3, 12, 0, tzinfo=UTC)
    reads = TemplateReads(project.renderer)
    for campaign in project.campaigns.values():
        days = [(None, probe)] + [(t, _day_in(t.from_, probe)) for t in campaign.model.themes]
        for use_index, use in enumerate(campaign.model.channels):
            markets: list[Market | None] = list(campaign.markets_for(use)) if campaign.markets else [None]
            for market in markets:
                items = campaign.items_for(market)
                share = items[len(items) * part // parts:len(items) * (part + 1) // parts]
                for group in render_groups(campaign, use_index, days, reads, market):
                    first, others = group[0], group[1:]
                    for item in share:
                        found = _render_problems(project, first.post(item), first.themed)
                        if found:  # rendered alike: the others would fail alike, each is named
                            problems.update(found)
                            for shape in others:
                                problems.update(_render_problems(project, shape.post(item), shape.themed))
        for feed_index, feed in enumerate(campaign.model.feeds if part == 0 else []):
            for use_index in range(len(feed.channels)):
                for theme, day in days:
                    for k, ref in enumerate(sample_entries(project, feed, feed_index)):
                        planned = feed_post(campaign, feed_index, use_index, day + timedelta(minutes=k), ref)
                        found = _render_problems(project, planned, theme is not None)
                        problems.update(found)
                        if found:  # the other samples would mostly repeat it
                            break
    return problems


@dataclass(frozen=True)
class Shape:
    """One way `validate` renders each item of a channel entry: a variant on a day (with or without a theme)."""

    campaign: LoadedCampaign
    use_index: int
    day: datetime
    variant: Variant | None
    theme: Any  # the campaign's Theme on that day, or None
    themed: bool  # the day was chosen for a theme (its name is given in problems)
    market: Market | None = None

    def post(self, item: Item) -> PlannedPost:
        use = self.campaign.model.channels[self.use_index]
        return PlannedPost(self.campaign, use, self.use_index, self.day, item, self.variant, self.theme,
                           market=self.market)


def render_groups(campaign: LoadedCampaign, use_index: int, days: list[tuple[Any, datetime]],
                  reads: TemplateReads, market: Market | None = None) -> list[list[Shape]]:
    """The shapes of a channel entry, grouped by what their posts render alike for any item.

    Two shapes render alike when they use the same templates and differ only in values those templates do not
    read (`variant`, `theme`, `slot`; the link codes differ, but all have one length). A template that includes,
    imports or extends another may read anything: each of its shapes is a group of its own.
    """
    use = campaign.model.channels[use_index]
    variants: list[Variant | None] = list(use.variants) or [None]
    groups: dict[Any, list[Shape]] = {}
    items = campaign.items_for(market)
    for theme, day in days:
        shown = campaign.theme_on(day.astimezone(campaign.tz_of(market)).date(), market)
        for variant in variants:
            shape = Shape(campaign, use_index, day, variant, shown, theme is not None, market)
            key = reads.key(shape.post(items[0])) if items else None
            groups.setdefault(key if key is not None else id(shape), []).append(shape)
    return list(groups.values())


class TemplateReads:
    """Which context names each template reads (`jinja2.meta`), to know which posts render alike."""

    def __init__(self, renderer: Renderer) -> None:
        self.renderer = renderer
        self._reads: dict[tuple[str, bool], frozenset[str] | None] = {}

    def key(self, planned: PlannedPost) -> tuple[Any, ...] | None:
        """Equal for posts of one item that render the same text (up to the link codes); None: unknown."""
        names = [planned.template] + ([planned.themed(planned.use.text_template)] if planned.use.text_template
                                      else [])
        reads: set[str] = set()
        for source in [*((n, False) for n in names), *([(planned.subject, True)] if planned.subject else [])]:
            found = self._names_read(*source)
            if found is None:
                return None
            reads |= found
        return (planned.use_loc, *names,
                id(planned.variant) if "variant" in reads else None,
                id(planned.theme) if "theme" in reads else None,
                planned.slot if "slot" in reads else None)

    def _names_read(self, source: str, inline: bool) -> frozenset[str] | None:
        """Names a template (or an inline one) reads from its context; None if unknown or it loads others."""
        if (source, inline) not in self._reads:
            self._reads[(source, inline)] = self._analyse(source, inline)
        return self._reads[(source, inline)]

    def _analyse(self, source: str, inline: bool) -> frozenset[str] | None:
        env = self.renderer.env
        try:
            text = source if inline else env.loader.get_source(env, source)[0]  # type: ignore[union-attr]
            tree = env.parse(text)
            if any(True for _ in meta.find_referenced_templates(tree)):
                return None
            return frozenset(meta.find_undeclared_variables(tree))  # compiles: may find an unknown filter
        except TemplateError:
            return None  # rendered every time, so that its error is reported as it always was


SAMPLE_SUMMARY = ("Our warmest scarf yet: spun from extra-fine merino at a family mill, knitted in a double rib that "
                  "stays soft after many washes. Long enough to wrap twice, light enough to wear from autumn to "
                  "spring. Each one is finished by hand and comes in a recycled paper gift box with a care card, "
                  "so it is ready to give.")
"""A sample summary as long as a typical blog excerpt (55 words), so that validate finds templates whose posts
would be too long for their channel."""


SAMPLES = {"sample-full": "with every field", "sample-sparse": "with only a title and a link"}


def sample_entries(project: Project, feed: FeedSource, feed_index: int) -> list[FeedRef]:
    """Entries `validate` renders each feed template with: one with every field, one with only a title and a
    link (a template must cope with a missing price or image), and a price drop if the feed reposts on one."""
    store = project.config.config.store
    market = project.config.config.markets.get(feed.market) if feed.market else None
    base = (market.base_url or store.base_url if market else store.base_url).rstrip("/")
    currency = market.currency if market else store.currency
    published = datetime(2024, 6, 3, 9, 30, tzinfo=UTC)
    full: dict[str, Any] = {
        "id": f"{base}/products/sample", "title": "Merino scarf, ruby red (sample entry)",
        "url": f"{base}/products/sample-merino-scarf", "summary": SAMPLE_SUMMARY, "image": f"{base}/cdn/sample.jpg",
        "price": 49.0, "currency": currency, "regular_price": 59.0, "previous_price": None,
        "categories": ["Scarves"], "tags": ["Scarves", "merino"], "author": "Northwind", "vendor": "Northwind",
        "published": published, "updated": published}
    sparse: dict[str, Any] = {
        **full, "id": None, "title": "Sample entry", "url": f"{base}/sample", "summary": "", "image": None,
        "price": None, "currency": None, "regular_price": None, "categories": [], "tags": [], "author": None,
        "vendor": None, "published": None, "updated": None}
    refs = [FeedRef(feed_index, "sample-full", "new", full), FeedRef(feed_index, "sample-sparse", "new", sparse)]
    for event in feed.repost_on:
        before = 59.0 if event == "price_drop" else 39.0
        refs.append(FeedRef(feed_index, "sample-full", f"{event}:49.00", {**full, "previous_price": before}))
    return refs


def missing_values(planned: PlannedPost) -> list[str]:
    """The values a planned post's template sees as None ('entry.price', 'item.image')."""
    found = [f"item.{k}" for k, v in item_context(planned.item).items() if v is None]
    if planned.feed is not None:
        found += [f"entry.{k}" for k, v in planned.feed.fields.items() if v is None]
        found += [] if planned.item.url else ["entry.link"]
    return found


def _day_in(spec: str, probe: datetime) -> datetime:
    if len(spec) == 10:
        return datetime.fromisoformat(spec + "T12:00").replace(tzinfo=UTC)
    return datetime.fromisoformat(f"{probe.year}-{spec}T12:00").replace(tzinfo=UTC)


def _render_problems(project: Project, planned: PlannedPost, themed: bool) -> list[Problem]:
    try:
        composed = project.compose(planned)
    except (InlineTemplateError, TemplateError, LinkError, ValueError, TypeError, ArithmeticError,
            LookupError) as exc:
        return _failure(project, planned, themed, exc)
    if composed.too_long:
        campaign = planned.campaign
        line, col = campaign.positions.at((*planned.use_loc, "template"))
        return [Problem(campaign.shown_as, line, col,
                        f"post for {_where(planned, themed).split(': ', 1)[1]} is {composed.length} "
                        f"{UNITS[project.channel(planned.channel).limits.counting]}, over the channel's limit of "
                        f"{composed.limit}",
                        "shorten the template, or set 'truncate: true' on the channel to cut it; links are kept")]
    post = composed.post
    if planned.feed is not None and planned.feed.digest == "sample-sparse" and not post.image_url:
        post = replace(post, image_url="-")  # a feed entry may have no image: that one entry fails when sent
    refused = project.channel(planned.channel).limits.problems(post)
    if refused:
        campaign = planned.campaign
        line, col = campaign.positions.at(planned.use_loc)
        return [Problem(campaign.shown_as, line, col, f"post for {_where(planned, themed).split(': ', 1)[1]} {text}")
                for text in refused]
    return []


def _where(planned: PlannedPost, themed: bool) -> str:
    """Which post a problem is about: 'campaigns/x.yaml: channel 'c', item 'i', variant 'v', theme 't''."""
    campaign = planned.campaign
    if planned.feed is None:
        what = f"item '{planned.item.key}'"
    else:
        url = campaign.model.feeds[planned.feed.feed_index].url
        sample = SAMPLES[planned.feed.digest] if planned.feed.event == "new" else f"a {planned.feed.event_name}"
        what = f"feed '{url}', sample entry ({sample})"
    return (f"{campaign.shown_as}: channel '{planned.channel}', "
            + (f"market '{planned.market.id}', " if planned.market else "") + f"{what}"
            + (f", variant '{planned.variant_name}'" if planned.variant else "")
            + (f", theme '{planned.theme.name}'" if themed and planned.theme else ""))


def _failure(project: Project, planned: PlannedPost, themed: bool, exc: Exception) -> list[Problem]:
    """The problem a post's rendering raised, at the template's line (or the campaign's)."""
    campaign = planned.campaign
    if planned.feed is None:
        names = ["store", "campaign", "item", "items", "channel", "variant", "theme", "slot", "link",
                 *type(planned.item).model_fields, *planned.item.extra]
    else:
        names = ["store", "campaign", "item", "items", "channel", "variant", "theme", "slot", "link", "entry",
                 *planned.feed.fields, "link", "event"]
    where = _where(planned, themed)
    if isinstance(exc, InlineTemplateError):  # the subject line, written in the campaign file
        problem = project.renderer.template_problem(exc.error, planned.template, where, names,
                                                    inline=planned.subject or "")
        line, col = campaign.positions.at((*planned.use_loc, "subject"))
        return [Problem(campaign.shown_as, line, col, f"subject: {problem.message}", problem.hint)]
    problem = project.renderer.template_problem(exc, planned.template, where, names,
                                                missing=missing_values(planned))
    if planned.feed is not None and planned.feed.digest == "sample-sparse" and not problem.hint:
        problem = replace(problem, hint="a feed entry may have no price, image, categories or date: "
                                        "test them first, e.g. {% if entry.categories %}")
    if problem.file == campaign.shown_as or not problem.line:
        line, col = campaign.positions.at((*planned.use_loc, "template"))
        return [Problem(campaign.shown_as, line, col, problem.message, problem.hint)]
    return [problem]
