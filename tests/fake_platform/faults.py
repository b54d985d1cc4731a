"""Faults as each platform really answers them: status, body and retry headers."""

from __future__ import annotations

import time

from tests.fake_platform.state import Fault

HTML_PAGE = Fault(502, text="<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway"
                            "</h1></center><hr><center>nginx</center></body></html>", content_type="text/html")
"""A proxy's error page: not the platform's JSON."""


def slow(seconds: float = 2.0, commit: bool = False) -> Fault:
    """An answer that takes longer than the client waits (then a 504; `commit`: the post was made anyway)."""
    return Fault(504, text="Gateway Timeout", delay=seconds, commit=commit)


# -- Telegram ------------------------------------------------------------------------------------------------
def telegram_flood(retry_after: int) -> Fault:
    return Fault(429, json={"ok": False, "error_code": 429, "description": f"Too Many Requests: retry after "
                            f"{retry_after}", "parameters": {"retry_after": retry_after}})


TELEGRAM_SERVER_ERROR = Fault(500, json={"ok": False, "error_code": 500, "description": "Internal Server Error"})
TELEGRAM_CHAT_NOT_FOUND = Fault(400, json={"ok": False, "error_code": 400,
                                           "description": "Bad Request: chat not found"})
TELEGRAM_MIGRATED = Fault(400, json={"ok": False, "error_code": 400, "description": "Bad Request: group chat was "
                                     "upgraded to a supergroup chat", "parameters": {"migrate_to_chat_id": -100555}})
TELEGRAM_KICKED = Fault(403, json={"ok": False, "error_code": 403,
                                   "description": "Forbidden: bot was kicked from the channel chat"})


# -- X -------------------------------------------------------------------------------------------------------
def x_rate_limited(reset_in: int) -> Fault:
    reset = int(time.time()) + reset_in
    return Fault(429, json={"title": "Too Many Requests", "detail": "Too Many Requests", "type": "about:blank",
                            "status": 429},
                 headers={"x-rate-limit-limit": "100", "x-rate-limit-remaining": "0",
                          "x-rate-limit-reset": str(reset)})


X_SERVER_ERROR = Fault(503, json={"title": "Service Unavailable", "detail": "Service Unavailable",
                                  "type": "about:blank", "status": 503})
X_DUPLICATE = Fault(403, json={"title": "Forbidden", "type": "about:blank", "status": 403,
                               "detail": "You are not allowed to create a Tweet with duplicate content."})
X_READ_ONLY_APP = Fault(403, json={
    "title": "Unsupported Authentication", "type": "https://api.twitter.com/2/problems/unsupported-authentication",
    "status": 403, "detail": "Your client app is not configured with the appropriate oauth1 app permissions for "
                             "this endpoint."})
X_BAD_REQUEST = Fault(400, json={"errors": [{"message": "Your media IDs are invalid."}], "title": "Invalid Request",
                                 "detail": "One or more parameters to your request was invalid.",
                                 "type": "https://api.twitter.com/2/problems/invalid-request"})


# -- Facebook (the Graph API answers errors as JSON; the SDK never looks at the status) ------------------------
def graph_error(code: int, message: str, status: int = 400, subcode: int | None = None,
                transient: bool = False) -> Fault:
    error: dict[str, object] = {"message": message, "type": "OAuthException", "code": code,
                                "fbtrace_id": "AbCdEf", "is_transient": transient}
    if subcode:
        error["error_subcode"] = subcode
    return Fault(status, json={"error": error})


FB_APP_RATE_LIMIT = graph_error(4, "(#4) Application request limit reached", status=403, transient=True)
FB_PAGE_RATE_LIMIT = graph_error(32, "(#32) Page request limit reached", status=403, transient=True)
FB_BLOCKED = graph_error(368, "It looks like you were misusing this feature by going too fast. You've been "
                              "temporarily blocked from using it.", subcode=1390008)
FB_DUPLICATE = graph_error(506, "(#506) Duplicate status message")
FB_SERVER_ERROR = graph_error(2, "An unexpected error has occurred. Please retry your request later.", status=500,
                              transient=True)


# -- Discourse -----------------------------------------------------------------------------------------------
def discourse_rate_limited(wait: int, header: bool = True) -> Fault:
    return Fault(429, json={"errors": [f"You’ve performed this action too many times. Please wait {wait} seconds "
                                       "before trying again."], "error_type": "rate_limit",
                            "extras": {"wait_seconds": wait, "time_left": f"{wait} seconds"}},
                 headers={"Retry-After": str(wait)} if header else {})


DISCOURSE_SERVER_ERROR = Fault(500, json={"status": 500, "error": "Internal Server Error"})
DISCOURSE_SIMILAR = Fault(422, json={"action": "create_post", "errors": [
    "Body is too similar to what you recently posted"]})
