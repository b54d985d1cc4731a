"""The `pinterest` channel: creates a pin on a board through Pinterest API v5 (`POST /v5/pins`), with httpx.

A pin is an image (the item's `image`, fetched by Pinterest from its URL), a title (the channel use's
`subject`, up to 100 characters), a description (the rendered text, up to 800) and a link: the post's first
tracked link, so every pin sends its clicks through the tracker. `sandbox: true` posts to Pinterest's sandbox
host, which an app uses until Pinterest grants it standard access.

Pinterest's official SDK (pinterest-api-sdk) is not used: at import it reads `.env` files and JSON configs
into process-wide settings, takes its host and token from the environment rather than per client, and pins
`six==1.16.0`; two small JSON endpoints are simpler and safer with httpx. After a crash the plugin looks for
a pin of the board with exactly the post's description, created since the slot.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar, Literal, cast

import httpx
from pydantic import Field, SecretStr

from drainage.channel import Channel, ChannelOptions, Limits, Post, Receipt
from drainage.errors import AuthError, ChannelError, PermanentError, RateLimited, TransientError

API_URL = "https://api.pinterest.com"
SANDBOX_URL = "https://api-sandbox.pinterest.com"
RATE_LIMIT_WAIT = 60.0
"""When a 429 carries no Retry-After: Pinterest's limits are per minute."""


class PinterestOptions(ChannelOptions):
    """Options of a pinterest channel instance."""

    type: Literal["pinterest"] = Field(default="pinterest", description="Creates pins on a Pinterest board.")
    board_id: str = Field(description="Id of the board the pins go to (the number in GET /v5/boards).")
    board_section_id: str | None = Field(default=None, description="Id of a section of that board.")
    access_token: SecretStr = Field(description="An OAuth access token with boards:read and pins:write, e.g. "
                                                "'${PINTEREST_TOKEN}'.")
    sandbox: bool = Field(default=False, description="Post to api-sandbox.pinterest.com (apps without standard "
                                                     "access; the token must be a sandbox token).")
    api_url: str | None = Field(default=None, description="Where API v5 is reached (a proxy or a test server; "
                                                          "default: the production or sandbox host).")
    timeout: float = Field(default=30, gt=0, le=300, description="Seconds to wait for Pinterest.")


class PinterestChannel(Channel):
    """Creates one pin per delivery; errors mapped to the daemon's retry/fail/pause states."""

    type = "pinterest"
    Options: ClassVar[type[ChannelOptions]] = PinterestOptions
    limits = Limits(max_length=800, counting="chars", media=True, requires_media=True, max_subject=100)
    default_rate_limit = "100/hour"

    @property
    def opts(self) -> PinterestOptions:
        return cast(PinterestOptions, self.options)

    @property
    def base_url(self) -> str:
        return (self.opts.api_url or (SANDBOX_URL if self.opts.sandbox else API_URL)).rstrip("/")

    def _client(self) -> httpx.AsyncClient:
        """A client per send: a pin is one request, and a send may run in a different event loop each time."""
        token = self.opts.access_token.get_secret_value()
        return httpx.AsyncClient(base_url=self.base_url, timeout=self.opts.timeout,
                                 headers={"Authorization": f"Bearer {token}"})

    async def send(self, post: Post) -> Receipt:
        if not post.image_url:
            raise PermanentError("a pin needs an image: the item has none")
        body: dict[str, Any] = {"board_id": self.opts.board_id, "description": post.text,
                                "media_source": {"source_type": "image_url", "url": post.image_url}}
        if post.subject:
            body["title"] = post.subject
        if post.links:
            body["link"] = post.links[0]
        if self.opts.board_section_id:
            body["board_section_id"] = self.opts.board_section_id
        try:
            async with self._client() as http:
                response = await http.post("/v5/pins", json=body)
        except httpx.HTTPError as exc:
            raise TransientError(f"Pinterest unreachable: {exc.__class__.__name__}") from None
        if response.status_code >= 300:
            raise _map(response)
        try:
            pin_id = str(response.json()["id"])
        except (ValueError, KeyError, TypeError):
            raise TransientError(f"Pinterest answered HTTP {response.status_code} without a pin id") from None
        return Receipt(remote_id=pin_id, url=f"https://www.pinterest.com/pin/{pin_id}/")

    async def lookup(self, post: Post) -> Receipt | None:
        """The board's pin with exactly this description, created at or after the slot (None: not there)."""
        since = post.slot.astimezone(UTC).replace(tzinfo=None)
        try:
            async with self._client() as http:
                response = await http.get(f"/v5/boards/{self.opts.board_id}/pins", params={"page_size": 50})
        except httpx.HTTPError as exc:
            raise TransientError(f"Pinterest unreachable: {exc.__class__.__name__}") from None
        if response.status_code >= 300:
            raise _map(response)
        try:
            pins = response.json().get("items") or []
        except (ValueError, AttributeError):
            raise TransientError("Pinterest answered its board's pins without JSON") from None
        for pin in pins:
            if pin.get("description") == post.text and _created(pin) >= since:
                return Receipt(remote_id=str(pin["id"]), url=f"https://www.pinterest.com/pin/{pin['id']}/")
        return None


def _created(pin: dict[str, Any]) -> datetime:
    """A pin's `created_at` ('2026-03-01T11:00:05', UTC); unreadable: long ago."""
    try:
        return datetime.fromisoformat(str(pin.get("created_at"))).replace(tzinfo=None)
    except ValueError:
        return datetime.min


def _map(response: httpx.Response) -> ChannelError:
    """Pinterest's answers by status; its error body is `{"code": N, "message": "..."}`."""
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("message"):
        text = f"Pinterest error {body.get('code', '?')} (HTTP {status}): {body['message']}"
    else:
        text = f"Pinterest answered HTTP {status}" + (" with an error page" if status >= 500 else "")
    if status == 429:
        return RateLimited(text, retry_after=_retry_after(response))
    if status == 401:
        return AuthError(f"{text} (get a new access token)")
    if status == 403:  # the token lacks a scope, or the board is not the token's: every pin would fail
        return AuthError(f"{text} (check the token's scopes boards:read and pins:write, and board_id)")
    if status >= 500 or status == 408:
        return TransientError(text)
    return PermanentError(text)


def _retry_after(response: httpx.Response) -> float:
    try:
        return max(1.0, float(response.headers.get("retry-after", "")))
    except ValueError:
        return RATE_LIMIT_WAIT
