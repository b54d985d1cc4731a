"""The report as plain data: what every renderer (terminal, CSV/JSON, HTML, web) shows."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from drainage.reports.request import ReportRequest
from drainage.store.uniques import GROUP_COLUMNS

UNATTRIBUTED = "(unattributed)"
"""Key of orders that no campaign, channel, item or variant could be credited with."""

KEY_FIELDS = ("day", "campaign", "channel", "item", "variant", "market")
"""The columns that name a row; which of them are filled depends on the grouping."""
GROUP_KEYS: dict[str, tuple[str, ...]] = {**GROUP_COLUMNS, "day": ("day",)}
"""The key columns of each grouping's rows: the link columns of the store's groupings (which also keeps their
unique visitors), and the day."""


@dataclass
class Row:
    """One group's figures over the period (see the README for each definition)."""

    day: date | None = None
    campaign: str | None = None
    channel: str | None = None
    item: str | None = None
    variant: str | None = None
    market: str | None = None
    """The market the posts and links were for ('' for campaigns without markets)."""
    posts_sent: int = 0
    posts_failed: int = 0
    posts_missed: int = 0
    human_clicks: int = 0
    preview_clicks: int = 0
    bot_clicks: int = 0
    unique_visitors: int = 0
    reach: int = 0
    """Recipients (email) and impressions (where a platform reports them) of the posts that have such a figure."""
    reach_clicks: int = 0
    """Human clicks on those same posts: the numerator of the click-through rate."""
    orders: int = 0
    revenue: Decimal = field(default_factory=lambda: Decimal("0.00"))

    @property
    def ctr(self) -> float | None:
        """Click-through rate: human clicks of posts with a reach figure / their reach (None without one)."""
        return self.reach_clicks / self.reach if self.reach else None

    @property
    def revenue_per_post(self) -> Decimal | None:
        return (self.revenue / self.posts_sent).quantize(Decimal("0.01")) if self.posts_sent else None

    @property
    def clicks_per_post(self) -> float | None:
        return self.human_clicks / self.posts_sent if self.posts_sent else None

    def key(self, by: str) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in GROUP_KEYS[by])

    def add(self, other: Row) -> None:
        """Add `other`'s figures to this row (the key stays)."""
        self.posts_sent += other.posts_sent
        self.posts_failed += other.posts_failed
        self.posts_missed += other.posts_missed
        self.human_clicks += other.human_clicks
        self.preview_clicks += other.preview_clicks
        self.bot_clicks += other.bot_clicks
        self.unique_visitors += other.unique_visitors
        self.reach += other.reach
        self.reach_clicks += other.reach_clicks
        self.orders += other.orders
        self.revenue += other.revenue


@dataclass
class DailyClicks:
    """Clicks of one channel on one UTC day (for the chart)."""

    day: date
    channel: str
    human: int
    preview: int
    bot: int


@dataclass
class PostFigures:
    """One sent post and the clicks its links brought while it was the latest post carrying them."""

    delivery_id: int
    sent_at: datetime
    campaign: str
    channel: str
    item: str
    variant: str
    url: str | None
    human_clicks: int = 0
    preview_clicks: int = 0
    bot_clicks: int = 0
    unique_visitors: int = 0
    reach: int | None = None
    market: str = ""

    @property
    def ctr(self) -> float | None:
        return self.human_clicks / self.reach if self.reach else None


@dataclass
class FailureGroup:
    """Deliveries of one channel that did not go out, for one reason."""

    channel: str
    status: str
    reason: str
    """The error with its numbers replaced by '#', so that the same cause groups together."""
    count: int
    last_at: datetime
    example: str
    """The most recent full error text."""


@dataclass
class VariantTest:
    """Two variants of one campaign and channel compared on one rate."""

    campaign: str
    channel: str
    metric: str
    """'ctr' (clicks / reach), 'clicks_per_post' or 'conversion' (orders / clicks)."""
    leader: str
    other: str
    leader_rate: float
    other_rate: float
    leader_counts: tuple[int, int]
    """(successes, trials): (clicks, reach), (clicks, posts) or (orders, clicks)."""
    other_counts: tuple[int, int]
    p_value: float | None
    """Two-sided, Bonferroni-adjusted for the number of comparisons in the campaign and channel; None: too
    little data for the test."""
    significant: bool

    @property
    def verdict(self) -> str:
        if self.p_value is None:
            return "too little data to tell"
        if self.significant:
            return f"{self.leader} is ahead (p={self.p_value:.3g})"
        return f"no significant difference yet (p={self.p_value:.2g})"


@dataclass
class Report:
    """Everything one report shows."""

    request: ReportRequest
    generated_at: datetime
    rows: list[Row]
    totals: Row
    by_channel: list[Row]
    daily: list[DailyClicks]
    variants: list[Row]
    tests: list[VariantTest]
    top_posts: list[PostFigures]
    failures: list[FailureGroup]
    currencies: list[str]
    notes: list[str] = field(default_factory=list)
    by_market: list[Row] = field(default_factory=list)
    """Rows per market ('' for campaigns without markets); the HTML report shows them when there are markets."""

    @property
    def has_markets(self) -> bool:
        return any(row.market for row in self.by_market)
