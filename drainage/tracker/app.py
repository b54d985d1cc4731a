"""The tracker's ASGI application.

`/c/{code}` is answered by a few lines of plain ASGI (it is the hot path: every millisecond there costs
conversions); everything else (`/hooks/order`, `/healthz`, `/metrics`, and the routes other features add) goes
through Starlette. The redirect target is always the stored one: nothing in the request can choose it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from drainage.config import LoadedConfig
from drainage.email.web import email_routes
from drainage.links import CODE_LENGTH
from drainage.logs import event
from drainage.reports.web import ReportsPage
from drainage.schedule import parse_duration
from drainage.store.retention import prune_raw_clicks
from drainage.tracker.bio import BioPages
from drainage.tracker.clickids import ClickIds
from drainage.tracker.linkcache import LinkCache
from drainage.tracker.metrics import TrackerMetrics
from drainage.tracker.orders import READERS, BadOrder, attribute, store, verify_base64, verify_generic
from drainage.tracker.pages import not_found_page
from drainage.tracker.recorder import ClickRecorder
from drainage.tracker.supervisor import STOP_LIMIT
from drainage.tracker.visitors import visitor_key

MAX_TARGET_LINE = 2048
"""Longest path + query accepted on /c/ (414 beyond)."""
MAX_HEADER_BYTES = 8192
"""Largest total of request headers accepted on /c/ (431 beyond)."""
MAX_ORDER_BYTES = 1 << 20
"""Largest order webhook body (413 beyond)."""
PRUNE_DELAY, PRUNE_EVERY = 60.0, 3600.0
"""Seconds after start of the first prune of raw clicks (when tracker.keep_raw_clicks is set), and between two."""

_CODE = re.compile(rf"[a-z2-7]{{{CODE_LENGTH}}}")
_NO_STORE = (b"cache-control", b"no-store, private")
_REFERRER_POLICY = (b"referrer-policy", b"no-referrer-when-downgrade")
_EMPTY = (b"content-length", b"0")
_EMPTY_BODY = {"type": "http.response.body", "body": b""}
_SIGNATURE_HEADERS = {"shopify": "x-shopify-hmac-sha256", "woocommerce": "x-wc-webhook-signature"}


class Tracker:
    """The redirect service for one config and database. Call it as an ASGI app."""

    def __init__(self, config: LoadedConfig, engine: Engine, extra_routes: Sequence[BaseRoute] = ()) -> None:
        cfg = config.config.tracker
        self.config = config
        self.engine = engine
        self.click_param = cfg.click_param
        self.store_name = config.config.store.name
        self.home = config.config.store.base_url
        self.metrics = TrackerMetrics()
        self.links = LinkCache(engine)
        self.recorder = ClickRecorder(engine, self.metrics, flush_every=parse_duration(cfg.flush_every).total_seconds(),
                                      batch_size=cfg.batch_size, max_pending=cfg.max_pending,
                                      in_process=cfg.writer == "process")
        self.order_secret = (cfg.order_secret.get_secret_value() if cfg.order_secret else "") or None
        self.replay_window = parse_duration(cfg.replay_window).total_seconds()
        self._configured_key = (cfg.visitor_key.get_secret_value() if cfg.visitor_key else "") or None
        reports_token = (cfg.reports_token.get_secret_value() if cfg.reports_token else "") or None
        self.keep_raw_clicks = parse_duration(cfg.keep_raw_clicks) if cfg.keep_raw_clicks else None
        self.prune_delay, self.prune_every = PRUNE_DELAY, PRUNE_EVERY
        self.stop_limit = STOP_LIMIT
        self._pruner: asyncio.Task[None] | None = None
        self._click_ids = ClickIds()
        self._not_found = not_found_page(self.store_name, self.home)
        self._counts = self.metrics.redirects
        self._cached = self.links.cached  # bound once: the redirect path calls them per click
        self._next_click_id = self._click_ids.next
        self.bio = BioPages(config, engine, self.metrics.registry)
        routes: list[BaseRoute] = [
            Route("/healthz", self.healthz, methods=["GET", "HEAD"]),
            Route("/metrics", self.metrics_page, methods=["GET"]),
            Route("/hooks/order", self.order_hook, methods=["POST"]),
            Route("/hooks/order/{platform}", self.order_hook, methods=["POST"]),
            Route("/reports", ReportsPage(engine, reports_token).respond, methods=["GET"]),
            Route("/l/{page}", self.bio.respond, methods=["GET", "HEAD"]),
            *email_routes(config, engine, self.replay_window),
            *extra_routes,
        ]
        self.web = Starlette(routes=routes, lifespan=self._lifespan, exception_handlers={404: self._not_found_page})

    @asynccontextmanager
    async def _lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        await self.startup()
        try:
            yield
        finally:
            await self.shutdown()

    async def startup(self) -> None:
        """Load the visitor key and start the click writer (which hashes the visitors with it)."""
        await self.recorder.start(await asyncio.to_thread(visitor_key, self.engine, self._configured_key))
        if self.keep_raw_clicks is not None:
            self._pruner = asyncio.create_task(self._prune_raw_clicks(self.keep_raw_clicks), name="click-pruner")
        event("tracker.started", public_url=self.config.config.tracker.public_url)

    async def shutdown(self) -> None:
        """Write every buffered click (SIGTERM ends here through the server's lifespan)."""
        if self._pruner is not None:
            self._pruner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pruner
        await self.recorder.stop(self.stop_limit)
        event("tracker.stopped", clicks_written=self.recorder.written)

    async def _prune_raw_clicks(self, keep: timedelta) -> None:
        """Every `prune_every`, delete raw clicks older than tracker.keep_raw_clicks (rollups stay)."""
        await asyncio.sleep(self.prune_delay)
        while True:
            try:
                pruned = await asyncio.to_thread(prune_raw_clicks, self.engine, keep)
            except Exception as exc:  # the database may be away for a while: try again next time
                event("tracker.prune_failed", logging.ERROR, error=f"{exc.__class__.__name__}: {exc}"[:300])
            else:
                if pruned.clicks or pruned.visitor_days:
                    event("tracker.pruned", clicks=pruned.clicks, visitor_days=pruned.visitor_days,
                          before=pruned.before)
            await asyncio.sleep(self.prune_every)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/c/"):
            await self.redirect(scope, send)
        else:
            await self.web(scope, receive, send)

    # -- the hot path ------------------------------------------------------------------------------------------
    async def redirect(self, scope: Scope, send: Send) -> None:
        """302 to the stored target plus a click id; the click goes to the batch writer."""
        method = scope["method"]
        if method not in ("GET", "HEAD"):
            await _answer(send, 405, [(b"allow", b"GET, HEAD")])
            return
        if len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"") > MAX_TARGET_LINE:
            await _answer(send, 414)
            return
        agent = referer = b""
        size = 0
        for name, value in scope["headers"]:  # one pass: the size bound and the two headers the click keeps
            size += len(name) + len(value)
            if name == b"user-agent":
                agent = value
            elif name == b"referer":
                referer = value
        if size > MAX_HEADER_BYTES:
            await _answer(send, 431)
            return
        code = scope["path"][3:]
        target = self._cached(code)
        if target is None and _CODE.fullmatch(code):
            target = await self.links.lookup(code)
        if target is None:
            self._counts.not_found += 1
            body = b"" if method == "HEAD" else self._not_found
            await _answer(send, 404, [(b"content-type", b"text/html; charset=utf-8")], body,
                          length=len(self._not_found))
            return
        now = time.time()
        client = scope.get("client")
        click_id = self._next_click_id(now)
        self.recorder.add((click_id, code, now, client[0] if client else "", agent[:512].decode("latin-1"), method,
                           referer[:1024].decode("latin-1")))  # a PendingClick's fields
        self._counts.redirect += 1
        location = target.with_param(self.click_param, click_id).encode("ascii")
        await send({"type": "http.response.start", "status": 302,
                    "headers": [(b"location", location), _REFERRER_POLICY, _NO_STORE, _EMPTY]})
        await send(_EMPTY_BODY)

    # -- Starlette routes --------------------------------------------------------------------------------------
    async def _not_found_page(self, request: Request, _exc: Exception) -> Response:
        body = b"" if request.method == "HEAD" else self._not_found
        return Response(body, status_code=404, media_type="text/html; charset=utf-8",
                        headers={"cache-control": "no-store, private"})

    async def healthz(self, _request: Request) -> Response:
        return JSONResponse({"status": "ok", "queued_clicks": self.recorder.depth,
                             "clicks_written": self.recorder.written}, headers={"cache-control": "no-store"})

    async def metrics_page(self, _request: Request) -> Response:
        return Response(generate_latest(self.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def order_hook(self, request: Request) -> Response:
        """Take an order from the store: verify, read, attribute, store once."""
        platform = request.path_params.get("platform", "generic")
        if platform not in READERS:
            return self._order_result("unknown_platform", 404, "unknown order webhook; use /hooks/order, "
                                      "/hooks/order/shopify or /hooks/order/woocommerce")
        if not self.order_secret:
            return self._order_result("not_configured", 503, "order webhooks are off: set tracker.order_secret")
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > MAX_ORDER_BYTES):
            return self._order_result("too_large", 413, "body too large")
        body = await read_limited(request, MAX_ORDER_BYTES)
        if body is None:  # chunked, or a length that lied: read no further than the limit
            return self._order_result("too_large", 413, "body too large")
        if platform == "generic":
            problem = verify_generic(self.order_secret, body, request.headers.get("x-drainage-signature"),
                                     time.time(), self.replay_window)
        else:
            problem = verify_base64(self.order_secret, body, request.headers.get(_SIGNATURE_HEADERS[platform]))
        if problem is not None:
            return self._order_result("unauthorized", 401, problem)
        try:
            data = json.loads(body)
            if not isinstance(data, dict):
                raise BadOrder("expected a JSON object")
            incoming = READERS[platform](data, self.click_param)
        except BadOrder as exc:
            return self._order_result("invalid", 422, str(exc))
        except (ValueError, RecursionError):  # not JSON, or nested deeper than the parser goes
            return self._order_result("invalid", 422, "body is not valid JSON")
        except (TypeError, AttributeError, KeyError, OverflowError):  # a field of an unexpected shape
            return self._order_result("invalid", 422, "body is not an order drainage can read")
        if incoming.click_id:
            await self.recorder.flush()  # the click may still be in memory
        order = await asyncio.to_thread(attribute, self.engine, incoming)
        created = await asyncio.to_thread(store, self.engine, order)
        result = "stored" if created else "duplicate"
        self.metrics.orders.labels(result=result).inc()
        event("tracker.order", order_id=order.order_id, result=result, attributed_by=order.attributed_by,
              campaign=order.campaign, channel=order.channel)
        return JSONResponse({"order_id": order.order_id, "result": result, "attributed_by": order.attributed_by,
                             "campaign": order.campaign, "channel": order.channel, "variant": order.variant},
                            status_code=201 if created else 200)

    def _order_result(self, result: str, status: int, message: str) -> Response:
        self.metrics.orders.labels(result=result).inc()
        return JSONResponse({"error": message}, status_code=status)


async def read_limited(request: Request, limit: int) -> bytes | None:
    """The request body, or None as soon as it grows past `limit` bytes (the rest is never read)."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


async def _answer(send: Send, status: int, headers: list[tuple[bytes, bytes]] | None = None, body: bytes = b"",
                  length: int | None = None) -> None:
    all_headers: list[Any] = [*(headers or []), _NO_STORE,
                              (b"content-length", str(len(body) if length is None else length).encode())]
    await send({"type": "http.response.start", "status": status, "headers": all_headers})
    await send({"type": "http.response.body", "body": body})
