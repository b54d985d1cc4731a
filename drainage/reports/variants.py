"""Variant comparison: within each campaign and channel, is the leading variant's lead real?

The leader (highest rate) is tested against every other variant. Rates: click-through rate (human clicks out of
reach) when every variant's posts report a reach, otherwise human clicks per post; and conversion (orders out of
human clicks) when there are orders. With k variants there are k-1 comparisons, so p-values are multiplied by
k-1 (Bonferroni) and a lead is called significant below 0.05.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

from drainage.reports.model import UNATTRIBUTED, Row, VariantTest
from drainage.reports.stats import rate_test, two_proportion_test

ALPHA = 0.05

Counts = Callable[[Row], tuple[int, int]]
Test = Callable[[int, int, int, int], float | None]


def compare_variants(rows: list[Row]) -> list[VariantTest]:
    """Tests for every campaign and channel with two or more named variants."""
    groups: dict[tuple[str, str], list[Row]] = defaultdict(list)
    for row in rows:
        if row.variant and UNATTRIBUTED not in (row.campaign, row.channel, row.variant):
            groups[(row.campaign, row.channel)].append(row)
    tests: list[VariantTest] = []
    for (campaign, channel), variants in sorted(groups.items()):
        if len(variants) < 2:
            continue
        if all(v.reach > 0 for v in variants):
            tests += _compare(campaign, channel, "ctr", variants, lambda r: (min(r.reach_clicks, r.reach), r.reach),
                              two_proportion_test)
        elif all(v.posts_sent > 0 for v in variants):
            tests += _compare(campaign, channel, "clicks_per_post", variants,
                              lambda r: (r.human_clicks, r.posts_sent), rate_test)
        if sum(v.orders for v in variants) > 0 and all(v.human_clicks > 0 for v in variants):
            tests += _compare(campaign, channel, "conversion", variants,
                              lambda r: (min(r.orders, r.human_clicks), r.human_clicks), two_proportion_test)
    return tests


def _compare(campaign: str, channel: str, metric: str, variants: list[Row], counts: Counts,
             test: Test) -> list[VariantTest]:
    def rate(row: Row) -> float:
        x, n = counts(row)
        return x / n

    ranked = sorted(variants, key=lambda r: (-rate(r), r.variant or ""))
    leader = ranked[0]
    comparisons = len(ranked) - 1
    lx, ln = counts(leader)
    out = []
    for other in ranked[1:]:
        ox, on = counts(other)
        p = test(lx, ln, ox, on)
        adjusted = None if p is None else min(1.0, p * comparisons)
        out.append(VariantTest(campaign, channel, metric, leader.variant or "", other.variant or "", rate(leader),
                               rate(other), (lx, ln), (ox, on), adjusted,
                               adjusted is not None and adjusted < ALPHA and rate(leader) > rate(other)))
    return out
