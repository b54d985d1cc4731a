"""Chart data and inline SVG for the HTML report, drawn on the server (no script, no library, no fetch).

The clicks-per-day chart is SVG; the funnel and the variant comparison are bars whose widths the template sets
in CSS, so their text keeps its size on a phone.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import date

from markupsafe import Markup, escape

from drainage.reports.model import UNATTRIBUTED, DailyClicks, Row, VariantTest
from drainage.reports.stats import Z95, wilson_interval

PALETTE = ("#2563eb", "#d97706", "#059669", "#db2777", "#7c3aed", "#0891b2", "#65a30d", "#dc2626", "#475569",
           "#a16207")
WIDTH, HEIGHT = 400, 220
LEFT, RIGHT, TOP, BOTTOM = 44, 10, 10, 28


def color(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def tick_step(most: float, ticks: int = 4) -> float:
    """A round step (1, 2, 2.5 or 5 times a power of ten; whole numbers: these are counts) so that `ticks` steps
    reach at least `most`."""
    need = max(most, 1) / ticks
    power = 10 ** math.floor(math.log10(need))
    for factor in (1, 2, 2.5, 5, 10):
        step = factor * power
        if step >= need and step == int(step):
            return float(step)
    return float(math.ceil(need))  # pragma: no cover - 10 * power always qualifies


def clicks_per_day(daily: list[DailyClicks], days: list[date]) -> tuple[Markup, list[tuple[str, str, int]]]:
    """SVG line chart of human clicks per day, one line per channel; and its legend (channel, colour, total)."""
    series: dict[str, dict[date, int]] = defaultdict(dict)
    for d in daily:
        series[d.channel][d.day] = d.human
    channels = sorted(series, key=lambda c: (-sum(series[c].values()), c))
    step = tick_step(max((v for s in series.values() for v in s.values()), default=0))
    top = 4 * step
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(i: int) -> float:
        return LEFT + (plot_w / 2 if len(days) == 1 else plot_w * i / (len(days) - 1))

    def y(v: float) -> float:
        return TOP + plot_h * (1 - v / top)

    parts = [f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
             f'aria-label="Human clicks per day and channel" xmlns="http://www.w3.org/2000/svg">']
    for tick in range(5):
        value = step * tick
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(value):.1f}" y2="{y(value):.1f}" '
                     'class="grid"/>')
        parts.append(f'<text x="{LEFT - 4}" y="{y(value) + 3.5:.1f}" text-anchor="end">{_short(value)}</text>')
    every = max(1, math.ceil(len(days) / 6))
    for i, day in enumerate(days):
        if i % every == 0:
            anchor = "start" if i == 0 and len(days) > 1 else "end" if i == len(days) - 1 and i else "middle"
            parts.append(f'<text x="{x(i):.1f}" y="{HEIGHT - 10}" text-anchor="{anchor}">{day:%m-%d}</text>')
    for index, channel in enumerate(channels):
        values = [series[channel].get(day, 0) for day in days]
        points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(values))
        parts.append(f'<polyline points="{points}" fill="none" stroke="{color(index)}" stroke-width="2">'
                     f'<title>{escape(channel)}</title></polyline>')
        if len(days) <= 31:
            parts += [f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="2.5" fill="{color(index)}"/>'
                      for i, v in enumerate(values)]
    parts.append("</svg>")
    legend = [(c, color(i), sum(series[c].values())) for i, c in enumerate(channels)]
    return Markup("".join(parts)), legend


@dataclass
class FunnelStage:
    label: str
    value: int
    width: float
    """Bar width in percent of the largest value of this stage across channels."""
    note: str


def funnel(rows: list[Row]) -> list[tuple[str, list[FunnelStage]]]:
    """Per channel: posts sent -> human clicks -> orders, each bar relative to the stage's largest channel."""
    channels = [r for r in rows if r.channel != UNATTRIBUTED]
    most = (max((r.posts_sent for r in channels), default=0), max((r.human_clicks for r in channels), default=0),
            max((r.orders for r in channels), default=0))
    out = []
    for r in channels:
        per_post = f"{r.clicks_per_post:,.1f} per post" if r.clicks_per_post is not None else ""
        conversion = f"{r.orders / r.human_clicks:.2%} of clicks" if r.human_clicks else ""
        out.append((r.channel or "", [
            FunnelStage("posts sent", r.posts_sent, _share(r.posts_sent, most[0]), ""),
            FunnelStage("human clicks", r.human_clicks, _share(r.human_clicks, most[1]), per_post),
            FunnelStage("orders", r.orders, _share(r.orders, most[2]), conversion),
        ]))
    return out


@dataclass
class VariantBar:
    variant: str
    rate: float
    low: float
    high: float
    counts: str
    width: float
    low_at: float
    high_at: float


@dataclass
class VariantGroup:
    campaign: str
    channel: str
    metric: str
    bars: list[VariantBar]
    tests: list[VariantTest]


def variant_groups(rows: list[Row], tests: list[VariantTest]) -> list[VariantGroup]:
    """Each campaign and channel with two or more variants: rate bars with 95 % intervals, and the tests."""
    grouped: dict[tuple[str, str], list[Row]] = defaultdict(list)
    for row in rows:
        if row.variant and UNATTRIBUTED not in (row.campaign, row.channel, row.variant):
            grouped[(row.campaign or "", row.channel or "")].append(row)
    out = []
    for (campaign, channel), variants in sorted(grouped.items()):
        if len(variants) < 2:
            continue
        use_ctr = all(v.reach > 0 for v in variants)
        bars = []
        for v in variants:
            if use_ctr:
                x, n = min(v.reach_clicks, v.reach), v.reach
                rate = x / n
                low, high = wilson_interval(x, n)
                counts = f"{v.reach_clicks:,} clicks / {v.reach:,} reach"
            else:
                x, n = v.human_clicks, v.posts_sent
                rate = x / n if n else 0.0
                spread = Z95 * math.sqrt(x) / n if n else 0.0
                low, high = max(0.0, rate - spread), rate + spread
                counts = f"{x:,} clicks / {n:,} posts"
            bars.append(VariantBar(v.variant or "", rate, low, high, counts, 0, 0, 0))
        scale = max(b.high for b in bars) or 1.0
        for b in bars:
            b.width, b.low_at, b.high_at = (100 * b.rate / scale, 100 * b.low / scale, 100 * b.high / scale)
        group_tests = [t for t in tests if (t.campaign, t.channel) == (campaign, channel)]
        out.append(VariantGroup(campaign, channel, "CTR" if use_ctr else "clicks per post", bars, group_tests))
    return out


def _share(value: int, most: int) -> float:
    return 100.0 * value / most if most else 0.0


def _short(value: float) -> str:
    if value >= 1_000_000:
        return f"{value / 1_000_000:g}M"
    if value >= 1000:
        return f"{value / 1000:g}k"
    return f"{value:g}"
