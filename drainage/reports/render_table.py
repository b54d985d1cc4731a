"""The report in the terminal: rich tables for the rows, top posts, variant tests and failures."""

from __future__ import annotations

from decimal import Decimal

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from drainage.reports.model import GROUP_KEYS, Report, Row
from drainage.terminal import Column, fitted_table

METRICS = ("sent", "failed", "missed", "clicks", "previews", "bots", "uniques", "CTR", "orders", "revenue",
           "rev/post")
METRIC_NAMES = {"ctr": "CTR", "clicks_per_post": "clicks/post", "conversion": "orders/click"}


def title(report: Report) -> str:
    request = report.request
    parts = [f"Channel report {request.period}, by {request.by}"]
    if request.campaigns:
        parts.append("campaign " + ", ".join(request.campaigns))
    if request.channels:
        parts.append("channel " + ", ".join(request.channels))
    if request.markets:
        parts.append("market " + ", ".join(m or "-" for m in request.markets))
    return "; ".join(parts)


def render_table(report: Report, console: Console) -> None:
    """Print every section of the report."""
    keys = GROUP_KEYS[report.request.by]
    texts = [[key_text(getattr(row, k)) for k in keys] for row in report.rows]
    cells = [_cells(row) for row in report.rows]
    totals = _cells(report.totals)
    key_widths = [min(max([len(k), *(len(t[i]) for t in texts)]), 16) for i, k in enumerate(keys)]
    widths = [max([len(name), *(len(c[i]) for c in [*cells, totals])]) for i, name in enumerate(METRICS)]
    room = console.width - sum(key_widths) - 3 * len(keys) - 2
    parts: list[list[int]] = [[]]
    for i, width in enumerate(widths):  # as many metric columns per table as the terminal holds
        if parts[-1] and sum(widths[j] + 3 for j in parts[-1]) + width + 3 > room:
            parts.append([])
        parts[-1].append(i)
    for n, part in enumerate(parts):
        table = Table(title=title(report) if n == 0 else None, show_footer=True, title_justify="left",
                      box=box.SIMPLE_HEAD, footer_style="bold")
        for i, key in enumerate(keys):
            table.add_column(key, footer="total" if i == 0 else "", overflow="ellipsis", no_wrap=True,
                             width=key_widths[i])
        for i in part:
            table.add_column(METRICS[i], footer=totals[i], justify="right", no_wrap=True, min_width=widths[i])
        for key_texts, row_cells in zip(texts, cells, strict=True):
            table.add_row(*key_texts, *(row_cells[i] for i in part))
        console.print(table)
    _top_posts(report, console)
    _tests(report, console)
    _failures(report, console)
    for note in report.notes:
        console.print(Text(f"note: {note}", style="yellow"), soft_wrap=True)


def _cells(row: Row) -> list[str]:
    return [_int(row.posts_sent), _int(row.posts_failed), _int(row.posts_missed), _int(row.human_clicks),
            _int(row.preview_clicks), _int(row.bot_clicks), _int(row.unique_visitors), percent(row.ctr),
            _int(row.orders), money(row.revenue), money(row.revenue_per_post)]


def _top_posts(report: Report, console: Console) -> None:
    if not report.top_posts:
        console.print(Text("no post was sent in this period", style="dim"))
        return
    counts = ("clicks", "previews+bots", "uniques", "CTR")
    columns = [Column("sent (UTC)", whole=True), Column("campaign"), Column("channel"), Column("item"),
               Column("variant", optional=True), *(Column(name, whole=True, justify="right",
                                                          optional=name == "previews+bots") for name in counts),
               Column("url", optional=True)]
    rows = [[f"{post.sent_at:%Y-%m-%d %H:%M}", post.campaign, post.channel, post.item, post.variant or "-",
             _int(post.human_clicks), _int(post.preview_clicks + post.bot_clicks), _int(post.unique_visitors),
             percent(post.ctr), post.url or "-"] for post in report.top_posts]
    console.print(fitted_table(console.width, columns, rows, title=f"top {len(report.top_posts)} posts by human "
                               "clicks", title_justify="left", box=box.SIMPLE_HEAD))


def _tests(report: Report, console: Console) -> None:
    if not report.tests:
        return
    columns = [Column("campaign"), Column("channel"), Column("metric"), Column("leader"), Column("rate", whole=True),
               Column("other"), Column("rate ", whole=True), Column("verdict")]
    rows = []
    for t in report.tests:
        rate = percent if t.metric != "clicks_per_post" else (lambda v: f"{v:,.2f}")
        style = "green" if t.significant else ""
        rows.append([t.campaign, t.channel, METRIC_NAMES[t.metric],
                     f"{t.leader} ({t.leader_counts[0]:,}/{t.leader_counts[1]:,})", rate(t.leader_rate),
                     f"{t.other} ({t.other_counts[0]:,}/{t.other_counts[1]:,})", rate(t.other_rate),
                     Text(t.verdict, style=style)])
    console.print(fitted_table(console.width, columns, rows, title="variants compared (leader against each other "
                               "variant)", title_justify="left", box=box.SIMPLE_HEAD))


def _failures(report: Report, console: Console) -> None:
    if not report.failures:
        console.print(Text("no failed, missed or unknown deliveries in this period", style="green"))
        return
    columns = [Column("channel"), Column("status", whole=True), Column("count", whole=True, justify="right"),
               Column("reason"), Column("last (UTC)", whole=True)]
    rows = [[f.channel, f.status, _int(f.count), f.example if f.count == 1 else f.reason, f"{f.last_at:%Y-%m-%d %H:%M}"]
            for f in report.failures]
    console.print(fitted_table(console.width, columns, rows, title="deliveries that did not go out, by channel and "
                               "reason", title_justify="left", box=box.SIMPLE_HEAD))


def key_text(value: object) -> str:
    """A group key as shown: nothing for no group, `-` for an empty one (a post without a variant)."""
    if value is None:
        return ""
    if value == "":
        return "-"
    return str(value)


def _int(value: int) -> str:
    return f"{value:,}"


def percent(value: float | None) -> str:
    return "" if value is None else f"{value * 100:.2f}%"


def money(value: Decimal | None) -> str:
    return "" if value is None else f"{value:,.2f}"
