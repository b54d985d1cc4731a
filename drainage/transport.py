"""A requests transport adapter for client libraries that hard-code their API host (tweepy, facebook-sdk).

Mounted on the library's own `requests.Session`, it gives every request a timeout when the library passes
none (tweepy's v2 `Client` never does), and can send the requests of a hard-coded host to another base URL:
a local test server, or an egress proxy. Routing rewrites only the request's address; the library signs
and sends the request exactly as it would to the real host.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from requests.utils import should_bypass_proxies


class RoutedAdapter(HTTPAdapter):
    """Sends requests whose URL starts with `prefix` to `target` instead, with a default timeout."""

    def __init__(self, prefix: str, target: str | None = None, timeout: float = 30.0) -> None:
        super().__init__()
        self.prefix = prefix.rstrip("/") + "/"
        self.target = (target.rstrip("/") + "/") if target else None
        self.timeout = timeout

    def send(self, request: requests.PreparedRequest, stream: bool = False, timeout: Any = None,
             verify: bool | str = True, cert: Any = None, proxies: Mapping[str, str] | None = None
             ) -> requests.Response:
        if self.target and request.url and request.url.startswith(self.prefix):
            request.url = self.target + request.url[len(self.prefix):]
            if should_bypass_proxies(request.url, no_proxy=None):  # proxies were chosen for the original host
                proxies = {}
        return super().send(request, stream=stream, timeout=timeout if timeout is not None else self.timeout,
                            verify=verify, cert=cert, proxies=proxies)


def route(session: requests.Session, default_base: str, base: str | None, timeout: float) -> None:
    """Mount a `RoutedAdapter` on `session` for `default_base`, sending it to `base` when that differs."""
    target = base if base and base.rstrip("/") != default_base.rstrip("/") else None
    session.mount(default_base.rstrip("/") + "/", RoutedAdapter(default_base, target, timeout))
