"""The `instagram` channel: Graph API content publishing for an Instagram professional account.

Through the same Graph client as the `facebook` channel (`drainage.graph`, facebook-sdk): a media container
is created from the item's image URL and the caption (`POST /{ig-user-id}/media`), polled until Instagram
has fetched and processed the image (`GET /{container}?fields=status_code` until `FINISHED`, for at most
`ready_within` seconds; `ERROR` or `EXPIRED` fail the post), then published (`POST /{ig-user-id}/media_publish`).
An item with more images (`images:`) becomes a carousel: one container per image (`is_carousel_item`), then a
`CAROUSEL` container with their ids as `children`.

Instagram shows no links in captions: the traffic goes through the profile's one link, which should point at
the tracker's link-in-bio page (`bio_pages` in config.yaml). A caption is at most 2,200 characters and 30
hashtags, and a post needs an image: `validate` checks all three. After a crash the plugin looks the post up
among the account's media since the slot, by its exact caption.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal, cast

from pydantic import Field, SecretStr

from drainage.channel import Channel, ChannelOptions, Limits, Post, Receipt
from drainage.errors import ChannelError, PermanentError, TransientError
from drainage.graph import GRAPH_URL, Graph

MAX_CAROUSEL = 10


class InstagramOptions(ChannelOptions):
    """Options of an instagram channel instance."""

    type: Literal["instagram"] = Field(default="instagram",
                                       description="Publishes to an Instagram professional account.")
    ig_user_id: str = Field(description="Id of the Instagram professional account (GET /{page-id}?fields="
                                        "instagram_business_account).")
    access_token: SecretStr = Field(description="A token with instagram_basic and instagram_content_publish, "
                                                "e.g. '${INSTAGRAM_TOKEN}'.")
    api_version: str = Field(default="25.0", pattern=r"^\d+\.\d+$",
                             description="Graph API version, e.g. '25.0' (each lives about two years).")
    graph_url: str = Field(default=GRAPH_URL, description="Where the Graph API is reached (a proxy or a test "
                                                          "server).")
    ready_within: float = Field(default=120, gt=0, le=900,
                                description="Seconds to wait for a media container to be ready before the "
                                            "send is retried later.")
    poll_every: float = Field(default=3, gt=0, le=60, description="Seconds between two container status checks.")
    timeout: float = Field(default=30, gt=0, le=300, description="Seconds to wait for one Graph API answer.")


class InstagramChannel(Channel):
    """Publishes one image or carousel post per delivery; errors mapped to the daemon's retry/fail/pause states."""

    type = "instagram"
    Options: ClassVar[type[ChannelOptions]] = InstagramOptions
    limits = Limits(max_length=2200, counting="chars", media=True, requires_media=True, max_hashtags=30)
    default_rate_limit = "25/day"  # Instagram allows 50 published posts per account in 24 hours

    def __init__(self, name: str, options: ChannelOptions, **kwargs: Any) -> None:
        super().__init__(name, options, **kwargs)
        opts = self.opts
        self.graph = Graph(opts.access_token.get_secret_value(), opts.api_version, opts.graph_url, opts.timeout,
                           platform="Instagram")

    @property
    def opts(self) -> InstagramOptions:
        return cast(InstagramOptions, self.options)

    async def send(self, post: Post) -> Receipt:
        images = _images(post)
        if not images:
            raise PermanentError("an Instagram post needs an image: the item has none")
        account = self.opts.ig_user_id
        if len(images) == 1:
            container = await self._container(image_url=images[0], caption=post.text)
        else:
            children = [await self._container(image_url=url, is_carousel_item="true") for url in images]
            for child in children:
                await self._wait_ready(child)
            container = await self._container(media_type="CAROUSEL", children=",".join(children),
                                              caption=post.text)
        await self._wait_ready(container)
        published = await self.graph.post(account, "media_publish", creation_id=container)
        media_id = str(published["id"])
        return Receipt(remote_id=media_id, url=await self._permalink(media_id))

    async def lookup(self, post: Post) -> Receipt | None:
        """The account's media with exactly this caption, published at or after the slot (None: not there)."""
        since = post.slot.astimezone(UTC)
        result = await self.graph.connections(self.opts.ig_user_id, "media", fields="id,caption,timestamp,permalink",
                                              limit=50)
        for media in result.get("data", []):
            stamp = _parse_time(media.get("timestamp"))
            if media.get("caption") == post.text and (stamp is None or stamp >= since):
                return Receipt(remote_id=str(media["id"]), url=media.get("permalink"))
        return None

    async def _container(self, **data: str) -> str:
        result = await self.graph.post(self.opts.ig_user_id, "media", **data)
        return str(result["id"])

    async def _wait_ready(self, container: str) -> None:
        """Poll the container's status until FINISHED; ERROR/EXPIRED fail the post, too long retries it."""
        deadline = time.monotonic() + self.opts.ready_within
        while True:
            found = await self.graph.get(container, fields="status_code,status")
            status = found.get("status_code")
            if status in ("FINISHED", "PUBLISHED"):
                return
            if status in ("ERROR", "EXPIRED"):
                detail = found.get("status") or status
                raise PermanentError(f"Instagram could not prepare the media ({status}): {detail}")
            if time.monotonic() >= deadline:
                raise TransientError(f"Instagram's media container {container} was still {status or 'not ready'} "
                                     f"after {self.opts.ready_within:g} s")
            await asyncio.sleep(self.opts.poll_every)

    async def _permalink(self, media_id: str) -> str | None:
        try:
            return (await self.graph.get(media_id, fields="permalink")).get("permalink")
        except ChannelError:  # published already: a missing permalink must not fail it
            return None


def _images(post: Post) -> list[str]:
    more = post.extra.get("images") or []
    urls = [post.image_url] if post.image_url else []
    urls += [u for u in more if isinstance(u, str) and u not in urls]
    return urls[:MAX_CAROUSEL]


def _parse_time(text: Any) -> datetime | None:
    """Graph timestamps look like '2026-03-01T11:00:05+0000'."""
    try:
        return datetime.strptime(str(text), "%Y-%m-%dT%H:%M:%S%z")
    except ValueError:
        return None
