"""A project: config.yaml, every campaign, the templates and the channel instances, validated together."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any

from drainage.campaign_markets import bind_campaign
from drainage.campaigns import Item, LoadedCampaign, load_campaign
from drainage.channel import Channel, Post
from drainage.config import LoadedConfig, load_config
from drainage.errors import Problem, ProblemsFound
from drainage.links import LinkError, resolve_target
from drainage.markets import Market, language_of, markets_of, vars_for
from drainage.posts import Composed, PlannedPost
from drainage.registry import channel_type
from drainage.render import LinkContext, Renderer, fit_text, is_html, none_forbidden
from drainage.sources import did_you_mean, display_path
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
            market, theme_of, variant_of = planned.market, planned.theme, planned.variant
            theme = ({"name": theme_of.name, **vars_for(theme_of.vars, theme_of.market_vars, market)} if theme_of
                     else {"name": None})
            variant = {"name": planned.variant_name or None,
                       **(vars_for(variant_of.vars, variant_of.market_vars, market) if variant_of else {})}
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
        for i, item in enumerate(campaign.model.items if not campaign.model.markets else ()):
            try:  # a market campaign's items are checked against each market's hosts (bind_campaign)
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


def bio_entry(planned: PlannedPost, links: LinkContext) -> dict[str, str | None]:
    """What a link-in-bio page shows for a post: the item's name and image, and a tracked link to it made for
    the post's channel (so the page's clicks and orders are credited to that channel)."""
    item = planned.item
    return {"item": item.key, "name": item.name, "image": item.image,
            "link": links({"key": item.key, "url": item.url})}
