"""The `indexnow` channel: tells search engines (Bing, Yandex, Seznam, Naver, Yep...) about new and changed store
URLs at once, through the IndexNow protocol, instead of waiting for their crawlers.

A channel of kind `search`: it posts no text and no tracked link. The store URLs themselves (campaigns' items,
store feeds' entries) reach it in batches from `drainage.indexnow`, which remembers what was submitted and
never submits an unchanged URL twice; each batch is one `POST {endpoint}/indexnow` with a JSON body
`{host, key, keyLocation, urlList}` (at most 10,000 URLs, all of one host).

The key proves the host is the store's: the store serves it as a text file, `https://{host}/{key}.txt` (or
at `key_location`, on the same host). The answers, as the protocol defines them: 200/202 accepted; 400 bad
request; 403 the key is not valid (the key file is missing or does not match); 422 the URLs are not of the
host, or the key does not match the protocol's rules; 429 too many requests.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, Literal, cast
from urllib.parse import urlsplit

import httpx
from pydantic import Field, SecretStr, field_validator

from drainage.channel import Channel, ChannelOptions, Limits, Post, Receipt
from drainage.errors import AuthError, ChannelError, PermanentError, RateLimited, TransientError

ENDPOINT = "https://api.indexnow.org"
MAX_URLS = 10_000
KEY_FORMAT = re.compile(r"[a-zA-Z0-9-]{8,128}")


class IndexNowOptions(ChannelOptions):
    """Options of an indexnow channel instance."""

    type: Literal["indexnow"] = Field(default="indexnow", description="Submits new and changed store URLs to "
                                                                      "search engines (IndexNow).")
    key: SecretStr = Field(description="The IndexNow key (8 to 128 of a-z, A-Z, 0-9 and '-'), e.g. "
                                       "'${INDEXNOW_KEY}'; the store serves it at https://{host}/{key}.txt.")
    key_location: str | None = Field(default=None, description="Where the store serves the key file, when not "
                                                               "at the root (a URL on the store's host).")
    endpoint: str = Field(default=ENDPOINT, description="The IndexNow endpoint (api.indexnow.org shares with "
                                                        "every engine; or e.g. https://www.bing.com).")
    campaigns: list[str] | None = Field(default=None, description="Submit the URLs of these campaigns only "
                                                                  "(default: every active campaign).")
    batch_size: int = Field(default=MAX_URLS, ge=1, le=MAX_URLS, description="Most URLs in one submission.")
    timeout: float = Field(default=30, gt=0, le=300, description="Seconds to wait for the endpoint.")

    @field_validator("key")
    @classmethod
    def _key_format(cls, key: SecretStr) -> SecretStr:
        if not KEY_FORMAT.fullmatch(key.get_secret_value()):
            raise ValueError("an IndexNow key is 8 to 128 characters of a-z, A-Z, 0-9 and '-'")
        return key


class IndexNowChannel(Channel):
    """Submits one batch of store URLs (`post.links`, all of one host) per delivery."""

    type = "indexnow"
    kind = "search"
    Options: ClassVar[type[ChannelOptions]] = IndexNowOptions
    limits = Limits()

    @property
    def opts(self) -> IndexNowOptions:
        return cast(IndexNowOptions, self.options)

    @property
    def batch_size(self) -> int:
        return self.opts.batch_size

    @property
    def campaigns(self) -> list[str] | None:
        return self.opts.campaigns

    async def send(self, post: Post) -> Receipt:
        urls = post.links
        hosts = {urlsplit(url).hostname for url in urls}
        if not urls or len(hosts) != 1 or len(urls) > MAX_URLS:
            raise PermanentError(f"IndexNow takes 1 to {MAX_URLS} URLs of one host at a time, not {len(urls)} "
                                 f"URLs of {len(hosts)} hosts")
        body: dict[str, Any] = {"host": hosts.pop(), "key": self.opts.key.get_secret_value(), "urlList": urls}
        if self.opts.key_location:
            body["keyLocation"] = self.opts.key_location
        url = self.opts.endpoint.rstrip("/") + "/indexnow"
        try:
            async with httpx.AsyncClient(timeout=self.opts.timeout, follow_redirects=True) as http:
                response = await http.post(url, json=body)
        except httpx.TimeoutException:
            raise TransientError(f"IndexNow did not answer in time ({url})") from None
        except httpx.HTTPError as exc:
            raise TransientError(f"IndexNow unreachable: {exc.__class__.__name__} ({url})") from None
        if response.status_code in (200, 202):
            return Receipt(remote_id=f"{len(urls)} URLs ({response.status_code})")
        raise _map(response, self.opts)


def _map(response: httpx.Response, opts: IndexNowOptions) -> ChannelError:
    """The protocol's answers as delivery states (the endpoint's own text, which never echoes the key)."""
    status = response.status_code
    said = _said(response, opts.key.get_secret_value())
    text = f"IndexNow HTTP {status}" + (f": {said}" if said else "")
    if status == 429:
        wait = response.headers.get("retry-after", "")
        return RateLimited(f"{text} (too many requests)", retry_after=float(wait) if wait.isdigit() else None)
    if status == 403:
        where = opts.key_location or "https://{host}/{key}.txt"
        return AuthError(f"{text} (the key is not valid: the store must serve it at {where})")
    if status == 422:
        return PermanentError(f"{text} (URLs not of the host, or the key does not match the protocol)")
    if status == 400:
        return PermanentError(f"{text} (bad request)")
    if status >= 500:
        return TransientError(text)
    return PermanentError(text)


def _said(response: httpx.Response, key: str) -> str:
    """A short form of the endpoint's answer, without the key should it echo it."""
    try:
        data = response.json()
    except ValueError:
        data = None
    if isinstance(data, dict):
        text = str(data.get("message") or data.get("error") or data.get("title") or "")
    else:
        text = "" if "<" in response.text[:200] else response.text.strip()
    return text[:300].replace(key, "***")
