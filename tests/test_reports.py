"""Reports show exactly what happened: every grouping's rows equal the inserted history (posts, clicks by class,
unique visitors, orders, revenue), clicks go to the post that carried them, CTR only where a reach exists,
failures grouped by reason, the significance tests give textbook values, and CSV/JSON keep their columns."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text

from drainage.reports.model import UNATTRIBUTED, Report, Row
from drainage.reports.query import build_report
from drainage.reports.render_csv_json import COLUMNS, to_csv, to_json
from drainage.reports.request import BadRequest, parse_request
from drainage.reports.stats import binomial_two_sided, rate_test, two_proportion_test, wilson_interval
from drainage.reports.variants import compare_variants
from drainage.store.db import session
from drainage.store.models import Click, Delivery, Order
from drainage.tracker.orders import store
from tests.report_helpers import D1, D2, D3, KEYS, build_history, expected

PERIOD = {"start": D1.isoformat(), "end": D3.isoformat()}


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    return build_history(tmp_path_factory.mktemp("history"))


def report(engine: Engine, **kwargs: object) -> Report:
    return build_report(engine, parse_request(**{**PERIOD, **kwargs}))  # type: ignore[arg-type]


@pytest.mark.parametrize("by", list(KEYS))
def test_every_grouping_shows_exactly_what_was_inserted(history: Engine, by: str) -> None:
    built = report(history, by=by)
    wanted = expected(by)
    if by == "day":  # every day of the period has a row, even a quiet one
        assert [r.day for r in built.rows] == [D1, D2, D3]
    got = {row.key(by): row for row in built.rows}
    assert set(got) == set(wanted)
    for key, want in wanted.items():
        row = got[key]
        assert (row.posts_sent, row.posts_failed, row.posts_missed) == (want.sent, want.failed, want.missed), key
        assert (row.human_clicks, row.preview_clicks, row.bot_clicks) == (want.human, want.preview, want.bot), key
        assert row.unique_visitors == len(want.uniques), key
        assert (row.orders, row.revenue) == (want.orders, want.revenue), key
    # the same totals whatever the grouping, and they are the history's (written out by hand as a second check)
    t = built.totals
    assert (t.posts_sent, t.posts_failed, t.posts_missed) == (5, 3, 1)
    assert (t.human_clicks, t.preview_clicks, t.bot_clicks, t.unique_visitors) == (17, 4, 3, 13)
    assert (t.orders, t.revenue) == (6, Decimal("137.84"))
    assert t.revenue_per_post == Decimal("27.57")


def test_unique_visitors_count_each_person_once_per_row_and_day(history: Engine) -> None:
    """v1 clicks scarf_a twice on D1, then sale_a and hat_a the same day: one person in every row holding those
    links (not one per link); scarf_a again on D2: one more (another day, and visitor ids change daily)."""
    rows = {r.key("item"): r for r in report(history, by="item").rows}
    assert rows[("spring", "hat")].unique_visitors == 1
    assert rows[("spring", "scarf")].unique_visitors == 10  # D1 v1 v2 r1, D2 v1 w1-w4 r2, D3 v3
    day_rows = {r.day: r for r in report(history, by="day").rows}
    # D1: v1 on scarf_a, sale_a and hat_a, v2 on scarf_a, r1 on news_r1 = 3 people (clicks: 6 human)
    assert (day_rows[D1].human_clicks, day_rows[D1].unique_visitors) == (6, 3)
    # the per-link rollup still counts v1 once per link (what a post's uniques add up)
    assert sum(p.unique_visitors for p in report(history).top_posts if p.url.endswith("/p1")) == 4


def test_filters_select_campaigns_and_channels(history: Engine) -> None:
    spring = report(history, by="channel", campaigns=["spring"])
    assert [r.channel for r in spring.rows] == ["newsletter", "social"]
    assert spring.totals.revenue == Decimal("112.34")  # o1 + o2 + o3 (utm) + o7; not the unattributed o4
    forum = report(history, by="campaign", channels=["forum"])
    assert [(r.campaign, r.posts_sent, r.posts_failed, r.human_clicks, r.orders) for r in forum.rows] == [
        ("autumn", 1, 2, 3, 1)]
    typo = report(history, campaigns=["sprng"])
    assert typo.totals == Row() and typo.notes == [
        "no link or post of campaign 'sprng' was ever recorded: check the name"]


def test_clicks_go_to_the_post_that_carried_the_link_that_day(history: Engine) -> None:
    top = report(history).top_posts
    figures = [(p.url, p.human_clicks, p.preview_clicks, p.bot_clicks, p.unique_visitors, p.reach) for p in top]
    assert figures == [
        # p1: scarf_a and sale_a on D1 (3 + 1 human, 3 previews) and scarf_a on D2 (1), until p3 reposted scarf_a
        ("https://social.example.com/p1", 5, 3, 0, 4, 400),
        ("https://social.example.com/p2", 4, 1, 0, 4, 250),
        ("https://social.example.com/p5", 3, 0, 2, 3, None),
        # p4, an email: its recipients' personal links are not in the journal copy; credited through the series
        ("https://social.example.com/p4", 3, 0, 0, 2, 200),
        # p3 has no payload (sent by `drainage send`): its links are read from its text
        ("https://social.example.com/p3", 1, 0, 1, 1, 300),
    ]
    assert report(history, top=2).top_posts == top[:2]


def test_ctr_only_where_posts_report_a_reach(history: Engine) -> None:
    rows = {r.channel: r for r in report(history, by="channel").rows}
    assert (rows["newsletter"].reach, rows["newsletter"].reach_clicks, rows["newsletter"].ctr) == (200, 3, 0.015)
    assert (rows["social"].reach, rows["social"].reach_clicks) == (950, 10)  # p1 + p2 + p3; hat_a had no post
    assert rows["forum"].ctr is None and rows[UNATTRIBUTED].ctr is None


def test_a_post_sent_after_midnight_counts_on_its_slot_day(tmp_path: Path) -> None:
    engine = build_history(tmp_path)
    with session(engine) as s:
        s.add(Delivery(key="late", campaign="autumn", channel="forum", item="mittens", status="sent",
                       slot_at=datetime(2026, 11, 4, 23, 59, tzinfo=UTC),
                       sent_at=datetime(2026, 11, 5, 0, 1, tzinfo=UTC), impressions=50, text="https://go.example.com/c/aaaaaaaaaaaa"))
        s.commit()
    rows = {r.day: r for r in report(engine, by="day").rows}
    assert (rows[D3].posts_sent, rows[D3].reach) == (2, 350)  # p3 (300) and this one


def test_failures_are_grouped_by_channel_and_reason(history: Engine) -> None:
    failures = [(f.channel, f.status, f.reason, f.count, f.example) for f in report(history).failures]
    assert failures == [
        ("forum", "failed", "transient: HTTP # from forum.example.com (gave up after # attempts)", 2,
         "transient: HTTP 502 from forum.example.com (gave up after 5 attempts)"),
        ("social", "failed", "permanent: text too long", 1, "permanent: text too long"),
        ("social", "missed", "not sent: #h#m late, beyond misfire_grace #h (the daemon was not running)", 1,
         "not sent: 3h10m late, beyond misfire_grace 1h (the daemon was not running)"),
    ]


def test_the_daily_rollups_equal_the_raw_clicks(history: Engine) -> None:
    with history.connect() as conn:
        rollups = conn.execute(text("SELECT day, code, human, preview, bot, visitors FROM link_days "
                                    "ORDER BY day, code")).all()
        clicks = conn.execute(select(Click.clicked_at, Click.code, Click.agent_class, Click.visitor)).all()
    counts: dict[tuple[object, str], list] = {}  # the raw clicks counted here, in Python: portable SQL-free truth
    for clicked_at, code, agent_class, visitor in clicks:
        day = clicked_at.astimezone(UTC).date() if clicked_at.tzinfo else clicked_at.date()
        row = counts.setdefault((day, code), [0, 0, 0, set()])
        row[("human", "preview", "bot").index(agent_class)] += 1
        if agent_class == "human":
            row[3].add(visitor)
    raw = [(day, code, h, p, b, len(v)) for (day, code), (h, p, b, v) in sorted(counts.items())]
    rollups = [(r[0] if not isinstance(r[0], str) else date.fromisoformat(r[0]), *r[1:]) for r in rollups]
    assert [tuple(r) for r in rollups] == [tuple(r) for r in raw] and len(raw) >= 8


def test_the_daily_order_rollup_equals_the_orders_and_a_repeated_order_adds_nothing(history: Engine) -> None:
    def rollup() -> list[tuple[object, ...]]:
        with history.connect() as conn:
            rows = [(str(r[0]), *r[1:6], int(r[6]), int(r[7])) for r in conn.execute(text(
                "SELECT day, campaign, channel, item, variant, currency, sum(orders), sum(revenue_cents) "
                "FROM order_days GROUP BY 1, 2, 3, 4, 5, 6"))]
        return sorted(rows, key=lambda r: tuple(str(x) for x in r))

    with history.connect() as conn:
        orders = conn.execute(select(Order.ordered_at, Order.campaign, Order.channel, Order.item, Order.variant,
                                     Order.currency, Order.amount)).all()
    sums: dict[tuple[object, ...], list] = {}
    for ordered_at, *key, amount in orders:
        day = ordered_at.astimezone(UTC).date() if ordered_at.tzinfo else ordered_at.date()
        row = sums.setdefault((day.isoformat(), *key), [0, 0])
        row[0] += 1
        row[1] += round(Decimal(amount) * 100)
    raw = [(*k, n, cents) for k, (n, cents) in sorted(sums.items(), key=lambda kv: tuple(str(x) for x in kv[0]))]
    assert rollup() == raw and len(raw) == 7
    again = Order(order_id="o1", amount=Decimal("50.00"), currency="EUR", campaign="spring", channel="social",
                  item="scarf", variant="a", attributed_by="click", ordered_at=datetime(2026, 11, 2, 14, tzinfo=UTC))
    assert store(history, again) is False
    assert rollup() == raw


def test_variant_comparison_on_the_history_is_too_close_to_call(history: Engine) -> None:
    tests = report(history).tests
    assert [(t.metric, t.leader, t.other, t.leader_counts, t.other_counts, t.p_value) for t in tests] == [
        ("ctr", "b", "a", (4, 250), (6, 700), None), ("conversion", "b", "a", (1, 4), (1, 7), None)]
    assert {t.verdict for t in tests} == {"too little data to tell"}


def test_a_three_to_two_click_race_has_no_winner_and_a_real_lead_does() -> None:
    def variant(name: str, **figures: int) -> Row:
        return Row(campaign="c", channel="x", variant=name, **figures)

    race = compare_variants([variant("a", human_clicks=3, posts_sent=1), variant("b", human_clicks=2, posts_sent=1)])
    assert [(t.metric, t.leader, t.p_value, t.significant) for t in race] == [("clicks_per_post", "a", 1.0, False)]
    assert race[0].verdict == "no significant difference yet (p=1)"
    real = compare_variants([variant("a", reach=10_000, reach_clicks=200, human_clicks=200),
                             variant("b", reach=10_000, reach_clicks=120, human_clicks=120)])
    assert (real[0].metric, real[0].leader, real[0].other) == ("ctr", "a", "b")
    assert real[0].significant and real[0].p_value is not None and real[0].p_value < 0.001
    assert real[0].verdict.startswith("a is ahead (p=")
    three = compare_variants([variant("a", human_clicks=60, posts_sent=2), variant("b", human_clicks=30, posts_sent=2),
                              variant("c", human_clicks=40, posts_sent=2)])
    # two comparisons: p-values are doubled (Bonferroni); a vs b is p=0.0021 alone
    assert [(t.leader, t.other) for t in three] == [("a", "c"), ("a", "b")]
    assert three[1].p_value == pytest.approx(2 * binomial_two_sided(60, 90, 0.5))


def test_significance_tests_give_textbook_values() -> None:
    # R: prop.test(c(45, 30), c(100, 100), correct = FALSE)$p.value
    assert two_proportion_test(45, 100, 30, 100) == pytest.approx(0.02846, abs=1e-5)
    assert two_proportion_test(3, 10, 2, 10) is None  # expected counts under 5: no verdict
    # R: binom.test(7, 20)$p.value; binom.test(682, 925, p = 0.75)$p.value
    assert binomial_two_sided(7, 20, 0.5) == pytest.approx(0.2632, abs=1e-4)
    assert binomial_two_sided(682, 925, 0.75) == pytest.approx(0.3825, abs=1e-4)
    # equal exposure: 30 clicks against 15 is binom.test(30, 45) = 0.0357; 3 against 2 is no evidence at all
    assert rate_test(30, 10, 15, 10) == pytest.approx(0.0357, abs=1e-4)
    assert rate_test(3, 1, 2, 1) == 1.0
    # normal approximation beyond the exact limit agrees with the exact test
    assert rate_test(1100, 1, 1000, 1) == pytest.approx(binomial_two_sided(1100, 2100, 0.5), rel=0.01)
    # R: prop.test(45, 100, correct = FALSE)$conf.int (Wilson)
    assert wilson_interval(45, 100) == pytest.approx((0.3561454, 0.5475540), abs=1e-6)


def test_csv_has_its_documented_columns_and_the_rows(history: Engine) -> None:
    built = report(history, by="variant")
    lines = list(csv.DictReader(io.StringIO(to_csv(built))))
    assert tuple(lines[0].keys()) == COLUMNS
    page = (Path(__file__).resolve().parent.parent / "docs" / "reports.md").read_text(encoding="utf-8")
    for column in COLUMNS:
        assert f"`{column}`" in page, f"document the CSV/JSON column {column} in docs/reports.md"
    social_a = next(r for r in lines if (r["campaign"], r["channel"], r["variant"]) == ("spring", "social", "a"))
    assert social_a == {
        "period_from": "2026-11-02", "period_to": "2026-11-04", "day": "", "campaign": "spring", "channel": "social",
        "item": "", "variant": "a", "posts_sent": "2", "posts_failed": "0", "posts_missed": "1",
        "human_clicks": "7", "preview_clicks": "3", "bot_clicks": "1", "unique_visitors": "4", "reach": "700",
        "reach_clicks": "6", "ctr": "0.008571", "orders": "1", "revenue": "50.00", "revenue_per_post": "25.00",
        "market": ""}
    assert len(lines) == len(built.rows)


def test_json_holds_rows_totals_posts_tests_and_failures(history: Engine) -> None:
    doc = json.loads(to_json(report(history, by="day")))
    assert doc["version"] == 1 and doc["by"] == "day" and doc["columns"] == list(COLUMNS)
    assert doc["period"] == {"from": "2026-11-02", "to": "2026-11-04", "days": 3, "time_zone": "UTC"}
    assert [r["day"] for r in doc["rows"]] == ["2026-11-02", "2026-11-03", "2026-11-04"]
    assert doc["totals"]["revenue"] == 137.84 and doc["totals"]["human_clicks"] == 17
    assert doc["top_posts"][0]["url"] == "https://social.example.com/p1"
    assert [f["count"] for f in doc["failures"]] == [2, 1, 1]
    assert sum(d["human_clicks"] for d in doc["daily_clicks"]) == 17
    assert doc["variant_tests"][0]["verdict"] == "too little data to tell"


def test_periods_are_whole_utc_days() -> None:
    today = date(2026, 11, 25)
    week = parse_request(since="7d", today=today).period
    assert (week.first, week.last, len(week.days)) == (date(2026, 11, 19), today, 7)
    assert parse_request(since="36h", today=today).period.first == today - timedelta(days=1)
    assert parse_request(today=today).period == week  # the default
    custom = parse_request(start="2026-11-01", end="2026-11-30", today=today).period
    assert (custom.start.isoformat(), custom.end.isoformat()) == ("2026-11-01T00:00:00+00:00",
                                                                  "2026-12-01T00:00:00+00:00")
    for kwargs, message in (
            ({"since": "3x"}, "--since: '3x' is not a duration: expected a number and a unit, such as 30m, 6h, 1d "
                              "or 1w"),
            ({"since": "7d", "start": "2026-11-01"}, "give either --since or --from/--to, not both"),
            ({"start": "2026-11-31"}, "--from: '2026-11-31' is not a day: expected YYYY-MM-DD, e.g. 2026-11-01"),
            ({"start": "2026-11-20", "end": "2026-11-10"}, "the period starts (2026-11-20) after it ends (2026-11-10)"),
            ({"by": "week"}, "cannot group by 'week': expected one of channel, campaign, variant, item, day, market"),
            ({"top": 0}, "top must be between 1 and 1000, got 0")):
        with pytest.raises(BadRequest) as caught:
            parse_request(today=today, **kwargs)  # type: ignore[arg-type]
        assert str(caught.value) == message
