"""Which item and variant each slot posts: round-robin, random, all; quiet hours, the campaign window, prior slots."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drainage.campaigns import Campaign, LoadedCampaign
from drainage.posts import PlannedPost, plan_campaign, posts_for_slots, slots_for
from drainage.sources import Positions

pytestmark = pytest.mark.pure  # no database: CI's PostgreSQL pass skips it

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def load(**overrides: Any) -> LoadedCampaign:
    data: dict[str, Any] = {
        "id": "spring",
        "title": "Spring",
        "items": [{"id": key, "name": key.upper(), "url": f"/products/{key}"} for key in ("a", "b", "c")],
        "schedule": [{"cron": "0 * * * *"}],
        "channels": [{"channel": "social", "template": "social.j2"}],
    }
    data.update(overrides)
    return LoadedCampaign(Campaign.model_validate(data), Path("x.yaml"), "x.yaml", Positions("x.yaml"), "UTC")


def picks(posts: list[PlannedPost]) -> list[tuple[str, str]]:
    return [(p.item.key, p.variant_name) for p in posts]


def hourly(start: datetime, count: int) -> list[datetime]:
    return [start + timedelta(hours=k) for k in range(count)]


VARIANTS = [{"name": "v1"}, {"name": "v2"}]


# --- round-robin --------------------------------------------------------------------------------------------

def test_round_robin_cycles_items() -> None:
    campaign = load()
    posts = plan_campaign(campaign, utc(2026, 3, 2), utc(2026, 3, 2, 7))
    assert [p.item.key for p in posts] == ["a", "b", "c", "a", "b", "c", "a"]
    assert [p.slot for p in posts] == hourly(utc(2026, 3, 2), 7)
    assert {p.variant for p in posts} == {None}
    assert {p.variant_name for p in posts} == {""}
    assert {(p.channel, p.template, p.use_index) for p in posts} == {("social", "social.j2", 0)}


def test_round_robin_shows_each_item_with_each_variant() -> None:
    campaign = load(channels=[{"channel": "social", "template": "social.j2", "variants": VARIANTS}])
    posts = plan_campaign(campaign, utc(2026, 3, 2), utc(2026, 3, 2, 12))
    assert picks(posts) == [("a", "v1"), ("b", "v1"), ("c", "v1"), ("a", "v2"), ("b", "v2"), ("c", "v2")] * 2
    assert Counter(picks(posts)) == dict.fromkeys(
        [(i, v) for i in "abc" for v in ("v1", "v2")], 2)


@pytest.mark.parametrize(("items", "variants"), [(2, 2), (3, 3), (2, 4), (4, 2), (1, 3), (3, 1), (5, 3)])
def test_round_robin_every_pair_once_per_cycle(items: int, variants: int) -> None:
    keys = [f"i{k}" for k in range(items)]
    names = [f"v{k}" for k in range(variants)]
    campaign = load(items=[{"id": k, "name": k, "url": f"/p/{k}"} for k in keys],
                    channels=[{"channel": "social", "template": "t.j2", "variants": [{"name": n} for n in names]}])
    use = campaign.model.channels[0]
    cycle = items * variants
    posts = posts_for_slots(campaign, 0, hourly(utc(2026, 3, 2), 2 * cycle))
    assert sorted(picks(posts[:cycle])) == sorted((k, n) for k in keys for n in names)
    assert picks(posts[cycle:]) == picks(posts[:cycle])
    # each item is posted evenly, one after another
    assert [p.item.key for p in posts] == keys * (2 * variants)
    assert use.variants[0].name == "v0"


def test_prior_shifts_the_rotation() -> None:
    campaign = load(channels=[{"channel": "social", "template": "social.j2", "variants": VARIANTS}])
    calls = []

    def prior(campaign_id: str, channel: str, slot: datetime) -> int:
        calls.append((campaign_id, channel, slot))
        return 4

    posts = plan_campaign(campaign, utc(2026, 3, 2, 9), utc(2026, 3, 2, 13), prior)
    assert picks(posts) == [("b", "v2"), ("c", "v2"), ("a", "v1"), ("b", "v1")]
    assert calls == [("spring", "social", utc(2026, 3, 2, 9))]


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 30), st.integers(1, 30), st.sampled_from(["round-robin", "all", "random"]))
def test_a_slot_posts_the_same_whatever_the_range(split: int, length: int, rotation: str) -> None:
    """plan, preview, send and the daemon ask for different ranges: a slot must post the same thing."""
    campaign = load(rotation=rotation, seed=7,
                    channels=[{"channel": "social", "template": "social.j2", "variants": VARIANTS}])
    start = utc(2026, 3, 2)
    whole = plan_campaign(campaign, start, start + timedelta(hours=split + length))
    before = len(slots_for(campaign, campaign.model.channels[0], start, start + timedelta(hours=split)))
    later = plan_campaign(campaign, start + timedelta(hours=split), start + timedelta(hours=split + length),
                          lambda *_: before)
    tail = [p for p in whole if p.slot >= start + timedelta(hours=split)]
    assert [p.slot for p in later] == [p.slot for p in tail]
    assert picks(later) == picks(tail)


# --- random -------------------------------------------------------------------------------------------------

def test_random_is_reproducible_with_the_same_seed() -> None:
    start, end = utc(2026, 3, 2), utc(2026, 3, 4)
    first = plan_campaign(load(rotation="random", seed=42), start, end)
    again = plan_campaign(load(rotation="random", seed=42), start, end)
    assert picks(first) == picks(again)
    assert len(first) == 48
    # every item comes up, and not in round-robin order
    assert set(Counter(p.item.key for p in first)) == {"a", "b", "c"}
    assert [p.item.key for p in first] != ["a", "b", "c"] * 16


def test_random_differs_with_another_seed() -> None:
    start, end = utc(2026, 3, 2), utc(2026, 3, 3)
    seeds = {seed: [p.item.key for p in plan_campaign(load(rotation="random", seed=seed), start, end)]
             for seed in (0, 1, 2, 2026)}
    assert len({tuple(v) for v in seeds.values()}) == 4


def test_random_picks_variants_too() -> None:
    campaign = load(rotation="random", seed=3,
                    channels=[{"channel": "social", "template": "social.j2", "variants": VARIANTS}])
    posts = plan_campaign(campaign, utc(2026, 3, 2), utc(2026, 3, 4))
    assert {p.variant_name for p in posts} == {"v1", "v2"}
    assert picks(posts) == picks(plan_campaign(campaign, utc(2026, 3, 2), utc(2026, 3, 4), lambda *_: 99))


def test_random_differs_per_channel() -> None:
    campaign = load(rotation="random", seed=5, channels=[{"channel": "social", "template": "s.j2"},
                                                         {"channel": "forum", "template": "f.j2"}])
    posts = plan_campaign(campaign, utc(2026, 3, 2), utc(2026, 3, 3))
    social = [p.item.key for p in posts if p.channel == "social"]
    forum = [p.item.key for p in posts if p.channel == "forum"]
    assert len(social) == len(forum) == 24
    assert social != forum


# --- all ----------------------------------------------------------------------------------------------------

def test_all_posts_every_item_each_slot() -> None:
    campaign = load(rotation="all", channels=[{"channel": "social", "template": "social.j2", "variants": VARIANTS}])
    posts = plan_campaign(campaign, utc(2026, 3, 2, 9), utc(2026, 3, 2, 12))
    assert [(p.slot.hour, p.item.key, p.variant_name) for p in posts] == [
        (9, "a", "v1"), (9, "b", "v1"), (9, "c", "v1"),
        (10, "a", "v2"), (10, "b", "v2"), (10, "c", "v2"),
        (11, "a", "v1"), (11, "b", "v1"), (11, "c", "v1")]
    assert len({p.key for p in posts}) == 9
    shifted = plan_campaign(campaign, utc(2026, 3, 2, 9), utc(2026, 3, 2, 10), lambda *_: 1)
    assert picks(shifted) == [("a", "v2"), ("b", "v2"), ("c", "v2")]


# --- quiet hours and the campaign window --------------------------------------------------------------------

def test_quiet_hours_remove_slots_in_the_campaign_time_zone() -> None:
    campaign = load(timezone="Europe/Berlin",
                    channels=[{"channel": "social", "template": "s.j2", "quiet_hours": ["22:00-08:00"]}])
    start = datetime(2026, 3, 2, tzinfo=BERLIN).astimezone(UTC)
    posts = plan_campaign(campaign, start, start + timedelta(days=1))
    assert [p.slot.astimezone(BERLIN).hour for p in posts] == list(range(8, 22))
    assert posts[0].slot == utc(2026, 3, 2, 7)
    # the rotation goes on across the quiet hours: the posted slots take the turns
    assert [p.item.key for p in posts] == (["a", "b", "c"] * 5)[:14]


def test_several_quiet_ranges_and_a_single_string() -> None:
    campaign = load(timezone="America/New_York", channels=[
        {"channel": "social", "template": "s.j2", "quiet_hours": ["00:00-07:00", "12:00-13:30", "22:00-24:00"]},
        {"channel": "forum", "template": "f.j2", "quiet_hours": "09:00-17:00"}])
    start = datetime(2026, 7, 1, tzinfo=NEW_YORK).astimezone(UTC)
    posts = plan_campaign(campaign, start, start + timedelta(days=1))
    social = [p.slot.astimezone(NEW_YORK).hour for p in posts if p.channel == "social"]
    forum = [p.slot.astimezone(NEW_YORK).hour for p in posts if p.channel == "forum"]
    assert social == [7, 8, 9, 10, 11, 14, 15, 16, 17, 18, 19, 20, 21]
    assert forum == [*range(9), *range(17, 24)]


def test_whole_day_quiet_hours() -> None:
    campaign = load(channels=[{"channel": "social", "template": "s.j2", "quiet_hours": ["00:00-24:00"]}])
    assert plan_campaign(campaign, utc(2026, 3, 2), utc(2026, 3, 5)) == []


def test_window_by_days_in_the_campaign_time_zone() -> None:
    campaign = load(timezone="Europe/Berlin", start="2026-03-02", end="2026-03-03")
    posts = plan_campaign(campaign, utc(2026, 2, 20), utc(2026, 3, 10))
    assert len(posts) == 48
    assert posts[0].slot == utc(2026, 3, 1, 23)  # 00:00 CET on the first day
    assert posts[-1].slot == utc(2026, 3, 3, 22)  # 23:00 CET on the last day (inclusive)
    assert [p.item.key for p in posts[:4]] == ["a", "b", "c", "a"]


def test_window_by_time() -> None:
    campaign = load(timezone="America/New_York", start="2026-03-02T09:30:00", end="2026-03-02T12:30:00")
    posts = plan_campaign(campaign, utc(2026, 3, 1), utc(2026, 3, 4))
    assert [p.slot.astimezone(NEW_YORK).strftime("%d %H:%M") for p in posts] == ["02 10:00", "02 11:00", "02 12:00"]


def test_window_clips_the_asked_range() -> None:
    campaign = load(start="2026-03-02", end="2026-03-02")
    assert plan_campaign(campaign, utc(2026, 3, 2, 22), utc(2026, 3, 3, 5)) == plan_campaign(
        campaign, utc(2026, 3, 2, 22), utc(2026, 3, 3))
    assert len(plan_campaign(campaign, utc(2026, 3, 2, 22), utc(2026, 3, 3, 5))) == 2
    assert plan_campaign(campaign, utc(2026, 3, 3), utc(2026, 3, 9)) == []
    assert plan_campaign(campaign, utc(2026, 2, 1), utc(2026, 3, 2)) == []


def test_window_and_quiet_hours_across_dst() -> None:
    campaign = load(timezone="Europe/Berlin", start="2026-03-29", end="2026-03-29",  # spring forward: 23 hours
                    channels=[{"channel": "social", "template": "s.j2", "quiet_hours": ["00:00-06:00"]}])
    posts = plan_campaign(campaign, utc(2026, 3, 1), utc(2026, 4, 1))
    assert [p.slot.astimezone(BERLIN).hour for p in posts] == list(range(6, 24))
    assert [p.item.key for p in posts[:4]] == ["a", "b", "c", "a"]


# --- several channels, schedules and themes ------------------------------------------------------------------

def test_channels_rotate_independently_and_merge_in_time_order() -> None:
    campaign = load(schedule=[{"cron": "0 9,18 * * *"}], channels=[
        {"channel": "social", "template": "s.j2"},
        {"channel": "forum", "template": "f.j2", "schedule": [{"cron": "0 9 * * *"}]},
    ])
    posts = plan_campaign(campaign, utc(2026, 3, 2), utc(2026, 3, 4))
    assert [(p.slot.day, p.slot.hour, p.channel, p.item.key) for p in posts] == [
        (2, 9, "social", "a"), (2, 9, "forum", "a"), (2, 18, "social", "b"),
        (3, 9, "social", "c"), (3, 9, "forum", "b"), (3, 18, "social", "a")]
    forum = plan_campaign(campaign, utc(2026, 3, 2), utc(2026, 3, 4), channel="forum")
    assert [(p.slot.day, p.item.key) for p in forum] == [(2, "a"), (3, "b")]
    assert plan_campaign(campaign, utc(2026, 3, 2), utc(2026, 3, 4), channel="nowhere") == []


def test_mixed_rules_do_not_double_post() -> None:
    campaign = load(schedule=[{"cron": "0 9 * * *"}, {"every": "1d", "anchor": "2026-03-01T09:00:00"},
                              {"at": "2026-03-02T09:00:00"}, {"at": "2026-03-02T12:00:00"}])
    posts = plan_campaign(campaign, utc(2026, 3, 2), utc(2026, 3, 4))
    assert [(p.slot.day, p.slot.hour, p.item.key) for p in posts] == [(2, 9, "a"), (2, 12, "b"), (3, 9, "c")]


def test_themes_swap_templates_on_their_days() -> None:
    campaign = load(schedule=[{"cron": "0 12 * * *"}], timezone="America/New_York",
                    channels=[{"channel": "social", "template": "social/gift.j2"}],
                    themes=[{"name": "xmas", "from": "12-24", "to": "12-26",
                             "templates": {"social/gift.j2": "social/xmas.j2"}}])
    posts = plan_campaign(campaign, utc(2026, 12, 23), utc(2026, 12, 28))
    assert [(p.slot.astimezone(NEW_YORK).day, p.theme.name if p.theme else None, p.template) for p in posts] == [
        (23, None, "social/gift.j2"), (24, "xmas", "social/xmas.j2"), (25, "xmas", "social/xmas.j2"),
        (26, "xmas", "social/xmas.j2"), (27, None, "social/gift.j2")]


def test_variant_template_overrides_the_channel_template() -> None:
    campaign = load(channels=[{"channel": "social", "template": "s.j2",
                               "variants": [{"name": "short", "template": "short.j2"}, {"name": "long"}]}])
    posts = plan_campaign(campaign, utc(2026, 3, 2), utc(2026, 3, 2, 6))
    assert [(p.variant_name, p.template) for p in posts] == [("short", "short.j2")] * 3 + [("long", "s.j2")] * 3
