"""The `discourse` channel: a new topic in a category (with tags), or a reply to one topic, over plain httpx.

pydiscourse is not used: on a 429 it sleeps inside the call, which would block the daemon; here a 429 is
reported with Discourse's own wait (`Retry-After`, or `extras.wait_seconds`) and the daemon waits.

Each new topic carries an `external_id` derived from the delivery's key, so after a crash the plugin asks
Discourse for the topic by that id (`/t/external_id/{id}.json`) instead of guessing, and a topic that was
created although its answer was lost is recognised on the retry. Replies have no such id: a reply channel
cannot look posts up, and the campaign's `on_unknown` decides.
"""

from __future__ import annotations

import hashlib
from typing import Any, ClassVar, Literal, cast

import httpx
from pydantic import Field, SecretStr

from drainage.channel import Channel, ChannelOptions, Limits, Post, Receipt
from drainage.errors import AuthError, ChannelError, PermanentError, RateLimited, TransientError

TITLE_MAX = 255


class DiscourseOptions(ChannelOptions):
    """Options of a discourse channel instance."""

    type: Literal["discourse"] = Field(default="discourse", description="Posts to a Discourse forum.")
    url: str = Field(description="The forum's address, e.g. 'https://forum.example.com'.")
    api_key: SecretStr = Field(description="An API key (Admin > API > Keys), e.g. '${DISCOURSE_API_KEY}'.")
    api_username: str = Field(default="system", description="The user the posts appear from.")
    category: int | None = Field(default=None, description="Category id new topics go to (its number in the "
                                                           "category's URL).")
    tags: list[str] = Field(default_factory=list, description="Tags for new topics.")
    topic_id: int | None = Field(default=None, description="Reply to this topic instead of opening new ones.")
    images: bool = Field(default=True, description="Append the item's image to the post (Markdown).")
    timeout: float = Field(default=30, gt=0, le=300, description="Seconds to wait for the forum.")


class DiscourseChannel(Channel):
    """Opens one topic (or one reply) per delivery; errors mapped to the daemon's retry/fail/pause states."""

    type = "discourse"
    kind = "forum"
    Options: ClassVar[type[ChannelOptions]] = DiscourseOptions
    limits = Limits(max_length=32000, counting="chars", media=True)  # Discourse's default max_post_length
    default_rate_limit = "10/hour"

    @property
    def opts(self) -> DiscourseOptions:
        return cast(DiscourseOptions, self.options)

    @property
    def can_lookup(self) -> bool:
        return self.opts.topic_id is None  # only topics carry our external_id

    def _client(self) -> httpx.AsyncClient:
        headers = {"Api-Key": self.opts.api_key.get_secret_value(), "Api-Username": self.opts.api_username,
                   "Accept": "application/json"}
        return httpx.AsyncClient(base_url=self.opts.url.rstrip("/"), headers=headers, timeout=self.opts.timeout,
                                 follow_redirects=True)

    async def send(self, post: Post) -> Receipt:
        raw = post.text
        if post.image_url and self.opts.images:
            raw += f"\n\n![{post.item}]({post.image_url})"
        body: dict[str, Any] = {"raw": raw}
        if self.opts.topic_id is not None:
            body["topic_id"] = self.opts.topic_id
        else:
            body.update(title=_title(post), external_id=external_id(post.key), tags=self.opts.tags)
            if self.opts.category is not None:
                body["category"] = self.opts.category
        async with self._client() as http:
            response = await _request(http, "POST", "/posts.json", json=body)
            if response.status_code == 422 and self.can_lookup:  # maybe created by a try whose answer was lost
                found = await self._find(http, post)
                if found is not None:
                    return found
            data = _json_or_raise(response)
        return Receipt(remote_id=str(data["id"]), url=self._url(data.get("topic_slug"), data.get("topic_id"),
                                                                 data.get("post_number")))

    async def lookup(self, post: Post) -> Receipt | None:
        """The topic created for this delivery, found by its external_id (None: it does not exist)."""
        async with self._client() as http:
            return await self._find(http, post)

    async def _find(self, http: httpx.AsyncClient, post: Post) -> Receipt | None:
        response = await _request(http, "GET", f"/t/external_id/{external_id(post.key)}.json")
        if response.status_code == 404:
            return None
        topic = _json_or_raise(response)
        posts = topic.get("post_stream", {}).get("posts", [])
        remote_id = str(posts[0]["id"]) if posts else str(topic["id"])
        return Receipt(remote_id=remote_id, url=self._url(topic.get("slug"), topic.get("id"), None))

    def _url(self, slug: str | None, topic_id: int | None, post_number: int | None) -> str | None:
        if topic_id is None:
            return None
        url = f"{self.opts.url.rstrip('/')}/t/{slug or 'topic'}/{topic_id}"
        return f"{url}/{post_number}" if post_number and post_number > 1 else url


def external_id(key: str) -> str:
    """A topic's external_id for a delivery key (Discourse allows 50 characters)."""
    return "drainage-" + hashlib.sha256(key.encode()).hexdigest()[:40]


def _title(post: Post) -> str:
    title = post.subject or next((line for line in post.text.splitlines() if line.strip()), post.item)
    return title.strip()[:TITLE_MAX]


async def _request(http: httpx.AsyncClient, method: str, path: str, **kwargs: Any) -> httpx.Response:
    try:
        return await http.request(method, path, **kwargs)
    except httpx.TimeoutException:
        raise TransientError(f"Discourse did not answer in time ({method} {path})") from None
    except httpx.HTTPError as exc:
        raise TransientError(f"Discourse unreachable: {exc.__class__.__name__} ({method} {path})") from None


def _json_or_raise(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        data = None
    if response.is_success:
        if not isinstance(data, dict):
            raise TransientError(f"Discourse answered HTTP {response.status_code} without JSON")
        return data
    raise _map(response, data if isinstance(data, dict) else {})


def _map(response: httpx.Response, data: dict[str, Any]) -> ChannelError:
    """HTTP status (and Discourse's JSON) as delivery states, with Discourse's own error text."""
    status = response.status_code
    errors = data.get("errors")
    said = "; ".join(str(e) for e in errors) if isinstance(errors, list) and errors else ""
    text = f"Discourse HTTP {status}" + (f": {said}" if said else "")
    if status == 429:
        return RateLimited(text, retry_after=_wait(response, data))
    if status in (401, 403):
        return AuthError(f"{text} (check api_key and api_username, and the key's scopes)")
    if status >= 500:
        return TransientError(text if data else f"Discourse HTTP {status} (an error page, not Discourse's JSON)")
    return PermanentError(text)  # 422 (title too short, duplicate, ...), 404 (no such category or topic)


def _wait(response: httpx.Response, data: dict[str, Any]) -> float | None:
    header = response.headers.get("retry-after")
    if header and header.strip().isdigit():
        return float(header)
    extras = data.get("extras")
    wait = extras.get("wait_seconds") if isinstance(extras, dict) else None
    return float(wait) if isinstance(wait, int | float) else None
