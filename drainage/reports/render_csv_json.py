"""CSV and JSON: stable columns for spreadsheets and BI tools (documented in the README).

CSV holds the report's rows, one line per group, always with the same columns in the same order (key columns a
grouping does not use are empty). JSON holds the same rows under "rows" plus the totals, top posts, variant
tests, failures and clicks per day and channel. Rates are fractions (0.0125 is 1.25 %); money has two decimals.
"""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal
from typing import Any

from drainage.reports.model import PostFigures, Report, Row

COLUMNS = ("period_from", "period_to", "day", "campaign", "channel", "item", "variant", "posts_sent",
           "posts_failed", "posts_missed", "human_clicks", "preview_clicks", "bot_clicks", "unique_visitors",
           "reach", "reach_clicks", "ctr", "orders", "revenue", "revenue_per_post", "market")
"""`market` came last (issue 22), so that the earlier columns keep their positions."""
JSON_VERSION = 1


def row_record(report: Report, row: Row) -> dict[str, Any]:
    """One row as a flat record with the CSV columns (None where a value does not exist)."""
    period = report.request.period
    return {
        "period_from": period.first.isoformat(), "period_to": period.last.isoformat(),
        "day": row.day.isoformat() if row.day else None,
        "campaign": row.campaign, "channel": row.channel, "item": row.item, "variant": row.variant,
        "posts_sent": row.posts_sent, "posts_failed": row.posts_failed, "posts_missed": row.posts_missed,
        "human_clicks": row.human_clicks, "preview_clicks": row.preview_clicks, "bot_clicks": row.bot_clicks,
        "unique_visitors": row.unique_visitors, "reach": row.reach, "reach_clicks": row.reach_clicks,
        "ctr": _rate(row.ctr), "orders": row.orders, "revenue": _money(row.revenue),
        "revenue_per_post": _money(row.revenue_per_post), "market": row.market,
    }


def to_csv(report: Report) -> str:
    """The rows as CSV (header line first, no totals line: a BI tool sums them itself)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for row in report.rows:
        record = row_record(report, row)
        record["revenue"], record["revenue_per_post"] = row.revenue, row.revenue_per_post  # "100.00", not 100.0
        writer.writerow(["" if record[c] is None else record[c] for c in COLUMNS])
    return buffer.getvalue()


def to_json(report: Report) -> str:
    """The whole report as one JSON document."""
    request = report.request
    doc = {
        "version": JSON_VERSION,
        "generated_at": report.generated_at.isoformat(timespec="seconds"),
        "period": {"from": request.period.first.isoformat(), "to": request.period.last.isoformat(),
                   "days": len(request.period.days), "time_zone": "UTC"},
        "by": request.by,
        "filters": {"campaign": list(request.campaigns), "channel": list(request.channels),
                    "market": list(request.markets)},
        "columns": list(COLUMNS),
        "rows": [row_record(report, row) for row in report.rows],
        "totals": row_record(report, report.totals),
        "top_posts": [_post(p) for p in report.top_posts],
        "variant_tests": [{
            "campaign": t.campaign, "channel": t.channel, "metric": t.metric, "leader": t.leader, "other": t.other,
            "leader_rate": _rate(t.leader_rate), "other_rate": _rate(t.other_rate),
            "leader_counts": list(t.leader_counts), "other_counts": list(t.other_counts),
            "p_value": None if t.p_value is None else round(t.p_value, 6), "significant": t.significant,
            "verdict": t.verdict} for t in report.tests],
        "failures": [{"channel": f.channel, "status": f.status, "reason": f.reason, "count": f.count,
                      "last_at": f.last_at.isoformat(timespec="seconds"), "example": f.example}
                     for f in report.failures],
        "daily_clicks": [{"day": d.day.isoformat(), "channel": d.channel, "human_clicks": d.human,
                          "preview_clicks": d.preview, "bot_clicks": d.bot} for d in report.daily],
        "currencies": report.currencies,
        "notes": report.notes,
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def _post(post: PostFigures) -> dict[str, Any]:
    return {"delivery_id": post.delivery_id, "sent_at": post.sent_at.isoformat(timespec="seconds"),
            "campaign": post.campaign, "channel": post.channel, "item": post.item, "variant": post.variant,
            "url": post.url, "human_clicks": post.human_clicks, "preview_clicks": post.preview_clicks,
            "bot_clicks": post.bot_clicks, "unique_visitors": post.unique_visitors, "reach": post.reach,
            "ctr": _rate(post.ctr)}


def _rate(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def _money(value: Decimal | None) -> float | None:
    """Two decimals, written as a JSON number (exactly the decimal text: 12.3 -> 12.3, 0.1 -> 0.1)."""
    return None if value is None else float(value.quantize(Decimal("0.01")))
