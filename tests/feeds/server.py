"""A real HTTP server on 127.0.0.1 serving feed documents, with ETag / Last-Modified / 304 and faults on demand.

Each path serves one document (swap it with `serve` to simulate the store publishing something); the ETag is
the document's hash and Last-Modified moves forward with each new version, so conditional GETs behave as a
real store's would. `fail` makes a path answer an HTTP error, `delay` makes it slow (for timeouts), `hold`
makes it wait until the test lets it answer. Every request is recorded with its headers.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

FEEDS = Path(__file__).resolve().parent.parent / "data" / "feeds"


@dataclass
class Route:
    body: bytes
    content_type: str
    etag: str | None
    last_modified: datetime | None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    held: threading.Event | None = None  # set: answer; unset: the request waits (at most a minute)


@dataclass
class Seen:
    """One request the server received."""

    path: str
    headers: dict[str, str]
    status: int


class FeedServer:
    """Serves documents by path; see the module docstring."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[Seen] = []
        self._version = 0
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None

    @property
    def base(self) -> str:
        assert self._httpd is not None
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, path: str) -> str:
        return self.base + path

    def serve(self, path: str, document: str | bytes, *, content_type: str | None = None, etag: bool = True,
              last_modified: bool = True) -> str:
        """Serve a fixture file name (under tests/data/feeds) or raw bytes at `path`; returns its URL."""
        body = document if isinstance(document, bytes) else (FEEDS / document).read_bytes()
        if content_type is None:
            name = "" if isinstance(document, bytes) else document
            content_type = ("application/atom+xml; charset=utf-8" if name.endswith(".atom") else
                            "text/html; charset=utf-8" if name.endswith(".html") else
                            "application/rss+xml; charset=UTF-8")
        with self._lock:
            self._version += 1
            stamp = datetime(2026, 3, 1, tzinfo=UTC) + timedelta(minutes=self._version)
            self.routes[path] = Route(body, content_type,
                                      f'"{hashlib.sha256(body).hexdigest()[:16]}"' if etag else None,
                                      stamp if last_modified else None)
        return self.url(path)

    def fail(self, path: str, status: int, headers: dict[str, str] | None = None) -> None:
        """Answer `status` at `path` (until `heal`), keeping the document for later."""
        route = self.routes.setdefault(path, Route(b"", "text/plain", None, None))
        route.status, route.headers = status, headers or {}

    def heal(self, path: str) -> None:
        route = self.routes[path]
        route.status, route.headers, route.delay = 200, {}, 0.0

    def delay(self, path: str, seconds: float) -> None:
        self.routes[path].delay = seconds

    def hold(self, path: str) -> threading.Event:
        """Make requests to `path` wait until the returned event is set (or a minute passes)."""
        self.routes[path].held = threading.Event()
        return self.routes[path].held

    def statuses(self, path: str) -> list[int]:
        return [r.status for r in self.requests if r.path == path]

    @contextmanager
    def running(self) -> Iterator[FeedServer]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                route = server.routes.get(self.path)
                status = 404 if route is None else route.status
                if route is not None and route.delay:
                    time.sleep(route.delay)
                if route is not None and route.held is not None:
                    route.held.wait(60)
                if route is not None and status == 200 and _not_modified(route, self.headers):
                    status = 304
                server.requests.append(Seen(self.path, {k.lower(): v for k, v in self.headers.items()}, status))
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # a client that timed out
                    self._answer(route, status)

            def _answer(self, route: Route | None, status: int) -> None:
                self.send_response(status)
                if route is not None and status in (200, 304):
                    if route.etag:
                        self.send_header("ETag", route.etag)
                    if route.last_modified:
                        self.send_header("Last-Modified", format_datetime(route.last_modified, usegmt=True))
                for name, value in (route.headers if route else {}).items():
                    self.send_header(name, value)
                body = route.body if route is not None and status == 200 else (
                    b"" if status == 304 else f"error {status}".encode())
                if status != 304:
                    self.send_header("Content-Type", route.content_type if route and status == 200 else "text/plain")
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 1024  # hundreds of feeds are polled at once in the corpus test

            def handle_error(self, request: object, client_address: object) -> None:
                pass  # a client that hung up mid-answer is part of the timeout tests

        self._httpd = Server(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="feed-server",
                                  daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._httpd.shutdown()
            self._httpd.server_close()
            thread.join(timeout=5)


def _not_modified(route: Route, headers: object) -> bool:
    match = headers.get("If-None-Match")  # type: ignore[attr-defined]
    if match is not None:
        return route.etag is not None and route.etag in [m.strip() for m in match.split(",")]
    since = headers.get("If-Modified-Since")  # type: ignore[attr-defined]
    if since and route.last_modified is not None:
        try:
            return route.last_modified <= parsedate_to_datetime(since)
        except (TypeError, ValueError):
            return False
    return False
