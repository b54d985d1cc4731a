"""`GET /reports` on the tracker: the same report as `drainage report`, behind a token.

The token is `tracker.reports_token` (from the environment). A request must carry it as
`Authorization: Bearer <token>`, or as the password of HTTP Basic authentication (any user name), which is what
a browser asks for after the 401. It is never accepted in the URL (URLs end up in logs, histories and Referer
headers). Without a configured token the page is off (503); without the token, or with a wrong one: 401.
Filters are query parameters named like the command's options: `since`, `from`, `to`, `campaign`, `channel` and `market`
(repeatable), `by`, `top`, and `format` (html, the default; json; csv).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac

from sqlalchemy import Engine
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from drainage.reports.query import build_report
from drainage.reports.render_csv_json import to_csv, to_json
from drainage.reports.render_html import to_html
from drainage.reports.request import BadRequest, parse_request

FORMATS = {"html": "text/html; charset=utf-8", "json": "application/json", "csv": "text/csv; charset=utf-8"}
_CHALLENGE = 'Bearer realm="drainage reports", Basic realm="drainage reports", charset="UTF-8"'
_PRIVATE = {"cache-control": "no-store, private", "x-content-type-options": "nosniff",
            "referrer-policy": "no-referrer"}


def presented_token(authorization: str | None) -> str | None:
    """The token in an Authorization header (Bearer, or the password of Basic), or None."""
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer":
        return value or None
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[2] or None
    return None


def token_matches(expected: str, presented: str | None) -> bool:
    """Constant-time comparison (no early exit that would tell how much of a guess was right)."""
    return presented is not None and hmac.compare_digest(expected.encode(), presented.encode())


class ReportsPage:
    """The Starlette endpoint serving reports from one database."""

    def __init__(self, engine: Engine, token: str | None) -> None:
        self.engine = engine
        self.token = token or None

    async def respond(self, request: Request) -> Response:
        """Answer one GET /reports."""
        if self.token is None:
            return JSONResponse({"error": "reports are off: set tracker.reports_token (e.g. "
                                          "${DRAINAGE_REPORTS_TOKEN}) in config.yaml"}, 503, headers=_PRIVATE)
        if not token_matches(self.token, presented_token(request.headers.get("authorization"))):
            return JSONResponse({"error": "a valid reports token is required (Authorization: Bearer <token>)"},
                                401, headers={**_PRIVATE, "www-authenticate": _CHALLENGE})
        params = request.query_params
        fmt = params.get("format", "html")
        try:
            if fmt not in FORMATS:
                raise BadRequest(f"format must be one of {', '.join(FORMATS)}, got '{fmt}'")
            top = params.get("top", "10")
            if not top.isdigit():
                raise BadRequest(f"top must be a whole number, got '{top}'")
            report_request = parse_request(since=params.get("since"), start=params.get("from"), end=params.get("to"),
                                           campaigns=params.getlist("campaign"), channels=params.getlist("channel"),
                                           markets=params.getlist("market"),
                                           by=params.get("by", "channel"), top=int(top))
        except BadRequest as exc:
            return JSONResponse({"error": str(exc)}, 400, headers=_PRIVATE)
        report = await asyncio.to_thread(build_report, self.engine, report_request)
        render = {"html": to_html, "json": to_json, "csv": to_csv}[fmt]
        body = render(report)
        headers = dict(_PRIVATE)
        if fmt == "csv":
            period = report_request.period
            headers["content-disposition"] = (f'attachment; filename="drainage-report-{report_request.by}-'
                                              f'{period.first}-{period.last}.csv"')
        return Response(body, media_type=FORMATS[fmt], headers=headers)
