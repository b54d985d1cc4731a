"""campaigns/*.yaml: what to promote, where, when, with which templates and variants (one campaign a file)."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import Field, ValidationError, field_validator, model_validator

from drainage.config import Strict, check_http_url, check_timezone
from drainage.errors import Problem
from drainage.markets import Market
from drainage.schedule import (
    CronRule,
    FixedRule,
    IntervalRule,
    Rule,
    anchor_of,
    check_cron,
    in_clock_range,
    parse_clock_range,
    parse_duration,
)
from drainage.sources import Invalid, Positions, load_yaml, problems_from_validation, unforeseen
from drainage.units import Duration, duration

_SLUG = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
Interval = duration(minimum=timedelta(minutes=1), message="'{value}' is shorter than the smallest interval, 1m")


YEARS = range(1900, 3000)
"""Years a campaign date may name: far ones (0001, 9999) overflow when turned into UTC instants."""


def check_year(value: Any) -> Any:
    """Refuse a date or datetime outside `YEARS`, which can only be a typo."""
    if isinstance(value, date) and value.year not in YEARS:
        raise ValueError(f"'{value}' is out of range: expected a year from {YEARS.start} to {YEARS.stop - 1}")
    return value


def slugify(text: str) -> str:
    """'Wool Scarf (red)' -> 'wool-scarf-red'."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "item"


class ScheduleEntry(Strict):
    """One rule: exactly one of cron, every or at."""

    cron: str | None = Field(default=None, description="Cron expression in local time, e.g. '0 9 * * 1-5'.")
    every: Interval | None = Field(default=None, description="Interval such as '30m', '6h', '1d', '1w'.")
    anchor: datetime | None = Field(default=None, description="Local start of an 'every' rule "
                                                                "(default: campaign start, else 2024-01-01).")
    at: datetime | None = Field(default=None, description="One fixed local datetime, e.g. 2026-12-01 10:00.")

    _years = field_validator("anchor", "at")(check_year)

    @field_validator("at", "anchor")
    @classmethod
    def _whole_seconds(cls, v: datetime | None) -> datetime | None:
        return None if v is None else v.replace(microsecond=0)

    @field_validator("cron")
    @classmethod
    def _cron(cls, v: str | None) -> str | None:
        return None if v is None else check_cron(v)

    @model_validator(mode="after")
    def _exactly_one(self) -> ScheduleEntry:
        given = [k for k in ("cron", "every", "at") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("each schedule entry needs exactly one of 'cron', 'every' or 'at'"
                             + (f", got {' and '.join(given)}" if given else ""))
        if self.anchor is not None and self.every is None:
            raise ValueError("'anchor' only goes with 'every'")
        return self

    def rule(self, tz: ZoneInfo, campaign_start: date | datetime | None) -> Rule:
        if self.cron is not None:
            return CronRule(self.cron, tz)
        if self.every is not None:
            return IntervalRule(parse_duration(self.every), anchor_of(self.anchor or campaign_start), tz)
        assert self.at is not None  # guaranteed by _exactly_one
        return FixedRule(self.at, tz)


class MarketValues(Strict):
    """An item's values in one market (or locale, or language) where they differ from its own."""

    name: str | None = Field(default=None, description="The name in this market's language.")
    url: str | None = Field(default=None, description="Store path or absolute URL in this market (a path is joined "
                                                      "to the market's base_url).")
    image: str | None = Field(default=None, description="Image URL in this market.")
    price: float | None = Field(default=None, ge=0, allow_inf_nan=False,
                                description="Price in this market's currency.")
    discount_code: str | None = Field(default=None, description="Discount code valid in this market.")
    description: str | None = Field(default=None, description="Free text in this market's language.")
    tags: list[str] | None = Field(default=None, description="Tags in this market's language.")
    extra: dict[str, Any] = Field(default_factory=dict, description="Extra fields that differ in this market.")


class Item(Strict):
    """Something promoted: a product, an article, a collection or a discount."""

    id: str | None = Field(default=None, description="Stable id used in the journal (default: slug of name).")
    name: str = Field(description="What it is called in posts.")
    url: str = Field(description="Store path ('/products/x') or absolute URL on an allowed host.")
    image: str | None = Field(default=None, description="Image URL for channels that post media.")
    images: list[str] = Field(default_factory=list, description="More image URLs, after `image` (an Instagram "
                                                                "carousel).")
    price: float | None = Field(default=None, ge=0, allow_inf_nan=False, description="Price, formatted with `| price`.")
    currency: str | None = Field(default=None, description="ISO currency code (default: store.currency).")
    discount_code: str | None = Field(default=None, description="A discount code to mention.")
    description: str | None = Field(default=None, description="Free text for templates.")
    tags: list[str] = Field(default_factory=list, description="Tags, e.g. for `| hashtags`.")
    extra: dict[str, Any] = Field(default_factory=dict, description="Any other fields templates may use.")
    prices: dict[str, float] = Field(default_factory=dict, description="The store's price per currency, e.g. "
                                     "{USD: 49, EUR: 45}: each market shows the price in its own currency (never "
                                     "converted).")
    markets: dict[str, MarketValues] = Field(
        default_factory=dict, description="Values that differ by market: {market id, locale (de_AT) or language "
                                          "(de): {name, url, price, ...}}; looked up market id -> locale -> "
                                          "language -> the item's own values.")

    @field_validator("prices")
    @classmethod
    def _prices(cls, v: dict[str, float]) -> dict[str, float]:
        for code, price in v.items():
            if not re.fullmatch(r"[A-Z]{3}", code):
                raise Invalid(f"'{code}' is not an ISO currency code: expected three capital letters such as "
                              "'EUR'", loc=(code,))
            if not isinstance(price, int | float) or price < 0 or price != price or price in (float("inf"),):
                raise Invalid(f"price {price!r} in {code} is not a number of 0 or more", loc=(code,))
        return v

    @property
    def key(self) -> str:
        return self.id or slugify(self.name)


class Variant(Strict):
    """An alternative text for A/B comparison; its name goes into utm_content and reports."""

    name: str = Field(description="Variant name, e.g. 'a' or 'scarcity' (utm_content, reports).")
    template: str | None = Field(default=None, description="Template for this variant (default: the channel's).")
    vars: dict[str, Any] = Field(default_factory=dict, description="Variables for the template.")
    market_vars: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="`vars` that differ by market, keyed by market id, locale or language: "
                                          "{de: {hook: \"...\"}} (looked up market id -> locale -> language -> vars).")


class ChannelUse(Strict):
    """One channel instance a campaign posts to."""

    channel: str = Field(description="Name of a channel instance in config.yaml.")
    template: str = Field(description="Template file under templates/.")
    subject: str | None = Field(default=None, description="Subject line template (email).")
    text_template: str | None = Field(default=None, description="Plain-text part of an email (default: converted "
                                                                "from the HTML template).")
    lists: list[str] | None = Field(default=None, description="Subscriber lists an email channel sends to "
                                                               "(default: the channel's `lists`).")
    variants: list[Variant] = Field(default_factory=list, description="A/B variants; rotate across slots.")
    schedule: list[ScheduleEntry] | None = Field(default=None, description="Overrides the campaign schedule.")
    quiet_hours: list[str] = Field(default_factory=list,
                                   description="Local time ranges with no posts, e.g. ['22:00-08:00'].")
    truncate: bool = Field(default=False, description="Shorten text that is too long (links are kept whole) "
                                                     "instead of reporting it.")
    markets: list[str] | None = Field(default=None, description="The campaign's markets this channel posts for "
                                                               "(default: all of them, or the channel's own market).")
    subjects: dict[str, str] = Field(default_factory=dict, description="Subject line per market id, locale or "
                                     "language, e.g. {de: \"Neu: {{ item.name }}\"} (default: `subject`).")

    @field_validator("quiet_hours", mode="before")
    @classmethod
    def _quiet(cls, v: Any) -> Any:
        values = [v] if isinstance(v, str) else v
        if isinstance(values, list):
            for index, value in enumerate(values):
                try:
                    parse_clock_range(value)
                except ValueError as exc:
                    raise Invalid(str(exc), loc=(index,) if values is v else ()) from None
        return values

    @field_validator("schedule", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return [v] if isinstance(v, dict) else v

    def in_quiet_hours(self, local: datetime) -> bool:
        return any(in_clock_range(local.time(), parse_clock_range(q)) for q in self.quiet_hours)


class Theme(Strict):
    """A date range that switches template variables or files, e.g. a Christmas look."""

    name: str = Field(description="Theme name, available to templates as theme.name.")
    from_: str = Field(alias="from", description="First day: 'MM-DD' every year, or 'YYYY-MM-DD'.")
    to: str = Field(description="Last day (inclusive), same form as 'from'.")
    vars: dict[str, Any] = Field(default_factory=dict, description="Variables available as theme.<name>.")
    market_vars: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="`vars` that differ by market, keyed by market id, locale or language: "
                                          "{de: {greeting: \"...\"}} (looked up market id -> locale -> language -> "
                                          "vars).")
    templates: dict[str, str] = Field(default_factory=dict,
                                      description="Template swaps: {usual template: themed template}.")
    markets: list[str] | None = Field(default=None, description="Markets the theme applies to, e.g. [de] "
                                                               "(default: every market).")

    @field_validator("from_", "to", mode="before")
    @classmethod
    def _day(cls, v: Any) -> str:
        if isinstance(v, datetime):
            v = v.date()
        if isinstance(v, date):
            return check_year(v).isoformat()
        text = str(v)
        try:
            if re.fullmatch(r"\d{2}-\d{2}", text):
                date.fromisoformat(f"2024-{text}")
                return text
            day = date.fromisoformat(text)
        except ValueError:
            pass
        else:
            return check_year(day).isoformat()
        raise ValueError(f"'{text}' is not a day: expected 'MM-DD' (every year) or 'YYYY-MM-DD'")

    def covers(self, day: date) -> bool:
        """True when `day` is inside the theme's range (yearly ranges may wrap past New Year)."""
        if len(self.from_) == 10 and len(self.to) == 10:
            return date.fromisoformat(self.from_) <= day <= date.fromisoformat(self.to)
        md = day.strftime("%m-%d")
        begin, end = self.from_[-5:], self.to[-5:]
        return begin <= md <= end if begin <= end else (md >= begin or md <= end)


class FeedFilters(Strict):
    """Which entries of a feed are posted; an entry must pass every filter that is set."""

    categories: list[str] = Field(default_factory=list, description="Only entries in at least one of these "
                                  "categories (case-insensitive; Shopify's product type counts as one).")
    tags: list[str] = Field(default_factory=list, description="Only entries with at least one of these tags "
                            "(case-insensitive; RSS/Atom categories count as tags too).")
    min_price: float | None = Field(default=None, ge=0, allow_inf_nan=False,
                                    description="Only entries priced at least this (entries without a price fail).")
    max_price: float | None = Field(default=None, ge=0, allow_inf_nan=False,
                                    description="Only entries priced at most this (entries without a price fail).")
    title: str | None = Field(default=None, description="Only entries whose title matches this regular "
                                                        "expression (Python syntax, searched, case-insensitive).")

    @field_validator("title")
    @classmethod
    def _regex(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                re.compile(v)
            except re.error as exc:
                raise ValueError(f"'{v}' is not a regular expression: {exc}") from None
        return v

    @model_validator(mode="after")
    def _range(self) -> FeedFilters:
        if self.min_price is not None and self.max_price is not None and self.min_price > self.max_price:
            raise Invalid(f"min_price {self.min_price:g} is above max_price {self.max_price:g}", loc=("max_price",))
        return self


RepostEvent = Literal["price_drop", "price_change"]
FEED_TIMEOUT_MAX = timedelta(minutes=2)
"""Longest `timeout` a feed may have: a feed that takes longer is broken, and polls of it stay bounded."""
PollInterval = duration(minimum=timedelta(minutes=1),
                        message="'{value}' is shorter than the smallest poll interval, 1m")
FeedTimeout = duration(maximum=FEED_TIMEOUT_MAX,
                       message="'{value}' is not between 1s and the longest feed timeout, 2m")


class FeedSource(Strict):
    """A store feed (RSS or Atom) whose new entries become posts, each at most once per channel."""

    url: str = Field(description="The feed's URL, e.g. https://shop.example.com/collections/all.atom.")
    every: PollInterval = Field(default="30m", description="How often the feed is polled (without a 'schedule', "
                                                           "each poll is a posting slot).")
    channels: list[ChannelUse] = Field(min_length=1, description="Where new entries are posted, with which "
                                                                  "template (the entry is `entry` in it).")
    filters: FeedFilters = Field(default_factory=FeedFilters, description="Which entries are posted.")
    cap: int = Field(default=3, ge=1, description="Most entries posted per channel at one slot; the rest wait "
                                                  "for the next slots (no burst).")
    schedule: list[ScheduleEntry] | None = Field(
        default=None, description="Allowed posting times; new entries wait for the next one (default: each poll).")
    backfill: int = Field(default=0, ge=0, description="How many of the newest entries the first poll posts "
                                                       "(0: none, the feed's current entries are only recorded).")
    repost_on: list[RepostEvent] = Field(
        default_factory=list, description="Changes that announce an already posted entry again: price_drop, "
                                          "price_change. Other edits (a fixed typo) never repost.")
    timeout: FeedTimeout = Field(default="20s", description="How long one fetch of the feed may take (at most 2m).")
    market: str | None = Field(default=None, description="The market whose store feed this is (e.g. Shopify's "
                                                         "/de/collections/all.atom): its entries are posted in that "
                                                         "market's language, time zone and channels (one of the "
                                                         "campaign's markets).")

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        check_http_url(v)
        return v.strip()

    @field_validator("schedule", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return [v] if isinstance(v, dict) else v

    @property
    def interval(self) -> timedelta:
        return parse_duration(self.every)


class UtmOverrides(Strict):
    """UTM tags for this campaign's links."""

    campaign: str | None = Field(default=None, description="utm_campaign (default: the campaign id).")
    source: str | None = Field(default=None, description="utm_source (default: channel instance name).")
    medium: str | None = Field(default=None, description="utm_medium (default: social / forum / email).")
    term: str | None = Field(default=None, description="utm_term.")
    content: str | None = Field(default=None, description="utm_content (default: the variant name).")
    id: str | None = Field(default=None, description="utm_id.")


class Campaign(Strict):
    """One campaign file."""

    id: str | None = Field(default=None, description="Stable id (default: the file name without .yaml).")
    title: str = Field(description="Human title, shown in plans and reports.")
    status: Literal["active", "paused", "draft"] = Field(default="active",
                                                         description="Only active campaigns post.")
    start: date | datetime | None = Field(default=None, description="First local day/time posts may go out.")
    end: date | datetime | None = Field(default=None, description="Last local day (inclusive) or time.")
    timezone: str | None = Field(default=None, description="IANA time zone (default: config timezone).")
    markets: list[str] = Field(default_factory=list, description="Markets the campaign posts in, e.g. [us, de] "
                                                                 "(see Markets): each in its language, currency and "
                                                                 "time zone, on its channels (default: none, the "
                                                                 "store's one market).")
    utm: UtmOverrides = Field(default_factory=UtmOverrides, description="UTM tags of this campaign's links.")
    items: list[Item] = Field(default_factory=list, description="What is promoted (required with 'channels').")
    rotation: Literal["round-robin", "random", "all"] = Field(
        default="round-robin", description="Which item(s) each slot posts.")
    seed: int = Field(default=0, description="Seed of the 'random' rotation (same seed, same picks).")
    schedule: list[ScheduleEntry] = Field(default_factory=list, description="When to post (any mix).")
    channels: list[ChannelUse] = Field(default_factory=list,
                                       description="Where to post the items (required unless there are 'feeds').")
    feeds: list[FeedSource] = Field(default_factory=list,
                                    description="Store feeds whose new entries are posted (see Store feeds).")
    themes: list[Theme] = Field(default_factory=list, description="Seasonal looks by date range.")
    misfire_grace: Duration = Field(default="1h", description="How late a missed slot may still be sent.")
    on_unknown: Literal["skip", "resend"] = Field(
        default="skip", description="After a crash mid-send, when the platform cannot be asked: skip or resend.")

    _tz = field_validator("timezone")(lambda v: None if v is None else check_timezone(v))
    _years = field_validator("start", "end")(check_year)

    @field_validator("schedule", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return [v] if isinstance(v, dict) else v

    @model_validator(mode="after")
    def _consistent(self) -> Campaign:
        if self.id is not None and not _SLUG.match(self.id):
            raise Invalid(f"'{self.id}' must be lower-case letters, digits, '-', '_' or '.'", loc=("id",))
        if not self.channels and not self.feeds:
            raise Invalid("missing required key 'channels'",
                          "" if self.items else "or 'feeds:', to post a store feed's new entries")
        if self.channels and not self.items:
            if "items" in self.model_fields_set:
                raise Invalid("items: list should have at least 1 item", loc=("items",))
            raise Invalid("missing required key 'items'")
        self._check_markets()
        first_feed: dict[str, int] = {}
        for index, feed in enumerate(self.feeds):
            if first_feed.setdefault(feed.url, index) != index:
                raise Invalid(f"feed '{feed.url}' is also used by feeds[{first_feed[feed.url]}]",
                              "list each feed once; give it several channels instead", loc=("feeds", index, "url"))
        first_item: dict[str, int] = {}  # a dict, not a scan per item: catalogs have thousands of items
        for index, item in enumerate(self.items):
            key = item.key
            if first_item.setdefault(key, index) != index:
                where = ("items", index, "id") if item.id is not None else ("items", index)
                raise Invalid(f"item id '{key}' is also used by items[{first_item[key]}]",
                              "give each item a distinct 'id'", loc=where)
        if not self.schedule:
            for index, use in enumerate(self.channels):
                if use.schedule is None:
                    raise Invalid(f"no schedule for channel '{use.channel}'",
                                  "add 'schedule:' to the campaign or to this channel", loc=("channels", index))
        if isinstance(self.start, date) and isinstance(self.end, date) and _as_dt(self.end, True) < _as_dt(
                self.start, False):
            raise Invalid(f"{self.end} is before start {self.start}", loc=("end",))
        return self


    def _check_markets(self) -> None:
        """Markets named by channels and themes must be the campaign's own."""
        mine = self.markets
        if len(set(mine)) != len(mine):
            raise Invalid("a market is listed twice", loc=("markets",))
        where: list[tuple[tuple[str | int, ...], list[str] | None]] = [
            (("channels", i, "markets"), use.markets) for i, use in enumerate(self.channels)]
        where += [(("themes", i, "markets"), theme.markets) for i, theme in enumerate(self.themes)]
        where += [(("feeds", i, "market"), [feed.market] if feed.market else None) for i, feed in enumerate(self.feeds)]
        for loc, names in where:
            for name in names or ():
                if name not in mine:
                    hint = (f"the campaign's markets: {', '.join(mine)}" if mine else
                            "name the campaign's markets first, e.g. markets: [us, de]")
                    raise Invalid(f"market '{name}' is not one of the campaign's markets", hint, loc=loc)
        for index, feed in enumerate(self.feeds):
            if mine and feed.market is None:
                raise Invalid("a feed in a campaign with markets names the market it is the store feed of",
                              f"e.g. market: {mine[0]}", loc=("feeds", index))


def _as_dt(value: date | datetime, end_of_day: bool) -> datetime:
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    return datetime.combine(value + timedelta(days=1) if end_of_day else value, datetime.min.time())


class LoadedCampaign:
    """A validated campaign and where it came from.

    With `markets:`, `bind_markets` (at load, see drainage.markets) sets `markets` and which of them each channel
    entry posts for; every method taking `market` then reads times in that market's zone.
    """

    def __init__(self, campaign: Campaign, path: Path, shown_as: str, positions: Positions,
                 default_tz: str) -> None:
        self.model = campaign
        self.path = path
        self.shown_as = shown_as
        self.positions = positions
        self.id = campaign.id or path.stem
        self.tz = ZoneInfo(campaign.timezone or default_tz)
        self.markets: tuple[Market, ...] = ()
        self._use_markets: dict[int, tuple[Market, ...]] = {}
        self._items: dict[str, list[Item]] = {}
        self._templates: dict[tuple[str, str], str] = {}
        self._subjects: dict[tuple[int, str], str | None] = {}

    @cached_property
    def grace(self) -> timedelta:
        return parse_duration(self.model.misfire_grace)

    def bind_markets(self, markets: tuple[Market, ...], use_markets: dict[int, tuple[Market, ...]],
                     items: dict[str, list[Item]], templates: dict[tuple[str, str], str],
                     subjects: dict[tuple[int, str], str | None]) -> None:
        """Set the campaign's markets, the markets of each channel entry (by `id(use)`), each market's items,
        translated template names by (market id, template) and subject lines by (`id(use)`, market id)."""
        self.markets, self._use_markets, self._items = markets, use_markets, items
        self._templates, self._subjects = templates, subjects

    def localized(self, name: str, market: Market | None) -> str:
        """The template `market`'s posts render for template `name` (its translation, see drainage.markets)."""
        return name if market is None else self._templates.get((market.id, name), name)

    def subject_of(self, use: ChannelUse, market: Market | None) -> str | None:
        """A channel entry's subject line template in `market` (`subjects`, else `subject`)."""
        return use.subject if market is None else self._subjects.get((id(use), market.id), use.subject)

    def markets_for(self, use: ChannelUse) -> tuple[Market, ...]:
        """The markets a channel entry posts for (empty: the campaign has no markets)."""
        return self._use_markets.get(id(use), ())

    def items_for(self, market: Market | None) -> list[Item]:
        """The campaign's items as `market` shows them (names, URLs and prices of that market)."""
        return self.model.items if market is None else self._items[market.id]

    def feed_market(self, feed: FeedSource) -> Market | None:
        """The market of one of the campaign's feeds (None: no market)."""
        return next((m for m in self.markets if m.id == feed.market), None)

    def tz_of(self, market: Market | None) -> ZoneInfo:
        return self.tz if market is None else market.tz

    def rules_for(self, use: ChannelUse, market: Market | None = None) -> list[Rule]:
        entries = use.schedule if use.schedule is not None else self.model.schedule
        return [e.rule(self.tz_of(market), self.model.start) for e in entries]

    def window(self, market: Market | None = None) -> tuple[datetime | None, datetime | None]:
        """The campaign's [start, end) as UTC instants (None: open), in `market`'s zone if given."""
        from drainage.schedule import wall_to_instants

        tz = self.tz_of(market)

        def instant(value: date | datetime | None, end: bool) -> datetime | None:
            if value is None:
                return None
            if isinstance(value, datetime) and value.tzinfo is not None:
                return value
            return wall_to_instants(_as_dt(value, end), tz, both_on_repeat=False)[0]

        return instant(self.model.start, False), instant(self.model.end, True)

    def theme_on(self, day: date, market: Market | None = None) -> Theme | None:
        return next((t for t in self.model.themes if t.covers(day)
                     and (t.markets is None or market is None or market.id in t.markets)), None)


def load_campaign(path: Path, shown_as: str, default_tz: str) -> tuple[LoadedCampaign | None, list[Problem]]:
    """Load and validate one campaign file; return it (or None) with every problem found."""
    data, positions, problems = load_yaml(path, shown_as)
    if problems:
        return None, problems
    if not isinstance(data, dict):
        return None, [Problem(shown_as, 1, 1, "expected a mapping with keys such as 'title:', 'items:', "
                                              "'schedule:' and 'channels:'")]
    try:
        campaign = Campaign.model_validate(data)
        return LoadedCampaign(campaign, path, shown_as, positions, default_tz), []
    except ValidationError as exc:
        return None, problems_from_validation(exc, positions, Campaign)
    except Exception as exc:  # a value no validator foresaw: a problem of this file, the others are still checked
        return None, [unforeseen(shown_as, exc)]
