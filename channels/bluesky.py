"""The `bluesky` channel: a post through the `atproto` SDK, with clickable links and an external link card.

The post's links are link facets (UTF-8 byte ranges of the text, as the AT Protocol wants them), hashtags
are tag facets, and the first link gets a card (`app.bsky.embed.external`: title, description and the
item's image as thumbnail, uploaded with `uploadBlob`). Length is 300 graphemes.

Authentication is the account's handle and an app password (Settings > Privacy and security > App
passwords). The session is kept for the life of the channel instance: the SDK refreshes it before its
access token expires, and a post the PDS refuses with `ExpiredToken` logs in again once and is resent.
The SDK is imported on first use only (it takes seconds to import): `drainage validate` never pays for it.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any, ClassVar, Literal, cast

import httpx
from pydantic import Field, SecretStr

from drainage.channel import Channel, ChannelOptions, Limits, Post, Receipt
from drainage.errors import AuthError, ChannelError, PermanentError, RateLimited, TransientError

PDS_URL = "https://bsky.social"
MAX_THUMB_BYTES = 1_000_000  # Bluesky's limit for a blob used as a card's thumbnail
EXPIRED = ("ExpiredToken", "InvalidToken")


class BlueskyOptions(ChannelOptions):
    """Options of a bluesky channel instance."""

    type: Literal["bluesky"] = Field(default="bluesky", description="Posts to Bluesky (the AT Protocol).")
    handle: str = Field(description="The account's handle, e.g. 'shop.bsky.social' (or its DID).")
    app_password: SecretStr = Field(description="An app password of the account (never the main password), "
                                                "e.g. '${BLUESKY_APP_PASSWORD}'.")
    pds_url: str = Field(default=PDS_URL, description="The account's PDS (its host), for a self-hosted PDS.")
    languages: list[str] = Field(default_factory=list, description="Languages of the posts (BCP 47, e.g. "
                                                                   "['en']; default: the SDK's, 'en').")
    card: bool = Field(default=True, description="Show the first link as a card (title, description, image).")
    images: bool = Field(default=True, description="Use the item's image as the card's thumbnail.")
    timeout: float = Field(default=30, gt=0, le=300, description="Seconds to wait for the PDS.")


class BlueskyChannel(Channel):
    """Creates one post per delivery; errors mapped to the daemon's retry/fail/pause states."""

    type = "bluesky"
    Options: ClassVar[type[ChannelOptions]] = BlueskyOptions
    limits = Limits(max_length=300, counting="graphemes", media=True)
    default_rate_limit = "30/hour"

    def __init__(self, name: str, options: ChannelOptions, **kwargs: Any) -> None:
        super().__init__(name, options, **kwargs)
        self._session: str | None = None  # the SDK's session string (tokens), kept between sends

    @property
    def opts(self) -> BlueskyOptions:
        return cast(BlueskyOptions, self.options)

    async def send(self, post: Post) -> Receipt:
        from atproto_client.exceptions import AtProtocolError

        client = self._new_client()  # one per send: each send may run in another event loop (CLI, daemon)
        try:
            await self._login(client)
            try:
                created = await self._publish(client, post)
            except AtProtocolError as exc:
                if _error_name(exc) not in EXPIRED:
                    raise
                self._session = None  # the PDS no longer takes the tokens: a new session, and once again
                await self._login(client)
                created = await self._publish(client, post)
        except AtProtocolError as exc:
            raise _map(exc) from None
        finally:
            await self._keep_session(client)
        rkey = created.uri.rsplit("/", 1)[-1]
        return Receipt(remote_id=created.uri, url=f"https://bsky.app/profile/{self.opts.handle}/post/{rkey}")

    def _new_client(self) -> Any:
        from atproto_client import AsyncClient
        from atproto_client.request import AsyncRequest

        return AsyncClient(base_url=self.opts.pds_url, request=AsyncRequest(timeout=self.opts.timeout))

    async def _login(self, client: Any) -> None:
        """Resume the kept session (no request), or log in (createSession is rate-limited: as rarely as can be)."""
        if self._session is not None:
            await client.login(session_string=self._session, fetch_bsky_profile=False)
        else:
            await client.login(self.opts.handle, self.opts.app_password.get_secret_value(),
                               fetch_bsky_profile=False)

    async def _keep_session(self, client: Any) -> None:
        with contextlib.suppress(Exception):  # no session (a refused login): the next send logs in
            self._session = client.export_session_string()
        await client.request.close()

    async def _publish(self, client: Any, post: Post) -> Any:
        embed = await self._card(client, post) if self.opts.card and post.links else None
        return await client.send_post(post.text, profile_identify=self.opts.handle, embed=embed,
                                      langs=self.opts.languages or None, facets=facets(post.text, post.links))

    async def _card(self, client: Any, post: Post) -> Any:
        from atproto_client import models

        thumb = None
        if post.image_url and self.opts.images:
            image = await _fetch_image(post.image_url, self.opts.timeout)
            if image is not None:
                thumb = (await client.upload_blob(image)).blob
        title, description = card_text(post)
        return models.AppBskyEmbedExternal.Main(external=models.AppBskyEmbedExternal.External(
            uri=post.links[0], title=title, description=description, thumb=thumb))


def facets(text: str, links: list[str]) -> list[Any]:
    """Link facets for each of the post's own links wherever it appears (byte offsets in UTF-8), then the
    SDK's own detection (hashtags, other URLs) where it does not overlap them."""
    from atproto_client import models
    from atproto_client.utils import facet_detection

    found: list[Any] = []
    taken: list[tuple[int, int]] = []
    encoded = text.encode("utf-8")
    for link in sorted(set(links), key=len, reverse=True):
        needle, start = link.encode("utf-8"), 0
        while (at := encoded.find(needle, start)) >= 0:
            start = at + len(needle)
            if any(at < end and begin < start for begin, end in taken):
                continue
            taken.append((at, start))
            found.append(models.AppBskyRichtextFacet.Main(
                features=[models.AppBskyRichtextFacet.Link(uri=link)],
                index=models.AppBskyRichtextFacet.ByteSlice(byte_start=at, byte_end=start)))
    for facet in facet_detection.detect_facets(text):
        begin, end = facet.index.byte_start, facet.index.byte_end
        if not any(begin < stop and start < end for start, stop in taken):
            found.append(facet)
    return sorted(found, key=lambda f: f.index.byte_start)


def card_text(post: Post) -> tuple[str, str]:
    """A card's title (the post's subject, or its first line) and description (the text without links)."""
    text = post.text
    for link in post.links:
        text = text.replace(link, "")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    title = (post.subject or (lines[0] if lines else post.item)).strip()
    return title[:300], " ".join(lines)[:1000]


async def _fetch_image(url: str, timeout: float) -> bytes | None:
    """The item's image for a thumbnail (None when too large: the card goes without one)."""
    try:
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=True) as http:
            image = await http.get(url)
    except httpx.HTTPError as exc:
        raise TransientError(f"could not fetch the image {url}: {exc.__class__.__name__}") from None
    if image.status_code >= 400:
        error = PermanentError if image.status_code < 500 else TransientError
        raise error(f"the image {url} answered HTTP {image.status_code}")
    return image.content if len(image.content) <= MAX_THUMB_BYTES else None


def _cause(exc: Exception) -> str:
    cause = exc.__cause__
    return f"{cause.__class__.__name__}: {cause}" if cause is not None else exc.__class__.__name__


def _error_name(exc: Exception) -> str:
    content = getattr(getattr(exc, "response", None), "content", None)
    return str(getattr(content, "error", "") or "")


def _said(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if response is None:
        return exc.__class__.__name__
    content = response.content
    if hasattr(content, "error"):
        detail = f"{content.error}: {content.message}" if content.message else str(content.error)
        return f"HTTP {response.status_code}: {detail}"
    return f"HTTP {response.status_code} (an error page, not the PDS's JSON)"


def _map(exc: Exception) -> ChannelError:
    """The SDK's errors as delivery states; messages are the PDS's own, which never echo credentials."""
    from atproto_client import exceptions as E

    text = f"Bluesky {_said(exc)}"
    if isinstance(exc, E.RateLimitExceededError):
        wait = exc.retry_after
        if wait is None and exc.reset_at is not None:
            wait = max(1.0, exc.reset_at.timestamp() - time.time())
        return RateLimited(text, retry_after=wait)
    if isinstance(exc, E.UnauthorizedError) or _error_name(exc) in ("AuthenticationRequired", *EXPIRED):
        return AuthError(f"{text} (check the handle and app_password)")
    if isinstance(exc, E.InvokeTimeoutError):
        return TransientError("Bluesky did not answer in time")
    if isinstance(exc, E.NetworkError):  # transport failures, 409, 413, 502
        return TransientError(text if exc.response is not None else f"Bluesky unreachable: {_cause(exc)}")
    if isinstance(exc, E.BadRequestError):
        return PermanentError(text)
    status = getattr(getattr(exc, "response", None), "status_code", 500)
    return TransientError(text) if status >= 500 else PermanentError(text)
