"""The `telegram` channel: posts to a channel or group through a bot, with python-telegram-bot's `Bot`.

Text goes out with `sendMessage` in HTML parse mode (the rendered text is escaped; an `.html` template's
output is sent as it is), a post with an image as `sendPhoto` with the text as its caption when the text
fits a caption (1024), else as a message whose link preview shows the page. The Bot API cannot read a
chat's history, so this plugin cannot look posts up after a crash: the campaign's `on_unknown` decides.
"""

from __future__ import annotations

import html
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import ClassVar, Literal, cast

from pydantic import Field, SecretStr
from telegram import Bot, LinkPreviewOptions, Message
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.request import HTTPXRequest

from drainage.channel import Channel, ChannelOptions, Limits, Post, Publish, Receipt
from drainage.errors import AuthError, ChannelError, PermanentError, RateLimited, TransientError

CAPTION_LIMIT = 1024
"""Longest photo caption Telegram accepts (after entity parsing); longer posts go out as messages."""


class TelegramOptions(ChannelOptions):
    """Options of a telegram channel instance."""

    type: Literal["telegram"] = Field(default="telegram", description="Posts through a Telegram bot.")
    token: SecretStr = Field(description="The bot token from @BotFather, e.g. '${TELEGRAM_TOKEN}'.")
    chat_id: str = Field(description="'@channelname' of a public channel, or the numeric id of a group or "
                                     "private channel, e.g. '-1001234567890'.")
    link_preview: bool = Field(default=True, description="Show a preview of the first link under text posts.")
    silent: bool = Field(default=False, description="Send without a notification sound.")
    photos: bool = Field(default=True, description="Post an item's image as a photo with the text as caption.")
    base_url: str = Field(default="https://api.telegram.org/bot",
                          description="Bot API address the token is appended to (a local Bot API server).")
    timeout: float = Field(default=20, gt=0, le=300, description="Seconds to wait for the Bot API.")


class TelegramChannel(Channel):
    """Sends each post as one Telegram message; errors mapped to the daemon's retry/fail/pause states."""

    type = "telegram"
    Options: ClassVar[type[ChannelOptions]] = TelegramOptions
    limits = Limits(max_length=4096, counting="utf16", media=True)
    default_rate_limit = "20/minute"  # Telegram allows about 20 messages a minute in one group

    @property
    def opts(self) -> TelegramOptions:
        return cast(TelegramOptions, self.options)

    def _bot(self) -> Bot:
        timeout = self.opts.timeout
        request = HTTPXRequest(connection_pool_size=2, read_timeout=timeout, write_timeout=timeout,
                               connect_timeout=timeout, pool_timeout=timeout, media_write_timeout=timeout)
        return Bot(self.opts.token.get_secret_value(), base_url=self.opts.base_url, request=request)

    async def send(self, post: Post) -> Receipt:
        async with self.prepare(post) as publish:
            return await publish()

    @asynccontextmanager
    async def prepare(self, post: Post) -> AsyncIterator[Publish]:
        """Build the bot and check its token (getMe) first: only the sendMessage/sendPhoto call publishes.

        One bot per send: each send may run in a different event loop (the CLI, the daemon), and the bot's
        connection pool belongs to one loop. `async with` calls getMe and closes the pool.
        """

        try:
            async with self._bot() as bot:
                async def publish() -> Receipt:
                    message = await self._deliver(bot, post)
                    return Receipt(remote_id=f"{message.chat.id}:{message.message_id}",
                                   url=self._public_url(message))

                yield publish
        except TelegramError as exc:
            raise self._map(exc) from None

    async def _deliver(self, bot: Bot, post: Post) -> Message:
        text = post.html if post.html is not None else html.escape(post.text, quote=False)
        common = {"chat_id": self.opts.chat_id, "parse_mode": ParseMode.HTML,
                  "disable_notification": self.opts.silent}
        if post.image_url and self.opts.photos and self.limits.count(post.text) <= CAPTION_LIMIT:
            return await bot.send_photo(photo=post.image_url, caption=text, **common)
        preview = LinkPreviewOptions(is_disabled=not self.opts.link_preview)
        return await bot.send_message(text=text, link_preview_options=preview, **common)

    def _map(self, exc: TelegramError) -> ChannelError:
        """Telegram's errors as delivery states. `BadRequest` is a `NetworkError`: check it first."""
        if isinstance(exc, InvalidToken):  # its message can carry the token: never pass it on
            return AuthError("Telegram rejected the bot token (revoked or mistyped); get a valid one from "
                             "@BotFather")
        message = self._safe(exc.message)
        if isinstance(exc, RetryAfter):
            wait = exc.retry_after  # an int of seconds, or a timedelta with PTB_TIMEDELTA=true
            seconds = wait.total_seconds() if isinstance(wait, timedelta) else float(wait)
            return RateLimited(f"Telegram flood control: retry in {seconds:g} s", retry_after=seconds)
        if isinstance(exc, ChatMigrated):  # a group upgraded to a supergroup has a new id
            return PermanentError(f"chat {self.opts.chat_id} is now a supergroup: set chat_id: "
                                  f"'{exc.new_chat_id}'")
        if isinstance(exc, BadRequest | Forbidden):  # chat not found, bot kicked, not an admin, bad HTML
            return PermanentError(f"Telegram refused the message for chat {self.opts.chat_id}: {message}")
        if isinstance(exc, NetworkError):  # TimedOut, connection errors, 5xx
            return TransientError(f"Telegram unreachable or failing: {exc.__class__.__name__}: {message}")
        return TransientError(f"Telegram error: {exc.__class__.__name__}: {message}")

    def _safe(self, text: str) -> str:
        token = self.opts.token.get_secret_value()
        return text.replace(token, "***") if token else text

    def _public_url(self, message: Message) -> str | None:
        if message.chat.username:
            return f"https://t.me/{message.chat.username}/{message.message_id}"
        chat = str(message.chat.id)
        if chat.startswith("-100"):  # supergroups and channels: a link members can open
            return f"https://t.me/c/{chat[4:]}/{message.message_id}"
        return None
