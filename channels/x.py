"""The `x` channel: posts through tweepy's API v2 `Client.create_tweet`, images through v1.1 `API.media_upload`.

Authentication is OAuth 1.0a user context (the four keys of an app with read and write access), or an OAuth 2.0
user access token (`user_token`, sent as a bearer token with `user_auth=False`; v1.1 media upload does not
accept it, so such a channel posts text only). Length is X's weighted count: 280, where every URL counts 23
and CJK characters and emoji weigh 2.

An image is fetched and uploaded while the post is prepared, before the delivery is marked `sending`: a crash
then leaves the post claimable, not unknown. After a crash during `create_tweet` the plugin reads the account's
posts since the slot (`get_users_tweets`) and matches the text with every link taken out (X rewrites links to
t.co and escapes `&`); reading needs an API tier that allows it (Basic and up), else the campaign's `on_unknown`
decides. X refuses the same text twice, so a resend of a post that did go out fails as a duplicate instead of
posting it twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import importlib
import io
import mimetypes
import re
import time
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC
from typing import Any, ClassVar, Literal, cast

import httpx
import requests
import tweepy
from pydantic import Field, SecretStr, model_validator

from drainage.channel import Channel, ChannelOptions, Limits, Post, Publish, Receipt
from drainage.errors import AuthError, ChannelError, PermanentError, RateLimited, TransientError
from drainage.transport import route

API_URL = "https://api.twitter.com"
UPLOAD_URL = "https://upload.twitter.com"
MAX_IMAGE_BYTES = 5 * 1024 * 1024
URL = re.compile(r"https?://\S+")
OAUTH1_KEYS = ("consumer_key", "consumer_secret", "access_token", "access_token_secret")


class XOptions(ChannelOptions):
    """Options of an x channel instance."""

    type: Literal["x"] = Field(default="x", description="Posts to X (Twitter) through API v2.")
    consumer_key: SecretStr | None = Field(default=None, description="OAuth 1.0a API key of the app.")
    consumer_secret: SecretStr | None = Field(default=None, description="OAuth 1.0a API key secret of the app.")
    access_token: SecretStr | None = Field(default=None, description="OAuth 1.0a access token of the account.")
    access_token_secret: SecretStr | None = Field(default=None,
                                                  description="OAuth 1.0a access token secret of the account.")
    user_token: SecretStr | None = Field(
        default=None, description="Instead of the four OAuth 1.0a keys: an OAuth 2.0 user access token with "
                                  "tweet.write (text only: X's v1.1 media upload needs OAuth 1.0a).")
    images: bool = Field(default=True, description="Attach the item's image (OAuth 1.0a only).")
    api_url: str = Field(default=API_URL, description="Where API v2 is reached (a proxy or a test server).")
    upload_url: str = Field(default=UPLOAD_URL, description="Where v1.1 media upload is reached.")
    timeout: float = Field(default=30, gt=0, le=300, description="Seconds to wait for X.")

    @model_validator(mode="after")
    def _one_way_to_authenticate(self) -> XOptions:
        given = [k for k in OAUTH1_KEYS if getattr(self, k) is not None]
        if self.user_token is not None and given:
            raise ValueError("give either user_token (OAuth 2.0) or the four OAuth 1.0a keys, not both")
        if self.user_token is None and len(given) != len(OAUTH1_KEYS):
            missing = ", ".join(k for k in OAUTH1_KEYS if k not in given)
            raise ValueError(f"missing {missing} (OAuth 1.0a needs all four keys; or give user_token)")
        return self

    @property
    def oauth1(self) -> bool:
        return self.user_token is None


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


class XChannel(Channel):
    """Creates one post on X per delivery; errors mapped to the daemon's retry/fail/pause states."""

    type = "x"
    Options: ClassVar[type[ChannelOptions]] = XOptions
    limits = Limits(max_length=280, counting="x-weighted", media=True)
    default_rate_limit = "100/day"  # X's Free tier allows 17 posts a day, Basic 100: set yours

    def __init__(self, name: str, options: ChannelOptions, **kwargs: Any) -> None:
        super().__init__(name, options, **kwargs)
        opts = self.opts
        if opts.oauth1:
            self.client = tweepy.Client(**{k: _secret(getattr(opts, k)) for k in OAUTH1_KEYS})
            auth = tweepy.OAuth1UserHandler(*(_secret(getattr(opts, k)) for k in OAUTH1_KEYS))
            self.api: tweepy.API | None = tweepy.API(auth, timeout=opts.timeout)
            route(self.api.session, API_URL, opts.api_url, opts.timeout)
            route(self.api.session, UPLOAD_URL, opts.upload_url, opts.timeout)
        else:
            self.client = tweepy.Client(bearer_token=_secret(opts.user_token))
            self.api = None
        route(self.client.session, API_URL, opts.api_url, opts.timeout)  # also: tweepy's Client has no timeout

    @property
    def opts(self) -> XOptions:
        return cast(XOptions, self.options)

    async def send(self, post: Post) -> Receipt:
        async with self.prepare(post) as publish:
            return await publish()

    @asynccontextmanager
    async def prepare(self, post: Post) -> AsyncIterator[Publish]:
        """Upload the image first; only `create_tweet` publishes."""
        try:
            media_ids = None
            if post.image_url and self.opts.images and self.api is not None:
                media_ids = [await self._upload(post.image_url)]
        except (tweepy.TweepyException, requests.RequestException) as exc:
            raise _map(exc) from None

        async def publish() -> Receipt:
            try:
                response = await asyncio.to_thread(self.client.create_tweet, text=post.text, media_ids=media_ids,
                                                   user_auth=self.opts.oauth1)
            except (tweepy.TweepyException, requests.RequestException) as exc:
                raise _map(exc) from None
            return _receipt(str(response.data["id"]))

        yield publish

    async def lookup(self, post: Post) -> Receipt | None:
        """The account's post with this text (links aside), created at or after the slot (None: not there)."""
        wanted = _comparable(post.text)
        try:
            me = await asyncio.to_thread(self.client.get_me, user_auth=self.opts.oauth1)
            response = await asyncio.to_thread(
                self.client.get_users_tweets, me.data["id"], start_time=post.slot.astimezone(UTC),
                max_results=100, exclude=["retweets", "replies"], user_auth=self.opts.oauth1)
        except tweepy.Forbidden as exc:  # the Free tier cannot read posts
            raise PermanentError(f"X does not let this app read the account's posts (a Basic tier or above can): "
                                 f"{exc}") from None
        except (tweepy.TweepyException, requests.RequestException) as exc:
            raise _map(exc) from None
        for tweet in response.data or []:
            if _comparable(tweet["text"]) == wanted:
                return _receipt(str(tweet["id"]))
        return None

    async def _upload(self, image_url: str) -> int:
        try:
            async with httpx.AsyncClient(timeout=self.opts.timeout, follow_redirects=True) as http:
                image = await http.get(image_url)
        except httpx.HTTPError as exc:
            raise TransientError(f"could not fetch the image {image_url}: {exc.__class__.__name__}") from None
        if image.status_code >= 400:
            error = PermanentError if image.status_code < 500 else TransientError
            raise error(f"the image {image_url} answered HTTP {image.status_code}")
        if len(image.content) > MAX_IMAGE_BYTES:
            raise PermanentError(f"the image {image_url} is over X's 5 MB limit for images")
        kind = image.headers.get("content-type", "").split(";")[0].strip()
        filename = "image" + (mimetypes.guess_extension(kind) or ".jpg")
        _import_imghdr_quietly()
        api = cast(tweepy.API, self.api)
        media = await asyncio.to_thread(api.media_upload, filename, file=io.BytesIO(image.content))
        return int(media.media_id)


def _receipt(tweet_id: str) -> Receipt:
    return Receipt(remote_id=tweet_id, url=f"https://x.com/i/web/status/{tweet_id}")


def _comparable(text: str) -> str:
    """A post's text as X shows it and as it was sent, made equal: entities unescaped, links (t.co on X's side,
    the tracked link on ours, plus the link X appends for media) taken out, whitespace collapsed."""
    return " ".join(URL.sub(" ", html.unescape(text)).split())


def _map(exc: Exception) -> ChannelError:
    """tweepy's errors as delivery states; messages are X's own, which never echo credentials."""
    if isinstance(exc, tweepy.TooManyRequests):
        reset = getattr(exc, "reset_time", None)
        wait = max(1.0, reset - time.time()) if reset else None
        return RateLimited(f"X rate limit: {exc}", retry_after=wait)
    if isinstance(exc, tweepy.Unauthorized):
        return AuthError(f"X rejected the credentials: {exc}")
    if isinstance(exc, tweepy.Forbidden):
        messages = " ".join(exc.api_messages).lower()
        if 187 in exc.api_codes or "duplicate" in messages:
            return PermanentError(f"X refused a duplicate (this text was already posted): {exc}")
        # the app lacks write access, is not in a project, or the account is locked: every post would fail
        return AuthError(f"X forbids this account or app to post: {exc}")
    if isinstance(exc, tweepy.TwitterServerError):
        return TransientError(f"X server error: {exc}")
    if isinstance(exc, tweepy.HTTPException):  # 400, 404 and the rest: this post will never go through
        return PermanentError(f"X refused the post: {exc}")
    return TransientError(f"X unreachable: {exc.__class__.__name__}: {exc}")


def _import_imghdr_quietly() -> None:
    """tweepy's media_upload imports the stdlib's imghdr, deprecated in Python 3.11 and 3.12; import it once
    here with only that warning silenced (in a thread, a warnings filter would race with other sends)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="'imghdr' is deprecated", category=DeprecationWarning)
        with contextlib.suppress(ModuleNotFoundError):  # Python 3.13+: tweepy falls back to mimetypes
            importlib.import_module("imghdr")
