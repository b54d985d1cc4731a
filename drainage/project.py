"""A project: config.yaml, every campaign, the templates and the channel instances, validated together."""

from __future__ import annotations

import contextlib
import gc
import multiprocessing as mp
import os
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

from jinja2 import TemplateError, meta

from drainage.campaign_markets import bind_campaign
from drainage.campaigns import FeedSource, Item, LoadedCampaign, Variant, load_campaign
from drainage.channel import Channel, Post
from drainage.config import LoadedConfig, load_config
from drainage.errors import Problem, ProblemsFound
from drainage.links import LinkError, resolve_target
from drainage.markets import Market, language_of, markets_of
from drainage.posts import Composed, FeedRef, PlannedPost, feed_post
from drainage.registry import channel_type
from drainage.render import InlineTemplateError, LinkContext, Renderer, fit_text, is_html, none_forbidden
from drainage.sources import did_you_mean, display_path
from drainage.textlength import UNITS
from drainage.translations import Catalogs, template_messages


@dataclass
class Project:
    """Everything a command needs, loaded once and validated."""

    config: LoadedConfig
    campaigns: dict[str, LoadedCampaign]
    renderer: Renderer
    _channels: dict[str, Channel] = field(default_factory=dict)
    _contexts: dict[str, CampaignContext] = field(default_factory=dict, repr=False)
    catalogs: Catalogs | None = None

    @property
    def root(self) -> Path:
        return self.config.root

    def campaign(self, name: str) -> LoadedCampaign:
        """A campaign by id (or file name); ProblemsFound with a hint otherwise."""
        if name in self.campaigns:
            return self.campaigns[name]
        for campaign in self.campaigns.values():
            if campaign.path.stem == name or campaign.shown_as == name:
                return campaign
        hint = did_you_mean(name, self.campaigns) or "campaigns: " + ", ".join(sorted(self.campaigns))
        raise ProblemsFound([Problem(self.config.shown_as, 0, 0, f"no campaign '{name}'", hint)])

    def channel(self, name: str) -> Channel:
        """The channel instance `name` from config.yaml (created once)."""
        if name not in self._channels:
            options = self.config.channels[name]
            plugin = channel_type(options.type)
            if plugin is None:  # validated when config.yaml was loaded
                raise KeyError(f"no channel type '{options.type}'")
            self._channels[name] = plugin(name, options, base_dir=self.root)
        return self._channels[name]

    def compose(self, planned: PlannedPost, recipient: str = "") -> Composed:
        """Render a planned post; raises jinja2 or link errors (validate turns them into Problems)."""
        campaign, use = planned.campaign, planned.use
        channel = self.channel(use.channel)
        if channel.fans_out:  # rendered per recipient at send time; here with a sample recipient
            from drainage.email.compose import compose_sample

            return compose_sample(self, planned, channel)
        links = self.link_context(planned, channel, recipient)
        context = self.context(planned, channel, links)
        if planned.feed is None:
            text, subject, html = self._render(planned, context)
        else:  # a feed entry often lacks a field: printing it must fail (validate, feeds check, the poll's trial)
            with none_forbidden():
                text, subject, html = self._render(planned, context)
        limits = channel.limits
        truncated = False
        if use.truncate and limits.max_length and limits.count(text) > limits.max_length:
            text, truncated = fit_text(text, limits.max_length, limits.count), True
        post = Post(key=planned.key, campaign=campaign.id, channel=use.channel, item=planned.item.key,
                    variant=planned.variant_name, slot=planned.slot, text=text, subject=subject, html=html,
                    image_url=planned.item.image, links=[link.url for link in links.made],
                    extra={"image_alt": planned.item.extra.get("image_alt") or planned.item.name}
                    if planned.item.image else {}, market=planned.market_id)
        if planned.item.images:
            post.extra["images"] = list(planned.item.images)
        if use.channel in self.bio_channels:
            post.extra["bio"] = bio_entry(planned, links)  # its link is saved with the post's own links
        return Composed(planned, post, list(links.made), limits.count(text), limits.max_length, truncated)

    def _render(self, planned: PlannedPost, context: dict[str, Any]) -> tuple[str, str | None, str | None]:
        """(text, subject, html) of a post."""
        use, template = planned.use, planned.template
        text = self.renderer.render(template, context)
        subject = self.renderer.render_string(planned.subject, context) if planned.subject else None
        html = text if is_html(template) else None
        if use.text_template:
            text = self.renderer.render(planned.themed(use.text_template), context)
        return text, subject, html

    def link_context(self, planned: PlannedPost, channel: Channel, recipient: str) -> LinkContext:
        cfg, store = self.config.config, self.config.config.store
        market = planned.market
        shared = self.campaign_context(planned.campaign, market)
        key = (channel.name, planned.variant_name)
        utm = shared.utms.get(key)
        if utm is None:  # the same for every post of a channel and variant: built once
            model = planned.campaign.model
            utm = shared.utms[key] = {
                "utm_source": model.utm.source or cfg.utm.source or channel.name,
                "utm_medium": model.utm.medium or cfg.utm.medium or channel.medium,
                "utm_campaign": model.utm.campaign or cfg.utm.campaign or planned.campaign.id,
                "utm_term": model.utm.term,
                "utm_content": model.utm.content or planned.variant_name or None,
                "utm_id": model.utm.id,
            }
            if market is not None:
                utm.update({k: v.replace("{market}", market.id) for k, v in utm.items() if v})
        if market is None:
            return LinkContext(cfg.tracker.public_url, store.base_url, self.allowed_hosts, planned.campaign.id,
                               channel.name, planned.item.key, planned.variant_name, utm, recipient)
        return LinkContext(cfg.tracker.public_url, market.base_url, list(market.allowed_hosts), planned.campaign.id,
                           channel.name, planned.item.key, planned.variant_name, utm, recipient, market=market.id)

    def context(self, planned: PlannedPost, channel: Channel, links: LinkContext) -> dict[str, Any]:
        """What a template sees (`link` is the post's link maker).

        The campaign's part (store, campaign, every item) is built once per campaign (`CampaignContext`), and
        the part a channel entry, variant and theme add once per such shape, not per post: a catalog of
        thousands of items would otherwise cost items x posts. Templates cannot change it (the renderer's
        sandbox refuses to modify lists and dicts).
        """
        shared = self.campaign_context(planned.campaign, planned.market)
        context = {**shared.shape(planned, channel), "item": shared.item(planned.item),
                   "slot": planned.slot.astimezone(planned.tz), "link": links}
        if planned.feed is not None:
            context["entry"] = entry_context(planned, links)
        if self.catalogs is not None and planned.market is not None:
            context.update(self.catalogs.functions(planned.market))
        return context

    @cached_property
    def bio_channels(self) -> frozenset[str]:
        """Channels whose posts a link-in-bio page shows."""
        return frozenset(page.channel for page in self.config.config.bio_pages.values())

    @cached_property
    def allowed_hosts(self) -> list[str]:
        """The store's link hosts (config.yaml is loaded once per Project)."""
        return self.config.config.store.allowed_hosts()

    def campaign_context(self, campaign: LoadedCampaign, market: Market | None = None) -> CampaignContext:
        """The part of every template context that is the same for all posts of `campaign` (in `market`), built
        once."""
        name = campaign.id if market is None else f"{campaign.id}|@{market.id}"
        shared = self._contexts.get(name)
        if shared is None or shared.source is not campaign:
            shared = self._contexts[name] = CampaignContext.build(campaign, self.config, market)
        return shared

    def catalog_problems(self, name: str, market: Market) -> list[Problem] | None:
        """What `market`'s gettext catalog lacks of template `name`'s messages (None: it has no message)."""
        found = template_messages(self.renderer.env, name)
        if not found or self.catalogs is None:
            return None
        messages = self.catalogs.messages(market) or {}
        path = display_path(self.catalogs.path_for(market), self.root)
        shown = f"{self.renderer.dir.name}/{name}"
        return [Problem(shown, line, 0, f"no {market.language} translation of \"{msgid}\" for market '{market.id}' "
                        f"in {path}", "add it (pybabel update, then translate it), or translate the whole "
                        "template in a file of its own" if messages else "create the catalog with pybabel init "
                        "(see docs/markets.md)")
                for line, msgid in found if msgid not in messages]

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()
        self._channels.clear()


def entry_context(planned: PlannedPost, links: LinkContext) -> dict[str, Any]:
    """A feed entry as templates see it: its fields, `link` tracked and UTM-tagged, `url` as the feed has it,
    `event` ('new', 'price_drop' or 'price_change') and `published` in the campaign's time zone."""
    assert planned.feed is not None  # only called for feed posts
    entry = dict(planned.feed.fields)
    entry["link"] = links(item_context(planned.item)) if planned.item.url else None
    entry["event"] = planned.feed.event_name
    for name in ("published", "updated"):
        if isinstance(entry.get(name), datetime):
            entry[name] = entry[name].astimezone(planned.tz)
    return entry


@dataclass(frozen=True)
class CampaignContext:
    """What every post of one campaign shows its templates alike: the store, the campaign and its items; and,
    filled as posts are composed, what each shape of post (channel entry, variant, theme) adds to it."""

    source: LoadedCampaign
    store: dict[str, Any]
    campaign: dict[str, Any]
    items: list[dict[str, Any]]  # a list, as before; the immutable sandbox refuses to change it
    by_item: dict[int, dict[str, Any]]  # id() of each of the campaign's Item objects -> its context
    shapes: dict[tuple[Any, ...], dict[str, Any]] = field(default_factory=dict)
    utms: dict[tuple[str, str], dict[str, str | None]] = field(default_factory=dict)

    @classmethod
    def build(cls, campaign: LoadedCampaign, config: LoadedConfig, market: Market | None = None) -> CampaignContext:
        store = config.config.store
        sources = campaign.items_for(market)
        items = [item_context(item) for item in sources]
        shown = ({"name": store.name, "url": store.base_url, "locale": store.locale, "currency": store.currency}
                 if market is None else
                 {"name": store.name, "url": market.base_url, "locale": market.locale, "currency": market.currency,
                  "market": market.id, "timezone": market.tz.key})
        return cls(campaign, shown, {"id": campaign.id, "title": campaign.model.title}, items,
                   {id(item): context for item, context in zip(sources, items, strict=True)})

    def item(self, item: Item) -> dict[str, Any]:
        """The context of one of the campaign's items (built once), or of another item (a feed entry's)."""
        found = self.by_item.get(id(item))
        return found if found is not None else item_context(item)

    def shape(self, planned: PlannedPost, channel: Channel) -> dict[str, Any]:
        """The context of every post of `planned`'s channel entry, variant and theme, less the item, the slot and
        the link maker (built once per shape; the objects named are the campaign's own, alive as long as it)."""
        key = (planned.use_loc, channel.name, id(planned.variant), id(planned.theme))
        found = self.shapes.get(key)
        if found is None:
            theme = {"name": planned.theme.name, **planned.theme.vars} if planned.theme else {"name": None}
            variant = {"name": planned.variant_name or None, **(planned.variant.vars if planned.variant else {})}
            found = self.shapes[key] = {
                "store": self.store, "campaign": self.campaign, "items": self.items,
                "channel": {"name": channel.name, "type": channel.type, "kind": channel.kind},
                "variant": variant, "theme": theme}
        return found


ITEM_FIELDS = tuple(name for name in Item.model_fields if name not in ("prices", "markets"))
"""An item's fields as templates see them (not its per-market values: a market's post sees the item as that
market shows it)."""


def item_context(item: Item) -> dict[str, Any]:
    """An item as templates see it: its fields plus `key`, extra fields at the top level too.

    Built from the attributes, not `model_dump` (which copies every list and costs more than the rest of a
    catalog's loading): the lists are shared, and templates cannot change them (the sandbox is immutable).
    """
    values = item.__dict__
    return {**item.extra, **{name: values[name] for name in ITEM_FIELDS}, "key": item.key}


def find_config(path: Path | None) -> Path:
    return path if path is not None else Path("config.yaml")


def load_project(config_path: Path, only: Iterable[Path] | None = None) -> Project:
    """Load config and campaigns; raise ProblemsFound listing every problem in every file."""
    with collection_paused():
        return _load_project(config_path, only)


@contextlib.contextmanager
def collection_paused() -> Iterator[None]:
    """No cyclic garbage collection inside: loading a catalog makes hundreds of thousands of objects that all
    stay alive, and each collection the allocations trigger would only walk them again (a third of the time
    of validating the models). Garbage made meanwhile is collected after."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _load_project(config_path: Path, only: Iterable[Path] | None) -> Project:
    root_hint = config_path.parent
    shown = display_path(config_path)
    config, problems = load_config(config_path, shown)
    if config is None:
        raise ProblemsFound(problems)
    files = sorted(only) if only else sorted(config.campaigns_dir.glob("*.y*ml"))
    campaigns: dict[str, LoadedCampaign] = {}
    for path in files:
        campaign, found = load_campaign(path, display_path(path, None if path.is_absolute() else root_hint),
                                        config.config.timezone)
        problems += found
        if campaign is None:
            continue
        if campaign.id in campaigns:
            other = campaigns[campaign.id].shown_as
            problems.append(campaign.positions.problem(("id",), f"campaign id '{campaign.id}' is also used by "
                                                       f"{other}", "give each campaign a distinct id"))
            continue
        campaigns[campaign.id] = campaign
    store = config.config.store
    project = Project(config, campaigns, Renderer(config.templates_dir, currency=store.currency,
                                                  locale=store.locale), catalogs=Catalogs(config.locales_dir))
    problems += bind_markets(project)
    problems += check_references(project)
    if problems:
        raise ProblemsFound(sorted(set(problems)))
    return project


def bind_markets(project: Project) -> list[Problem]:
    """Give each campaign its markets (drainage.markets.bind_campaign); every problem with them."""
    cfg, problems = project.config, []
    markets = markets_of(cfg.config)
    owners = {name: getattr(options, "market", None) for name, options in cfg.channels.items()}
    renderer = project.renderer
    for campaign in project.campaigns.values():
        problems += bind_campaign(campaign, markets, owners, cfg.config.store.currency, renderer.exists,
                                  language_of(cfg.config.store.locale), renderer.dir.name, project.catalog_problems)
    return problems


def check_references(project: Project) -> list[Problem]:
    """Channels, templates and link hosts that campaigns refer to must exist and be allowed."""
    problems: list[Problem] = []
    store = project.config.config.store
    channels = project.config.channels
    for campaign in project.campaigns.values():
        pos = campaign.positions
        for i, item in enumerate(campaign.model.items):
            try:
                resolve_target(item.url, store.base_url, project.allowed_hosts)
            except LinkError as exc:
                problems.append(pos.problem(("items", i, "url"), str(exc)))
        uses = [(("channels", i), use) for i, use in enumerate(campaign.model.channels)]
        uses += [(("feeds", f, "channels", i), use) for f, feed in enumerate(campaign.model.feeds)
                 for i, use in enumerate(feed.channels)]
        for at, use in uses:
            if use.channel not in channels:
                hint = did_you_mean(use.channel, channels) or (
                    "defined in config.yaml: " + ", ".join(sorted(channels)) if channels else
                    "config.yaml defines no channels")
                problems.append(pos.problem((*at, "channel"), f"no channel '{use.channel}' in "
                                            f"{project.config.shown_as}", hint))
            elif getattr(channel_type(channels[use.channel].type), "kind", None) == "search":
                problems.append(pos.problem((*at, "channel"), f"channel '{use.channel}' is a search channel: it "
                                            "submits the store's own URLs by itself, it posts nothing",
                                            "remove it from the campaign's channels"))
                continue
            names = [("template", use.template)] + [
                (f"variants[{j}].template", v.template) for j, v in enumerate(use.variants) if v.template]
            if use.text_template:
                names.append(("text_template", use.text_template))
            if use.channel in channels and at[0] == "channels":
                problems += _fanout_problems(campaign, at[1], channels[use.channel])
            for where, name in names:
                loc = (*at, *_loc_of(where))
                if not project.renderer.exists(name):
                    hint = project.renderer.suggest(name)
                    problems.append(pos.problem(loc, f"no such template '{project.renderer.dir.name}/{name}'",
                                                hint))
        for i, theme in enumerate(campaign.model.themes):
            for usual, themed in theme.templates.items():
                if not project.renderer.exists(themed):
                    problems.append(pos.problem(("themes", i, "templates", usual),
                                                f"no such template '{project.renderer.dir.name}/{themed}'",
                                                project.renderer.suggest(themed)))
    return problems


def _fanout_problems(campaign: LoadedCampaign, index: int, options: Any) -> list[Problem]:
    """An email channel needs a subject and an audience."""
    plugin = channel_type(options.type)
    if plugin is None or not plugin.fans_out:
        return []
    use, pos = campaign.model.channels[index], campaign.positions
    problems = []
    if not use.subject:
        problems.append(pos.problem(("channels", index), f"channel '{use.channel}' sends email: 'subject:' is "
                                    "required", "e.g. subject: \"New: {{ item.name }}\""))
    if not (use.lists or getattr(options, "lists", None)):
        problems.append(pos.problem(("channels", index), f"channel '{use.channel}' sends email but no subscriber "
                                    "list is named", f"add 'lists: [newsletter]' here or to channel "
                                    f"'{use.channel}' in config.yaml"))
    return problems


def _loc_of(where: str) -> tuple[str | int, ...]:
    if where.startswith("variants["):
        index = int(where[len("variants["):where.index("]")])
        return ("variants", index, "template")
    return (where,)


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


def bio_entry(planned: PlannedPost, links: LinkContext) -> dict[str, str | None]:
    """What a link-in-bio page shows for a post: the item's name and image, and a tracked link to it made for
    the post's channel (so the page's clicks and orders are credited to that channel)."""
    item = planned.item
    return {"item": item.key, "name": item.name, "image": item.image,
            "link": links({"key": item.key, "url": item.url})}
