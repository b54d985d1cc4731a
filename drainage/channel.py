"""The small interface every channel plugin implements, and the objects it exchanges.

A plugin is one class in `channels/<name>.py`, registered under the `drainage.channels` entry-point group:

    class MyChannel(Channel):
        type = "mychannel"
        kind = "social"                       # social / forum / email / search: the default utm_medium
        Options = MyOptions                   # a ChannelOptions subclass; secrets as SecretStr
        limits = Limits(max_length=500, counting="chars", media=True)

        async def send(self, post: Post) -> Receipt: ...
        def prepare(self, post: Post) -> AbstractAsyncContextManager[Publish]: ...  # optional
        async def lookup(self, post: Post) -> Receipt | None: ...   # optional
        def shared_rates(self) -> dict[str, str]: ...              # optional: {"reddit:u/shop": "5/day"}

`prepare` does everything that can fail or take time before a post may reach the platform (building a
client, checking the token, uploading media) and yields the one call that publishes it. The host marks the
delivery `sending` only between the two, so a crash during preparation leaves the post claimable, never
"unknown". The default prepares nothing: the whole `send` is the publishing call.

`send` returns a `Receipt` or raises one of the `ChannelError`s from `drainage.errors`. Retries, throttling
and pauses are the dispatcher's job, never the plugin's.

A plugin gets its name, its validated options and the project directory, nothing else: no database, no
project. Work that needs the database on a channel's behalf belongs to the dispatcher.

An email plugin subclasses `MailChannel` instead: one post goes to many recipients, rendered for each, so the
dispatcher (daemon or `drainage send`) runs its fan-out service (`drainage.email.service`: the per-recipient
ledger, rendering, pacing, retries, SMTP sessions in parallel) around the plugin, which only provides sessions
with its relay (`open_session`: send one message, close) and its settings (`mail_settings`):

    class MyMail(MailChannel):
        type = "mymail"
        Options = MyMailOptions
        def mail_settings(self) -> MailSettings: ...
        def open_session(self) -> MailSession: ...

Durations and rates in options are checked with `parse_duration` and `parse_rate` (from `drainage.units`).
"""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from email.utils import parseaddr
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from drainage.errors import PermanentError
from drainage.textlength import count_length
from drainage.units import Duration, duration, parse_duration, parse_rate

__all__ = [
    "Channel",
    "ChannelOptions",
    "Counting",
    "Duration",
    "Gate",
    "Kind",
    "Limits",
    "MailChannel",
    "MailOutcome",
    "MailSession",
    "MailSettings",
    "Post",
    "Publish",
    "Receipt",
    "duration",
    "parse_duration",
    "parse_rate",
    "post_from_json",
    "post_to_json",
]

Publish = Callable[[], Awaitable["Receipt"]]
"""The call that sends a prepared post's bytes to the platform (see `Channel.prepare`)."""
Counting = Literal["chars", "utf16", "x-weighted", "graphemes", "mastodon"]
Kind = Literal["social", "forum", "email", "search"]
"""A channel's kind: the default utm_medium of its links; a `search` channel (IndexNow) posts no links, it
tells search engines about the store's own URLs."""


HASHTAG = re.compile(r"(?<![\w&/#])#\w+")
"""A hashtag as Instagram and most networks count one: '#' then word characters, not inside a word or URL."""


@dataclass(frozen=True)
class Limits:
    """What a platform accepts: text length (and how it is counted), media support, and what a post must have.

    `validate` checks every rendered post against these, so a limit declared here is a limit enforced.
    """

    max_length: int | None = None
    counting: Counting = "chars"
    media: bool = False
    requires_media: bool = False
    """A post without an image cannot be published (Instagram, Pinterest)."""
    max_hashtags: int | None = None
    """Most hashtags a post's text may carry (Instagram: 30)."""
    requires_subject: bool = False
    """The post needs a title: the channel use's `subject` (Pinterest pin title, Reddit post title)."""
    max_subject: int | None = None
    """Longest title, in characters."""

    def count(self, text: str) -> int:
        """Length of `text` as the platform counts it."""
        return count_length(text, self.counting)

    def problems(self, post: Post) -> list[str]:
        """What in `post` this platform would refuse, besides its length (empty: nothing)."""
        found = []
        if self.requires_media and not post.image_url:
            found.append("has no image, and this channel publishes only posts with one: give the item an "
                         "`image`")
        if self.max_hashtags is not None:
            tags = len(HASHTAG.findall(post.text))
            if tags > self.max_hashtags:
                found.append(f"has {tags} hashtags, over the channel's limit of {self.max_hashtags}")
        if self.requires_subject and not (post.subject or "").strip():
            found.append("has no title: set `subject:` on this channel in the campaign")
        if self.max_subject is not None and post.subject and len(post.subject) > self.max_subject:
            found.append(f"has a title (subject) of {len(post.subject)} characters, over the channel's limit of "
                         f"{self.max_subject}")
        return found


class ChannelOptions(BaseModel):
    """Options every channel instance accepts; plugins subclass this with their own."""

    model_config = ConfigDict(extra="forbid")

    type: str = Field(description="Which plugin sends for this instance (an entry point name).")
    rate_limit: str | None = Field(
        default=None, description="Most posts allowed, e.g. '20/minute' or '300/hour' (default: the plugin's).")
    market: str | None = Field(
        default=None, description="The market (config `markets:`) this instance belongs to: it only ever gets that "
                                  "market's posts (default: none, it may carry any market's posts).")


@dataclass
class Post:
    """One rendered post, ready for one channel instance."""

    key: str
    campaign: str
    channel: str
    item: str
    variant: str
    slot: datetime
    text: str
    subject: str | None = None
    html: str | None = None
    image_url: str | None = None
    links: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    market: str = ""
    """The market the post is for ('' for a campaign without markets)."""


@dataclass(frozen=True)
class Receipt:
    """Proof that a platform accepted a post."""

    remote_id: str
    url: str | None = None
    recipients: int | None = None
    """How many addresses the post was delivered to (email): the denominator of its click-through rate."""
    impressions: int | None = None
    """How many times the post was seen, when the platform says so at once (later: `journal.record_reach`)."""


def post_to_json(post: Post) -> str:
    """A post as the journal stores it (`deliveries.payload`)."""
    data = asdict(post)
    data["slot"] = post.slot.isoformat()
    return json.dumps(data, ensure_ascii=False)


def post_from_json(text: str) -> Post:
    """A post read back from the journal."""
    data = json.loads(text)
    data["slot"] = datetime.fromisoformat(data["slot"])
    return Post(**data)


class Channel(ABC):
    """Base class of channel plugins. One instance per named channel in config.yaml."""

    type: ClassVar[str]
    kind: ClassVar[Kind] = "social"
    Options: ClassVar[type[ChannelOptions]] = ChannelOptions
    limits: ClassVar[Limits] = Limits()
    default_rate_limit: ClassVar[str | None] = None
    fans_out: ClassVar[bool] = False
    """One post goes to many recipients, rendered for each (email): see `MailChannel`."""

    def __init__(self, name: str, options: ChannelOptions, *, base_dir: Path | None = None) -> None:
        self.name = name
        self.options = options
        self.base_dir = base_dir or Path.cwd()

    @property
    def medium(self) -> str:
        """The default utm_medium for links posted here."""
        return self.kind

    @property
    def can_lookup(self) -> bool:
        """True when the plugin can tell whether a post whose outcome is unknown was published."""
        return type(self).lookup is not Channel.lookup

    @abstractmethod
    async def send(self, post: Post) -> Receipt:
        """Publish `post`; return its receipt or raise a `ChannelError`."""

    def shared_rates(self) -> dict[str, str]:
        """Rate limits this instance shares with others, by key (e.g. one Reddit account's daily cap across the
        instances that post as it): the dispatcher paces a send by these too, next to `rate_limit`."""
        return {}

    def prepare(self, post: Post) -> AbstractAsyncContextManager[Publish]:
        """Get ready to publish `post` and yield the call that publishes it. Optional.

        Raise a `ChannelError` from preparing as from sending: nothing reached the platform yet. Plugins that
        override this implement `send` as `async with self.prepare(post) as publish: return await publish()`.
        """
        return _unprepared(self, post)

    async def lookup(self, post: Post) -> Receipt | None:
        """Find `post` on the platform after a crash (None: not published). Optional."""
        raise NotImplementedError

    async def close(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release connections; called once when the instance is no longer used."""


@asynccontextmanager
async def _unprepared(channel: Channel, post: Post) -> AsyncIterator[Publish]:
    async def publish() -> Receipt:
        return await channel.send(post)

    yield publish


Gate = Callable[[], Awaitable[bool]]
"""Asked once a mail session is ready, before DATA: True lets the message go, False withdraws it."""


@dataclass(frozen=True)
class MailOutcome:
    """What a mail relay said about one recipient (see `MailSession.send`)."""

    kind: Literal["sent", "retry", "bounce", "failed", "unknown", "withdrawn"]
    """sent; retry (a 4xx, or a connection lost before DATA); bounce (5xx at RCPT or DATA); failed (5xx at MAIL
    FROM: the sender was refused); unknown (the connection was lost during DATA: it may have been delivered);
    withdrawn (the gate said no: nothing was sent)."""
    code: int | None = None
    message: str = ""
    session: bool = False
    """A session- or relay-level signal (421, 454, a 4xx at MAIL FROM, a lost connection): slows the relay.
    A 4xx at RCPT or after DATA concerns one mailbox (greylisting, a full mailbox): only that recipient waits."""

    @property
    def throttled(self) -> bool:
        return self.kind == "retry" and self.session


class MailSession(ABC):
    """One reusable session with a mail relay, as an email plugin provides it (it reconnects when the relay closed
    it). The fan-out service keeps `MailSettings.connections` of them and sends one message at a time on each."""

    @abstractmethod
    async def send(self, sender: str, recipient: str, message: bytes, gate: Gate | None = None) -> MailOutcome:
        """One transaction for one recipient. Raise `RelayDown` or `AuthError` only when no session can be opened
        (then `gate` was not called); call `gate` once the session is ready and await its answer before DATA."""

    @abstractmethod
    async def close(self) -> None:
        """End the session (it may be used again: it reconnects)."""


@dataclass(frozen=True)
class MailSettings:
    """How the dispatcher's fan-out service sends for an email channel instance (from the plugin's options)."""

    from_address: str
    """Sender, e.g. 'Northwind Knits <news@shop.example.com>'."""
    reply_to: str | None = None
    lists: tuple[str, ...] = ()
    """Subscriber lists mailed when a campaign names none."""
    connections: int = 4
    """Sessions kept open to the relay, each sending one message at a time."""
    in_flight: int = 100
    """Most recipients claimed (rendered ahead) at once."""
    rate: str | None = None
    """Messages per relay, e.g. '14/second' (shared by every daemon on the database)."""
    window: str | None = None
    """A quota over a sliding window, e.g. '10000/hour'."""
    max_attempts: int = 5
    retry_backoff: float = 30.0
    """Seconds before a recipient's first retry after a 4xx (doubling each try, with jitter)..."""
    retry_backoff_max: float = 600.0
    """... up to this many."""
    pause_failure_rate: float = 0.1
    pause_min_sample: int = 100
    message_id_domain: str | None = None
    """Domain of Message-IDs (None: the sender's, filled in when the settings are made)."""

    def __post_init__(self) -> None:
        if self.message_id_domain is None:
            object.__setattr__(self, "message_id_domain", parseaddr(self.from_address)[1].rpartition("@")[2] or None)


class MailChannel(Channel):
    """Base of email plugins: the plugin connects to its relay; the dispatcher's fan-out service does the rest."""

    kind: ClassVar[Kind] = "email"
    fans_out: ClassVar[bool] = True

    @abstractmethod
    def mail_settings(self) -> MailSettings:
        """The fan-out settings of this instance (from its options)."""

    @abstractmethod
    def open_session(self) -> MailSession:
        """A new session with the relay (not connected yet: it connects on its first send)."""

    async def send(self, post: Post) -> Receipt:
        raise PermanentError(f"channel '{self.name}' sends email: its posts go out through the dispatcher's fan-out "
                             "service, not through the plugin (a drainage bug)")
