"""From campaign to posts: which slots are due, which item and variant each slot takes, and the rendered text.

Rotation is a pure function of a slot's ordinal (how many slots of that campaign and channel came before
it), so `plan`, `preview`, `send` and the daemon always agree on what a slot posts:

- round-robin: item ``ordinal % n``; variants advance once per full round of items, so each item is
  shown with each variant in turn;
- random: a pick seeded by the campaign seed and the slot time (same seed, same picks);
- all: every item at every slot, variants rotating per slot.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from drainage.campaigns import ChannelUse, FeedSource, Item, LoadedCampaign, Theme, Variant
from drainage.channel import Post
from drainage.links import TrackedLink
from drainage.markets import Market
from drainage.schedule import IntervalRule, Rule, anchor_of, merge_slots

PriorCount = Callable[..., int]
"""(campaign id, channel name, slot[, market id]) -> how many slots of that pair (in that market) are in the
journal before `slot`. The market is passed only for a market's posts."""


FEED_ITEM_PREFIX = "feed:"
"""The item key of a feed entry's post is this and the entry's hash (in the journal and on its links)."""


def no_prior(_campaign: str, _channel: str, _slot: datetime, _market: str | None = None) -> int:
    return 0


@dataclass(frozen=True)
class FeedRef:
    """What makes a planned post a feed entry's post: the feed, the entry, and why it is posted."""

    feed_index: int
    digest: str  # a hash of the entry's identity (see drainage.feeds.entries)
    event: str  # 'new', or a repost event such as 'price_drop:39.00'
    fields: Mapping[str, Any]  # the entry as templates see it, before its link is tracked

    @property
    def event_name(self) -> str:
        return self.event.partition(":")[0]


@dataclass(frozen=True)
class PlannedPost:
    """One post that a slot calls for, before rendering."""

    campaign: LoadedCampaign
    use: ChannelUse
    use_index: int
    slot: datetime
    item: Item
    variant: Variant | None
    theme: Theme | None
    feed: FeedRef | None = None
    market: Market | None = None
    """The market the post is for (None: a campaign without markets)."""

    @property
    def market_id(self) -> str:
        return self.market.id if self.market is not None else ""

    @property
    def tz(self) -> ZoneInfo:
        """The time zone the post's slot is read in: its market's, else the campaign's."""
        return self.campaign.tz_of(self.market)

    @property
    def channel(self) -> str:
        return self.use.channel

    @property
    def use_loc(self) -> tuple[str | int, ...]:
        """Where this post's channel entry is written in the campaign file."""
        if self.feed is not None:
            return ("feeds", self.feed.feed_index, "channels", self.use_index)
        return ("channels", self.use_index)

    @property
    def variant_name(self) -> str:
        return self.variant.name if self.variant else ""

    @property
    def key(self) -> str:
        """The journal's idempotency key: (campaign, channel, item, variant, slot); for a feed entry
        (campaign, channel, entry, event), with no slot, so that an entry goes to a channel once, forever.
        A market's post ends in '|@' and the market id; without a market the key is as it always was."""
        if self.feed is not None:
            return feed_delivery_key(self.campaign.id, self.channel, self.feed.digest, self.feed.event,
                                     self.market_id)
        key = delivery_key(self.campaign.id, self.channel, self.item.key, self.variant_name, self.slot)
        return key if self.market is None else f"{key}|@{self.market.id}"

    @property
    def template(self) -> str:
        return self.themed(self.variant.template if self.variant and self.variant.template else self.use.template)

    def themed(self, name: str) -> str:
        """`name`, or the template the slot's theme swaps it for, in the market's language."""
        if self.theme and name in self.theme.templates:
            name = self.theme.templates[name]
        return self.campaign.localized(name, self.market)

    @property
    def subject(self) -> str | None:
        """The subject line template (in the market's language)."""
        return self.campaign.subject_of(self.use, self.market)


def delivery_key(campaign: str, channel: str, item: str, variant: str, slot: datetime) -> str:
    return f"{campaign}|{channel}|{item}|{variant or '-'}|{_slot_text(slot)}"


@lru_cache(maxsize=4096)
def _slot_text(slot: datetime) -> str:
    """A slot in a journal key (the same few slots come back for every post of a catalog)."""
    return slot.strftime('%Y-%m-%dT%H:%M:%SZ')


def feed_delivery_key(campaign: str, channel: str, digest: str, event: str = "new", market: str = "") -> str:
    """The journal key of a feed entry's post: no slot in it, so the entry goes to the channel once, forever
    (a repost event such as 'price_drop:39.00' is a post of its own, once too). A market's feed adds '|@' and
    the market id (the same product id may be in several markets' feeds)."""
    return (f"{campaign}|{channel}|{FEED_ITEM_PREFIX}{digest}" + ("" if event == "new" else f"|{event}")
            + (f"|@{market}" if market else ""))


def slots_for(campaign: LoadedCampaign, use: ChannelUse, start: datetime, end: datetime,
              rules: list[Rule] | None = None, market: Market | None = None) -> list[datetime]:
    """Due slots of one channel of a campaign in [start, end): schedule (or `rules`), window and quiet hours
    applied, in `market`'s time zone. For a campaign with markets and no `market` given: every slot of any of the
    markets this channel posts for (each market's own slots: `posts_for_slots` sorts them out)."""
    if market is None and rules is None and campaign.markets:
        merged = {s for m in campaign.markets_for(use) for s in slots_for(campaign, use, start, end, market=m)}
        return sorted(merged)
    first, last = campaign.window(market)
    lo = max(start, first) if first else start
    hi = min(end, last) if last else end
    if lo >= hi:
        return []
    slots = merge_slots(campaign.rules_for(use, market) if rules is None else rules, lo, hi)
    tz = campaign.tz_of(market)
    return [s for s in slots if not use.in_quiet_hours(s.astimezone(tz))]


def posts_for_slots(campaign: LoadedCampaign, use_index: int, slots: list[datetime],
                    prior: PriorCount = no_prior, market: Market | None = None) -> list[PlannedPost]:
    """The posts each slot calls for, by the campaign's rotation.

    For a campaign with markets: the posts of each market (or of `market` only) whose own schedule has the slot,
    each market's rotation counted on its own."""
    use = campaign.model.channels[use_index]
    if campaign.markets and market is None:
        out: list[PlannedPost] = []
        if slots:
            lo, hi = min(slots), max(slots) + timedelta(seconds=1)
            for each in campaign.markets_for(use):
                own = set(slots_for(campaign, use, lo, hi, market=each))
                out += posts_for_slots(campaign, use_index, [s for s in slots if s in own], prior, each)
        return sorted(out, key=lambda p: p.slot)
    items = campaign.items_for(market)
    if not items:
        return []
    variants: list[Variant | None] = list(use.variants) or [None]
    out = []
    base = 0
    if slots:
        base = prior(campaign.id, use.channel, slots[0]) if market is None else prior(
            campaign.id, use.channel, slots[0], market.id)
    tz = campaign.tz_of(market)
    for offset, slot in enumerate(slots):
        ordinal = base + offset
        theme = campaign.theme_on(slot.astimezone(tz).date(), market)
        rotation = campaign.model.rotation
        if rotation == "all":
            picks = [(item, variants[ordinal % len(variants)]) for item in items]
        elif rotation == "random":
            rng = random.Random(f"{campaign.model.seed}|{use.channel}|{slot.isoformat()}")
            picks = [(rng.choice(items), rng.choice(variants))]
        else:
            picks = [(items[ordinal % len(items)], variants[(ordinal // len(items)) % len(variants)])]
        out += [PlannedPost(campaign, use, use_index, slot, item, variant, theme, market=market)
                for item, variant in picks]
    return out


def plan_campaign(campaign: LoadedCampaign, start: datetime, end: datetime, prior: PriorCount = no_prior,
                  channel: str | None = None) -> list[PlannedPost]:
    """Every post a campaign calls for in [start, end), in time order."""
    out: list[PlannedPost] = []
    for index, use in enumerate(campaign.model.channels):
        if channel is not None and use.channel != channel:
            continue
        out += posts_for_slots(campaign, index, slots_for(campaign, use, start, end), prior)
    return sorted(out, key=lambda p: (p.slot, p.use_index))


def poll_rule(campaign: LoadedCampaign, feed: FeedSource) -> Rule:
    """When a feed is polled: every `every`, counted from the campaign's start (else 2024-01-01 00:00 local, in
    the feed's market's time zone)."""
    return IntervalRule(feed.interval, anchor_of(campaign.model.start), campaign.tz_of(campaign.feed_market(feed)))


def feed_rules(campaign: LoadedCampaign, feed: FeedSource, use: ChannelUse) -> list[Rule]:
    """When a feed's channel may post: the channel's schedule, else the feed's, else at each poll (the regular
    poll times; a poll off them, e.g. the first one, posts too: see drainage.feeds.release)."""
    entries = use.schedule or feed.schedule
    if entries:
        return [e.rule(campaign.tz_of(campaign.feed_market(feed)), campaign.model.start) for e in entries]
    return [poll_rule(campaign, feed)]


def feed_slots(campaign: LoadedCampaign, feed_index: int, use_index: int, start: datetime,
               end: datetime) -> list[datetime]:
    """Posting slots of one channel of a campaign's feed in [start, end) (window and quiet hours applied)."""
    feed = campaign.model.feeds[feed_index]
    use = feed.channels[use_index]
    return slots_for(campaign, use, start, end, feed_rules(campaign, feed, use), campaign.feed_market(feed))


def entry_item(digest: str, fields: Mapping[str, Any]) -> Item:
    """A feed entry as an item, so that templates written for items (and `link(item)`) work for entries."""
    price = fields.get("price")
    return Item(id=f"{FEED_ITEM_PREFIX}{digest}", name=str(fields.get("title") or ""), url=str(fields.get("url") or ""),
                image=fields.get("image"), price=price if isinstance(price, int | float) else None,
                currency=fields.get("currency"), description=fields.get("summary") or None,
                tags=list(fields.get("tags") or []))


def feed_post(campaign: LoadedCampaign, feed_index: int, use_index: int, slot: datetime, ref: FeedRef) -> PlannedPost:
    """The post of one feed entry on one channel of the feed, at `slot`.

    The variant is a pure function of the entry (its hash), so `feeds check` and the daemon agree.
    """
    feed = campaign.model.feeds[feed_index]
    use = feed.channels[use_index]
    variant = use.variants[int(hashlib.sha256(ref.digest.encode()).hexdigest(), 16) % len(use.variants)] \
        if use.variants else None
    market = campaign.feed_market(feed)
    theme = campaign.theme_on(slot.astimezone(campaign.tz_of(market)).date(), market)
    return PlannedPost(campaign, use, use_index, slot, entry_item(ref.digest, ref.fields), variant, theme, ref,
                       market)


@dataclass
class Composed:
    """A planned post rendered for its channel: the exact text that will go out, and its links."""

    planned: PlannedPost
    post: Post
    links: list[TrackedLink]
    length: int
    limit: int | None
    truncated: bool = False

    @property
    def too_long(self) -> bool:
        return self.limit is not None and self.length > self.limit
