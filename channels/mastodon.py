"""The `mastodon` channel: a status through Mastodon.py, with the item's image (and its alt text) attached.

Authentication is an access token of an application created on the instance (Preferences > Development >
New application) with the scopes `write:statuses` and `write:media`. Every status carries an
`Idempotency-Key` derived from the delivery's key: a retry after a lost answer does not post twice.

Length is Mastodon's count (graphemes, every URL 23). `drainage validate` checks it against the configured
`max_characters` (500, Mastodon's default) without the network; before its first post the plugin reads the
instance's own limit (`/api/v2/instance`: `max_characters`, `characters_reserved_per_url`) and refuses a
status over it. Mastodon.py would sleep on a rate limit: it runs with `ratelimit_method="throw"` and the
daemon waits instead. The library is imported on first use only.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import mimetypes
import time
from typing import Any, ClassVar, Literal, cast

import httpx
from pydantic import Field, SecretStr

from drainage.channel import Channel, ChannelOptions, Limits, Post, Receipt
from drainage.errors import AuthError, ChannelError, PermanentError, RateLimited, TransientError
from drainage.textlength import MASTODON_URL_LENGTH, mastodon_length

MAX_IMAGE_BYTES = 16 * 1024 * 1024


class MastodonOptions(ChannelOptions):
    """Options of a mastodon channel instance."""

    type: Literal["mastodon"] = Field(default="mastodon", description="Posts to a Mastodon instance.")
    instance: str = Field(description="The instance's address, e.g. 'https://mastodon.social'.")
    access_token: SecretStr = Field(description="An application's access token with the scopes write:statuses "
                                                "and write:media, e.g. '${MASTODON_ACCESS_TOKEN}'.")
    visibility: Literal["public", "unlisted", "private", "direct"] = Field(
        default="public", description="Who sees the statuses ('unlisted': not on public timelines).")
    language: str | None = Field(default=None, description="ISO 639 language of the statuses, e.g. 'en'.")
    max_characters: int = Field(default=500, ge=1, description="The instance's limit for `drainage validate` "
                                                               "(the plugin reads the live one before posting).")
    images: bool = Field(default=True, description="Attach the item's image, with the item's name as alt text.")
    timeout: float = Field(default=30, gt=0, le=300, description="Seconds to wait for the instance.")


class MastodonChannel(Channel):
    """Posts one status per delivery; errors mapped to the daemon's retry/fail/pause states."""

    type = "mastodon"
    Options: ClassVar[type[ChannelOptions]] = MastodonOptions
    limits = Limits(max_length=500, counting="mastodon", media=True)
    default_rate_limit = "60/hour"

    def __init__(self, name: str, options: ChannelOptions, **kwargs: Any) -> None:
        super().__init__(name, options, **kwargs)
        self.limits = Limits(max_length=self.opts.max_characters, counting="mastodon", media=True)  # type: ignore[misc]
        self._api: Any = None
        self._live: tuple[int, int] | None = None  # the instance's max_characters, characters_reserved_per_url

    @property
    def opts(self) -> MastodonOptions:
        return cast(MastodonOptions, self.options)

    def _client(self) -> Any:
        if self._api is None:
            from mastodon import Mastodon

            self._api = Mastodon(access_token=self.opts.access_token.get_secret_value(),
                                 api_base_url=self.opts.instance.rstrip("/"), ratelimit_method="throw",
                                 request_timeout=self.opts.timeout, version_check_mode="none")
        return self._api

    async def send(self, post: Post) -> Receipt:
        from mastodon import MastodonError

        api = self._client()
        try:
            await self._check_length(api, post.text)
            media_ids = None
            if post.image_url and self.opts.images:
                image, kind = await _fetch_image(post.image_url, self.opts.timeout)
                alt = str(post.extra.get("image_alt") or "")[:1500] or None
                media = await asyncio.to_thread(api.media_post, io.BytesIO(image), mime_type=kind, description=alt)
                media_ids = [media["id"]]
            status = await asyncio.to_thread(
                api.status_post, post.text, media_ids=media_ids, visibility=self.opts.visibility,
                language=self.opts.language, idempotency_key=idempotency_key(post.key))
        except MastodonError as exc:
            raise _map(exc, api) from None
        return Receipt(remote_id=str(status["id"]), url=status.get("url") or status.get("uri"))

    async def _check_length(self, api: Any, text: str) -> None:
        """Refuse a status over the instance's own limit (read once per channel instance)."""
        if self._live is None:
            # the version first, failing hard: Mastodon.py's own lazy check recurses without end when it fails
            await asyncio.to_thread(api.retrieve_mastodon_version, fail_hard=True)
            config = (await asyncio.to_thread(api.instance_v2)).get("configuration") or {}
            statuses = config.get("statuses") or {}
            self._live = (int(statuses.get("max_characters") or self.opts.max_characters),
                          int(statuses.get("characters_reserved_per_url") or MASTODON_URL_LENGTH))
        limit, url_length = self._live
        length = mastodon_length(text, url_length)
        if length > limit:
            raise PermanentError(f"the status is {length} long by Mastodon's count, over {self.opts.instance}'s "
                                 f"limit of {limit} (set max_characters: {limit} so that validate sees it)")


def idempotency_key(key: str) -> str:
    """The Idempotency-Key of a delivery's status (Mastodon keeps it an hour)."""
    return "drainage-" + hashlib.sha256(key.encode()).hexdigest()[:40]


async def _fetch_image(url: str, timeout: float) -> tuple[bytes, str]:
    try:
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=True) as http:
            image = await http.get(url)
    except httpx.HTTPError as exc:
        raise TransientError(f"could not fetch the image {url}: {exc.__class__.__name__}") from None
    if image.status_code >= 400:
        error = PermanentError if image.status_code < 500 else TransientError
        raise error(f"the image {url} answered HTTP {image.status_code}")
    if len(image.content) > MAX_IMAGE_BYTES:
        raise PermanentError(f"the image {url} is over Mastodon's 16 MB limit for images")
    kind = image.headers.get("content-type", "").split(";")[0].strip()
    return image.content, kind or mimetypes.guess_type(url)[0] or "image/jpeg"


def _map(exc: Exception, api: Any) -> ChannelError:
    """Mastodon.py's errors as delivery states, with the instance's own error text."""
    from mastodon import errors as M

    if isinstance(exc, M.MastodonRatelimitError):
        reset = getattr(api, "ratelimit_reset", None)
        wait = max(1.0, float(reset) - time.time()) if reset else None
        return RateLimited("Mastodon rate limit (HTTP 429)", retry_after=wait)
    if isinstance(exc, M.MastodonNetworkError):  # its message names the URL, never the token
        if "timeout" in str(exc).lower() or "timed out" in str(exc).lower():
            return TransientError("Mastodon did not answer in time")
        return TransientError(f"Mastodon unreachable: {exc}")
    if isinstance(exc, M.MastodonVersionError):
        cause = exc.__cause__
        return TransientError(f"Mastodon instance unreachable: {cause.__class__.__name__ if cause else exc}")
    if not isinstance(exc, M.MastodonAPIError):
        return PermanentError(f"Mastodon.py refused the request: {exc}")
    status, said = (exc.args[1], exc.args[3]) if len(exc.args) >= 4 else (0, str(exc))
    text = f"Mastodon HTTP {status}" + (f": {said}" if said and isinstance(said, str) else "")
    if isinstance(exc, M.MastodonUnauthorizedError) or status == 403:
        return AuthError(f"{text} (check access_token and its scopes write:statuses, write:media)")
    if isinstance(exc, M.MastodonServerError) or (isinstance(status, int) and status >= 500):
        return TransientError(text if said else f"{text} (an error page, not the instance's JSON)")
    return PermanentError(text)  # 422 (validation failed), 404 and the rest
