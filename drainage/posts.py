"""From campaign to posts: which slots are due, which item and variant each slot takes, and the rendered text.

Rotation is a pure function of a slot's ordinal (how many slots of that campaign and channel came before
it), so `plan`, `preview`, `send` and the daemon always agree on what a slot posts:

- round-robin: item ``ordinal % n``; variants advance once per full round of items, so each item is
  shown with each variant in turn;
- random: a pick seeded by the campaign seed and the slot time (same seed, same picks);
- all: every item at every slot, variants rotating per slot.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from drainage.campaigns import ChannelUse, Item, LoadedCampaign, Theme, Variant
from drainage.schedule import merge_slots

PriorCount = Callable[[str, str, datetime], int]
"""(campaign id, channel name, slot) -> how many slots of that pair are in the journal before `slot`."""


def no_prior(_campaign: str, _channel: str, _slot: datetime) -> int:
    return 0


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

    @property
    def channel(self) -> str:
        return self.use.channel

    @property
    def variant_name(self) -> str:
        return self.variant.name if self.variant else ""

    @property
    def key(self) -> str:
        """The journal's idempotency key: (campaign, channel, item, variant, slot)."""
        return delivery_key(self.campaign.id, self.channel, self.item.key, self.variant_name, self.slot)

    @property
    def template(self) -> str:
        return self.themed(self.variant.template if self.variant and self.variant.template else self.use.template)

    def themed(self, name: str) -> str:
        """`name`, or the template the slot's theme swaps it for."""
        if self.theme and name in self.theme.templates:
            return self.theme.templates[name]
        return name


def delivery_key(campaign: str, channel: str, item: str, variant: str, slot: datetime) -> str:
    return f"{campaign}|{channel}|{item}|{variant or '-'}|{slot.strftime('%Y-%m-%dT%H:%M:%SZ')}"


def slots_for(campaign: LoadedCampaign, use: ChannelUse, start: datetime, end: datetime) -> list[datetime]:
    """Due slots of one channel of a campaign in [start, end): schedule, window and quiet hours applied."""
    first, last = campaign.window()
    lo = max(start, first) if first else start
    hi = min(end, last) if last else end
    if lo >= hi:
        return []
    slots = merge_slots(campaign.rules_for(use), lo, hi)
    return [s for s in slots if not use.in_quiet_hours(s.astimezone(campaign.tz))]


def posts_for_slots(campaign: LoadedCampaign, use_index: int, slots: list[datetime],
                    prior: PriorCount = no_prior) -> list[PlannedPost]:
    """The posts each slot calls for, by the campaign's rotation."""
    use = campaign.model.channels[use_index]
    items = campaign.model.items
    variants: list[Variant | None] = list(use.variants) or [None]
    out: list[PlannedPost] = []
    base = prior(campaign.id, use.channel, slots[0]) if slots else 0
    for offset, slot in enumerate(slots):
        ordinal = base + offset
        theme = campaign.theme_on(slot.astimezone(campaign.tz).date())
        rotation = campaign.model.rotation
        if rotation == "all":
            picks = [(item, variants[ordinal % len(variants)]) for item in items]
        elif rotation == "random":
            rng = random.Random(f"{campaign.model.seed}|{use.channel}|{slot.isoformat()}")
            picks = [(rng.choice(items), rng.choice(variants))]
        else:
            picks = [(items[ordinal % len(items)], variants[(ordinal // len(items)) % len(variants)])]
        out += [PlannedPost(campaign, use, use_index, slot, item, variant, theme) for item, variant in picks]
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
