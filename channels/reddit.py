"""The `reddit` channel: a link or text post to one subreddit through PRAW (run in a thread: PRAW is sync;
asyncpraw, as well kept, would bring aiohttp as a second HTTP stack for a few requests a day).

A channel instance is one account posting to one subreddit. The post's title is the channel use's `subject`
(at most 300 characters), its body the rendered text; a `link` post also carries the first tracked link as
its URL. Flair (`flair_id`, `flair_text`) as the subreddit requires; NSFW and spoiler are always off.

Reddit's rules on self-promotion make pacing essential: `min_interval` spaces posts to one subreddit (across
every instance that posts there) and `daily_cap` caps what one account posts (across its instances); the
dispatcher enforces both as shared rate limits, next to the instance's own `rate_limit`. Reddit's `RATELIMIT`
answer ("take a break for 9 minutes") waits that long; a post Reddit refuses (no self-posts, bad flair, a
banned domain...) or removes at once (spam filter, AutoModerator) fails with Reddit's reason. After a crash the
plugin looks among the account's newest posts for one to this subreddit with the post's title, made since the slot.

`oauth_url`, `reddit_url` and `short_url` are PRAW's own settings, given here so a proxy or a test server can
stand in for Reddit.
"""

from __future__ import annotations

import asyncio
import re
from typing import ClassVar, Literal, cast

import praw
import prawcore
from praw.exceptions import PRAWException, RedditAPIException
from pydantic import Field, SecretStr, model_validator

from drainage.channel import Channel, ChannelOptions, Limits, Post, Receipt
from drainage.errors import AuthError, ChannelError, PermanentError, RateLimited, TransientError

WAIT = re.compile(r"(\d+)\s*(millisecond|second|minute|hour)s?", re.IGNORECASE)
UNITS = {"millisecond": 0.001, "second": 1, "minute": 60, "hour": 3600}
RATE_LIMIT_WAIT = 600.0
"""When a rate limit says not how long: ten minutes."""
REMOVED = {"reddit": "Reddit's spam filter", "automod_filtered": "AutoModerator", "moderator": "a moderator",
           "anti_evil_ops": "Reddit's admins", "content_takedown": "a legal takedown"}


class RedditOptions(ChannelOptions):
    """Options of a reddit channel instance."""

    type: Literal["reddit"] = Field(default="reddit", description="Posts to a subreddit through PRAW.")
    subreddit: str = Field(pattern=r"^[A-Za-z0-9_]{2,21}$", description="The subreddit's name, without 'r/'.")
    kind: Literal["link", "text"] = Field(default="link", description="A link post (the first tracked link, the "
                                                                      "text as body) or a text post.")
    flair_id: str | None = Field(default=None, description="Id of a post flair template of the subreddit.")
    flair_text: str | None = Field(default=None, description="Text of an editable flair (needs flair_id).")
    min_interval: str = Field(default="1d", pattern=r"^[1-9]\d*[smhd]$",
                              description="Shortest time between two posts to this subreddit, e.g. '12h' (shared "
                                          "by every instance posting there).")
    daily_cap: int = Field(default=5, ge=1, le=100, description="Most posts this account makes in a day, across "
                                                                "all its reddit instances.")
    check_removal: bool = Field(default=True, description="Look at the post right after submitting: one removed "
                                                          "at once fails with Reddit's reason.")
    client_id: str = Field(description="The app's client id (reddit.com/prefs/apps, type 'script').")
    client_secret: SecretStr = Field(description="The app's secret, e.g. '${REDDIT_CLIENT_SECRET}'.")
    username: str = Field(description="The Reddit account that posts.")
    password: SecretStr | None = Field(default=None, description="Its password (script apps), e.g. "
                                                                 "'${REDDIT_PASSWORD}'.")
    refresh_token: SecretStr | None = Field(default=None, description="Instead of the password: an OAuth "
                                                                      "refresh token with the submit scope.")
    user_agent: str | None = Field(default=None, description="Sent to Reddit (default: "
                                                             "'drainage/0.1 (by u/USERNAME)').")
    oauth_url: str = Field(default="https://oauth.reddit.com", description="PRAW's oauth_url (a proxy or a test "
                                                                           "server).")
    reddit_url: str = Field(default="https://www.reddit.com", description="PRAW's reddit_url (token requests).")
    short_url: str = Field(default="https://redd.it", description="PRAW's short_url.")
    timeout: float = Field(default=30, gt=0, le=300, description="Seconds to wait for Reddit.")

    @model_validator(mode="after")
    def _one_way_to_authenticate(self) -> RedditOptions:
        if (self.password is None) == (self.refresh_token is None):
            raise ValueError("give either password (script app) or refresh_token, not both or neither")
        if self.flair_text and not self.flair_id:
            raise ValueError("flair_text needs flair_id")
        return self


class RedditChannel(Channel):
    """Submits one post per delivery; errors mapped to the daemon's retry/fail/pause states."""

    type = "reddit"
    kind = "forum"
    Options: ClassVar[type[ChannelOptions]] = RedditOptions
    limits = Limits(max_length=40000, counting="chars", requires_subject=True, max_subject=300)

    @property
    def opts(self) -> RedditOptions:
        return cast(RedditOptions, self.options)

    def shared_rates(self) -> dict[str, str]:
        opts = self.opts
        return {f"reddit:r/{opts.subreddit.lower()}": f"1/{opts.min_interval}",
                f"reddit:u/{opts.username.lower()}": f"{opts.daily_cap}/day"}

    def _reddit(self) -> praw.Reddit:
        opts = self.opts
        secret = opts.password or opts.refresh_token
        auth = {"password" if opts.password else "refresh_token": cast(SecretStr, secret).get_secret_value()}
        return praw.Reddit(client_id=opts.client_id, client_secret=opts.client_secret.get_secret_value(),
                           username=opts.username, user_agent=opts.user_agent or f"drainage/0.1 (by u/{opts.username})",
                           oauth_url=opts.oauth_url, reddit_url=opts.reddit_url, short_url=opts.short_url,
                           timeout=opts.timeout, ratelimit_seconds=0, check_for_updates=False,
                           check_for_async=False, **auth)

    async def send(self, post: Post) -> Receipt:
        if not (post.subject or "").strip():
            raise PermanentError("a Reddit post needs a title: set `subject:` on this channel in the campaign")
        try:
            return await asyncio.to_thread(self._submit, post)
        except (PRAWException, prawcore.PrawcoreException) as exc:
            raise _map(exc, self.opts.subreddit) from None

    async def lookup(self, post: Post) -> Receipt | None:
        """The account's post to this subreddit with exactly this title, made at or after the slot (None: none)."""
        try:
            return await asyncio.to_thread(self._find, post)
        except (PRAWException, prawcore.PrawcoreException) as exc:
            raise _map(exc, self.opts.subreddit) from None

    def _find(self, post: Post) -> Receipt | None:
        opts = self.opts
        since = post.slot.timestamp()
        for found in self._reddit().redditor(opts.username).submissions.new(limit=25):
            if (str(found.subreddit).lower() == opts.subreddit.lower() and found.title == (post.subject or "").strip()
                    and float(found.created_utc) >= since):
                return Receipt(remote_id=str(found.id),
                               url=f"https://www.reddit.com/r/{opts.subreddit}/comments/{found.id}/")
        return None

    def _submit(self, post: Post) -> Receipt:
        opts = self.opts
        reddit = self._reddit()
        link = post.links[0] if opts.kind == "link" and post.links else None
        submission = reddit.subreddit(opts.subreddit).submit(
            cast(str, post.subject).strip(), selftext=post.text, url=link, flair_id=opts.flair_id,
            flair_text=opts.flair_text, nsfw=False, spoiler=False, resubmit=True)
        if submission is None:
            raise TransientError("Reddit accepted the post without telling its id")
        post_id = str(submission.id)
        url = f"https://www.reddit.com/r/{opts.subreddit}/comments/{post_id}/"
        if opts.check_removal:
            found = next(iter(reddit.info(fullnames=[f"t3_{post_id}"])), None)
            category = getattr(found, "removed_by_category", None) if found is not None else None
            if category:
                reason = REMOVED.get(category, category)
                raise Removed(f"Reddit removed the post at once ({reason}): {url}")
        return Receipt(remote_id=post_id, url=url)


class Removed(PermanentError):
    """The post was submitted but removed at once (spam filter, AutoModerator, a moderator)."""


def _map(exc: Exception, subreddit: str) -> ChannelError:
    """PRAW's and prawcore's errors as delivery states; the messages are Reddit's own."""
    if isinstance(exc, RedditAPIException):
        items = exc.items
        text = "; ".join(f"{i.error_type}: {i.message}" + (f" ({i.field})" if i.field else "") for i in items)
        limited = [i for i in items if i.error_type == "RATELIMIT"]
        if limited:
            return RateLimited(f"Reddit rate limit: {text}", retry_after=_wait(limited[0].message or ""))
        return PermanentError(f"Reddit refused the post to r/{subreddit}: {text}")
    if isinstance(exc, prawcore.TooManyRequests):
        try:
            wait = max(1.0, float(exc.retry_after or ""))
        except ValueError:
            wait = RATE_LIMIT_WAIT
        return RateLimited(f"Reddit rate limit: HTTP 429 ({exc})", retry_after=wait)
    if isinstance(exc, prawcore.OAuthException):
        return AuthError(f"Reddit refused the login: {exc.error}" + (f" ({exc.description})" if exc.description
                                                                      else "") + " (check username and password)")
    if isinstance(exc, prawcore.InvalidToken | prawcore.InsufficientScope):
        return AuthError(f"Reddit rejected the token: {exc} (the app needs the submit scope)")
    if isinstance(exc, prawcore.Forbidden):  # banned, a private subreddit, or a suspended account
        return AuthError(f"Reddit forbids this account to post in r/{subreddit}: {exc}")
    if isinstance(exc, prawcore.ResponseException) and exc.response.status_code == 401:  # the app's secret
        return AuthError(f"Reddit rejected the app's credentials: {exc} (check client_id and client_secret)")
    if isinstance(exc, prawcore.ServerError | prawcore.RequestException):
        return TransientError(f"Reddit unreachable or failing: {exc.__class__.__name__}: {exc}")
    if isinstance(exc, prawcore.NotFound | prawcore.Redirect):
        return PermanentError(f"no subreddit r/{subreddit} (or it is banned): {exc}")
    if isinstance(exc, prawcore.ResponseException) and exc.response.status_code < 500:
        return PermanentError(f"Reddit refused the post to r/{subreddit}: {exc}")
    return TransientError(f"Reddit: {exc.__class__.__name__}: {exc}")


def _wait(message: str) -> float:
    """'Take a break for 9 minutes before trying again.' -> 540."""
    match = WAIT.search(message)
    if not match:
        return RATE_LIMIT_WAIT
    return max(1.0, int(match.group(1)) * UNITS[match.group(2).lower()])

