"""The `facebook` channel: posts to a Facebook Page through facebook-sdk 3.1.0's `GraphAPI`, behind the
adapter in `drainage.graph` (a current API version, a timeout, a routable host, Graph error codes mapped to
delivery states), which the `instagram` channel shares.

A post with a link goes to `/{page}/feed` (`message` + `link`, the first tracked link, which Facebook turns
into a preview); a post with an image goes to `/{page}/photos` (`url` + `caption`). After a crash the plugin
looks the post up among the Page's posts since the slot, by its exact text.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any, ClassVar, Literal, cast

from pydantic import Field, SecretStr

from drainage.channel import Channel, ChannelOptions, Limits, Post, Receipt
from drainage.graph import GRAPH_URL, Duplicate, Graph


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
        self.graph = Graph(opts.access_token.get_secret_value(), opts.api_version, opts.graph_url, opts.timeout)

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
            result = await self.graph.post(page, "photos", url=post.image_url,
                                      caption=post.text)
            post_id = str(result.get("post_id") or f"{page}_{result['id']}")
        else:
            data = {"message": post.text}
            if self.opts.link_preview and post.links:
                data["link"] = post.links[0]
            result = await self.graph.post(page, "feed", **data)
            post_id = str(result["id"])
        return Receipt(remote_id=post_id, url=_permalink(post_id))

    async def lookup(self, post: Post) -> Receipt | None:
        """The Page's post with exactly this text, published at or after the slot (None: not there)."""
        since = int(post.slot.astimezone(UTC).timestamp())
        result = await self.graph.connections(self.opts.page_id, "posts",
                                           fields="id,message,created_time", since=since, limit=100)
        for found in result.get("data", []):
            if found.get("message") == post.text:
                return Receipt(remote_id=str(found["id"]), url=_permalink(str(found["id"])))
        return None


def _permalink(post_id: str) -> str:
    page, _, story = post_id.partition("_")
    return f"https://www.facebook.com/{page}/posts/{story}" if story else f"https://www.facebook.com/{post_id}"
