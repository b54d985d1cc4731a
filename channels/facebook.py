"""The `facebook` channel: posts to a Facebook Page through facebook-sdk 3.1.0's `GraphAPI`, behind an adapter.

facebook-sdk is old: its constructor refuses Graph API versions above 3.1 (long retired), it never looks at
the HTTP status (only at an `error` in a JSON body), it has no default timeout, and it hard-codes the Graph
host. The adapter constructs it without a version and then sets a current one, always passes a timeout,
reaches the Graph host through a transport adapter mounted on the SDK's own session (so `graph_url` can
point elsewhere), and maps Graph error codes to delivery states.

A post with a link goes to `/{page}/feed` (`message` + `link`, the first tracked link, which Facebook turns
into a preview); a post with an image goes to `/{page}/photos` (`url` + `caption`). After a crash the plugin
looks the post up among the Page's posts since the slot, by its exact text.
"""

from __future__ import annotations

import asyncio
import warnings
from datetime import UTC
from typing import Any, ClassVar, Literal, cast

import requests
from pydantic import Field, SecretStr

from drainage.channel import Channel, ChannelOptions, Limits, Post, Receipt
from drainage.errors import AuthError, ChannelError, PermanentError, RateLimited, TransientError
from drainage.transport import route

with warnings.catch_warnings():  # facebook-sdk 3.1.0 has a regex without a raw string ("\d"): only that
    warnings.filterwarnings("ignore", message=r"invalid escape sequence '\\d'",
                            category=SyntaxWarning)
    warnings.filterwarnings("ignore", message=r"invalid escape sequence '\\d'",
                            category=DeprecationWarning)  # what Python 3.11 calls it
    import facebook

GRAPH_URL = "https://graph.facebook.com"
RATE_LIMIT_CODES = {4, 17, 32, 613, 80001}
"""Application, user, Page, custom and Pages-API-call rate limits."""
AUTH_CODES = {190}  # access token expired, revoked or invalid (also 102 in old API versions)
BLOCKED_CODES = {368}  # temporarily blocked for policy violations
DUPLICATE_CODES = {506}  # duplicate status message
RATE_LIMIT_WAIT = 3600.0
"""Graph rate limits carry no retry-after; Facebook's own advice is to wait up to an hour."""


class Duplicate(PermanentError):
    """Facebook refused a post as a duplicate of one already on the Page."""


class FacebookOptions(ChannelOptions):
    """Options of a facebook channel instance."""

    type: Literal["facebook"] = Field(default="facebook", description="Posts to a Facebook Page.")
    page_id: str = Field(description="Numeric id of the Page (Page > About > Page transparency).")
    access_token: SecretStr = Field(description="A Page access token with pages_manage_posts, e.g. "
                                                "'${FACEBOOK_PAGE_TOKEN}'.")
    api_version: str = Field(default="25.0", pattern=r"^\d+\.\d+$",
                             description="Graph API version, e.g. '25.0' (each lives about two years).")
    graph_url: str = Field(default=GRAPH_URL, description="Where the Graph API is reached (a proxy or a test "
                                                          "server).")
    link_preview: bool = Field(default=True, description="Pass the first link as the post's link (preview).")
    timeout: float = Field(default=30, gt=0, le=300, description="Seconds to wait for the Graph API.")


class FacebookChannel(Channel):
    """Publishes each post on a Page's feed; errors mapped to the daemon's retry/fail/pause states."""

    type = "facebook"
    Options: ClassVar[type[ChannelOptions]] = FacebookOptions
    limits = Limits(max_length=63206, counting="chars", media=True)
    default_rate_limit = "30/hour"

    def __init__(self, name: str, options: ChannelOptions, **kwargs: Any) -> None:
        super().__init__(name, options, **kwargs)
        opts = self.opts
        session = requests.Session()
        route(session, GRAPH_URL, opts.graph_url, opts.timeout)
        self.graph = facebook.GraphAPI(access_token=opts.access_token.get_secret_value(), timeout=opts.timeout,
                                       session=session)
        self.graph.version = f"v{opts.api_version}"  # its constructor allows 3.1 at most

    @property
    def opts(self) -> FacebookOptions:
        return cast(FacebookOptions, self.options)

    async def send(self, post: Post) -> Receipt:
        try:
            return await self._publish(post)
        except Duplicate:  # maybe ours, made by a try whose answer was lost: then it is sent, not failed
            found = await self.lookup(post)
            if found is None:
                raise
            return found

    async def _publish(self, post: Post) -> Receipt:
        page = self.opts.page_id
        if post.image_url:
            result = await self._call(self.graph.put_object, page, "photos", url=post.image_url,
                                      caption=post.text)
            post_id = str(result.get("post_id") or f"{page}_{result['id']}")
        else:
            data = {"message": post.text}
            if self.opts.link_preview and post.links:
                data["link"] = post.links[0]
            result = await self._call(self.graph.put_object, page, "feed", **data)
            post_id = str(result["id"])
        return Receipt(remote_id=post_id, url=_permalink(post_id))

    async def lookup(self, post: Post) -> Receipt | None:
        """The Page's post with exactly this text, published at or after the slot (None: not there)."""
        since = int(post.slot.astimezone(UTC).timestamp())
        result = await self._call(self.graph.get_connections, self.opts.page_id, "posts",
                                  fields="id,message,created_time", since=since, limit=100)
        for found in result.get("data", []):
            if found.get("message") == post.text:
                return Receipt(remote_id=str(found["id"]), url=_permalink(str(found["id"])))
        return None

    async def _call(self, method: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        try:
            result = await asyncio.to_thread(method, *args, **kwargs)
        except facebook.GraphAPIError as exc:
            raise _map(exc) from None
        except (requests.RequestException, ValueError, KeyError) as exc:  # no answer, or not JSON
            raise TransientError(f"Graph API unreachable or not answering JSON: {exc.__class__.__name__}") from None
        if not isinstance(result, dict):
            raise TransientError("Graph API answered something other than a JSON object")
        return result


def _map(exc: facebook.GraphAPIError) -> ChannelError:
    """Graph errors by code. The SDK ignores HTTP status; a body that is not JSON has no code at all."""
    code = exc.code
    error = exc.result.get("error", {}) if isinstance(exc.result, dict) else {}
    subcode = error.get("error_subcode") if isinstance(error, dict) else None
    if code is None:  # "Maintype was not text, image, or querystring": an HTML error page, a proxy...
        return TransientError("Graph API answered with an error page instead of JSON")
    text = f"Facebook error {code}{f'/{subcode}' if subcode else ''}: {exc.message}"
    if code in RATE_LIMIT_CODES:
        return RateLimited(text, retry_after=RATE_LIMIT_WAIT)
    if code in AUTH_CODES:
        return AuthError(f"{text} (get a new Page access token)")
    if code in DUPLICATE_CODES:
        return Duplicate(f"duplicate: {text} (this text is already on the Page)")
    if code in BLOCKED_CODES:
        return PermanentError(f"blocked: {text}")
    if code in (1, 2) or (isinstance(error, dict) and error.get("is_transient")):
        return TransientError(text)  # unknown error / service temporarily unavailable
    return PermanentError(text)


def _permalink(post_id: str) -> str:
    page, _, story = post_id.partition("_")
    return f"https://www.facebook.com/{page}/posts/{story}" if story else f"https://www.facebook.com/{post_id}"
