"""The Graph API client the `facebook` and `instagram` channels share: facebook-sdk 3.1.0's `GraphAPI`, adapted.

facebook-sdk is old: its constructor refuses Graph API versions above 3.1 (long retired), it never looks at
the HTTP status (only at an `error` in a JSON body), it has no default timeout, and it hard-codes the Graph
host. `Graph` constructs it without a version and then sets a current one, always passes a timeout, reaches
the Graph host through a transport adapter mounted on the SDK's own session (so `graph_url` can point
elsewhere), runs its blocking calls in a thread, and maps Graph error codes to delivery states.

Only channel plugins import this module (it imports facebook-sdk): never the CLI or the daemon's core.
"""

from __future__ import annotations

import asyncio
import warnings
from typing import Any

import requests

from drainage.errors import AuthError, ChannelError, PermanentError, RateLimited, TransientError
from drainage.transport import route

with warnings.catch_warnings():  # facebook-sdk 3.1.0 has a regex without a raw string ("\d"): only that
    warnings.filterwarnings("ignore", message=r"invalid escape sequence '\\d'",
                            category=SyntaxWarning)
    warnings.filterwarnings("ignore", message=r"invalid escape sequence '\\d'",
                            category=DeprecationWarning)  # what Python 3.11 calls it
    import facebook

GRAPH_URL = "https://graph.facebook.com"
RATE_LIMIT_CODES = {4, 17, 32, 613, 80001, 80002}
"""Application, user, Page, custom, Pages-API-call and Instagram-API-call rate limits."""
AUTH_CODES = {190}  # access token expired, revoked or invalid (also 102 in old API versions)
PERMISSION_CODES = {10, 200}  # the token or app lacks a permission: every post would fail the same way
BLOCKED_CODES = {368}  # temporarily blocked for policy violations
DUPLICATE_CODES = {506}  # duplicate status message
PUBLISH_LIMIT_SUBCODES = {2207042}  # Instagram: the account's 24-hour publishing limit is reached
RATE_LIMIT_WAIT = 3600.0
"""Graph rate limits carry no retry-after; Facebook's own advice is to wait up to an hour."""


class Duplicate(PermanentError):
    """Facebook refused a post as a duplicate of one already on the Page."""


class Graph:
    """facebook-sdk's `GraphAPI` on a current API version, a timeout and a routable host; async calls."""

    def __init__(self, access_token: str, api_version: str, graph_url: str = GRAPH_URL,
                 timeout: float = 30, platform: str = "Facebook") -> None:
        session = requests.Session()
        route(session, GRAPH_URL, graph_url, timeout)
        self.api = facebook.GraphAPI(access_token=access_token, timeout=timeout, session=session)
        self.api.version = f"v{api_version}"  # its constructor allows 3.1 at most
        self.platform = platform

    async def get(self, node: str, **args: Any) -> dict[str, Any]:
        return await self._call(self.api.get_object, node, **args)

    async def connections(self, node: str, edge: str, **args: Any) -> dict[str, Any]:
        return await self._call(self.api.get_connections, node, edge, **args)

    async def post(self, node: str, edge: str, **data: Any) -> dict[str, Any]:
        return await self._call(self.api.put_object, node, edge, **data)

    async def _call(self, method: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        try:
            result = await asyncio.to_thread(method, *args, **kwargs)
        except facebook.GraphAPIError as exc:
            raise graph_error(exc, self.platform) from None
        except (requests.RequestException, ValueError, KeyError) as exc:  # no answer, or not JSON
            raise TransientError(f"Graph API unreachable or not answering JSON: {exc.__class__.__name__}") from None
        if not isinstance(result, dict):
            raise TransientError("Graph API answered something other than a JSON object")
        return result


def graph_error(exc: facebook.GraphAPIError, platform: str = "Facebook") -> ChannelError:
    """Graph errors by code. The SDK ignores HTTP status; a body that is not JSON has no code at all."""
    code = exc.code
    error = exc.result.get("error", {}) if isinstance(exc.result, dict) else {}
    error = error if isinstance(error, dict) else {}
    subcode = error.get("error_subcode")
    if code is None:  # "Maintype was not text, image, or querystring": an HTML error page, a proxy...
        return TransientError("Graph API answered with an error page instead of JSON")
    detail = error.get("error_user_msg") or ""
    text = f"{platform} error {code}{f'/{subcode}' if subcode else ''}: {exc.message}"
    text += f" ({detail})" if detail and detail not in exc.message else ""
    if code in RATE_LIMIT_CODES or subcode in PUBLISH_LIMIT_SUBCODES:
        return RateLimited(text, retry_after=RATE_LIMIT_WAIT)
    if code in AUTH_CODES:
        return AuthError(f"{text} (get a new access token)" if platform != "Facebook"
                         else f"{text} (get a new Page access token)")
    if code in PERMISSION_CODES:
        return AuthError(f"{text} (the token or the app lacks a permission)")
    if code in DUPLICATE_CODES:
        return Duplicate(f"duplicate: {text} (this text is already on the Page)")
    if code in BLOCKED_CODES:
        return PermanentError(f"blocked: {text}")
    if code in (1, 2) or error.get("is_transient"):
        return TransientError(text)  # unknown error / service temporarily unavailable
    return PermanentError(text)
