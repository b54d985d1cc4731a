"""The report as one self-contained HTML file: inline CSS and SVG, no script, nothing fetched.

Its Content-Security-Policy (`default-src 'none'`) forbids any fetch, so the file works offline and as an email
attachment, and a resource slipped in by mistake shows up as a console error in the Chromium test.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from drainage.reports.charts import clicks_per_day, funnel, variant_groups
from drainage.reports.model import GROUP_KEYS, Report, Row
from drainage.reports.render_table import METRIC_NAMES, key_text, money, percent, title


@cache
def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(str(Path(__file__).parent / "templates")),
                      autoescape=select_autoescape(["html", "html.j2"], default=True), undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True)
    env.filters.update(n=lambda v: f"{v:,}", pct=percent, money=money, key=key_text)
    return env


def to_html(report: Report) -> str:
    """The whole report as an HTML document."""
    line_chart, legend = clicks_per_day(report.daily, report.request.period.days)
    return _environment().get_template("report.html.j2").render(
        report=report, title=title(report), t=report.totals, keys=GROUP_KEYS[report.request.by],
        line_chart=line_chart, legend=legend, funnel=funnel(report.by_channel),
        variants=variant_groups(report.variants, report.tests), metric_names=METRIC_NAMES, cells=_cells)


def _cells(row: Row) -> Markup:
    values = (row.posts_sent, row.posts_failed, row.posts_missed, row.human_clicks, row.preview_clicks,
              row.bot_clicks, row.unique_visitors, percent(row.ctr), row.orders, money(row.revenue),
              money(row.revenue_per_post))
    return Markup("").join(Markup('<td class="n">{}</td>').format(f"{v:,}" if isinstance(v, int) else v)
                           for v in values)

