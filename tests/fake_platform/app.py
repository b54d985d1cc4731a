"""The fake platform: the parts of the Telegram Bot API, X API v2 (+ v1.1 media upload), Graph API and Discourse
API that drainage's channel plugins call, answering as the real platforms do, including their errors.

Every request is recorded. Requests that create something first take the next injected `Fault` of their
platform (`telegram`, `x`, `x-upload`, `facebook`, `discourse`) if there is one. A revoked credential is
refused on every request, as the platform does.
"""

from __future__ import annotations

import asyncio
import html
import re
import time
from collections.abc import Callable
from datetime import datetime
from html.parser import HTMLParser
from typing import Any
from urllib.parse import unquote

from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from tests.fake_platform import bluesky, indexnow, instagram, mastodon, pinterest, reddit
from tests.fake_platform.state import FakeState, Fault, Recorded

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")
"""A valid 1x1 PNG, served at /img/<name>."""

TELEGRAM_TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler", "a", "code",
                 "pre", "blockquote", "tg-emoji"}
X_USER_ID = "4242"
URL = re.compile(r"https?://\S+")
BARE_AMPERSAND = re.compile(r"&(?!(?:lt|gt|amp|quot|#\d+|#x[0-9a-fA-F]+);)")


def create_app(state: FakeState) -> Starlette:
    """The Starlette app of the fake platform, bound to `state`."""

    async def record(request: Request, platform: str) -> Recorded:
        entry = Recorded(platform, request.method, request.url.path, dict(request.query_params),
                         {k.lower(): v for k, v in request.headers.items()})
        kind = request.headers.get("content-type", "")
        if "json" in kind:
            entry.json = await request.json()
        elif "form" in kind:
            async with request.form() as form:
                for name, value in form.multi_items():
                    if isinstance(value, UploadFile):
                        entry.files[name] = (value.filename or "", value.content_type or "", await value.read())
                    else:
                        entry.form[name] = str(value)
        state.record(entry)
        return entry

    async def create(platform: str, accept: Callable[[], Response]) -> Response:
        fault = state.next_fault(platform)
        if fault is None:
            return accept()
        if fault.commit:  # processed, but the answer is lost on the way
            accept()
        if fault.delay:
            await asyncio.sleep(fault.delay)
        return fault_response(fault)

    # -- Telegram Bot API ----------------------------------------------------------------------------------
    async def telegram(request: Request) -> Response:
        token, method = request.path_params["token"], request.path_params["method"]
        entry = await record(request, "telegram")
        if state.is_revoked(token):
            return tg_error(401, "Unauthorized")
        await state.slow(f"telegram:{method}")
        if method == "getMe":
            return JSONResponse({"ok": True, "result": {"id": 7, "is_bot": True, "first_name": "Fake shop bot",
                                                        "username": "fake_shop_bot"}})
        if method in ("sendMessage", "sendPhoto"):
            return await create("telegram", lambda: tg_send(method, entry.form))
        return tg_error(404, "Not Found")

    def tg_send(method: str, form: dict[str, str]) -> Response:
        chat_id = form.get("chat_id", "")
        text = form.get("text") if method == "sendMessage" else form.get("caption")
        text = text or ""
        if form.get("parse_mode") == "HTML":
            problem = telegram_html_problem(text)
            if problem:
                return tg_error(400, f"Bad Request: can't parse entities: {problem}")
        if chat_id.startswith("@"):
            chat = {"id": -1001234567890, "type": "channel", "title": "Channel", "username": chat_id[1:]}
        else:
            chat = {"id": int(chat_id), "type": "supergroup", "title": "Group"}
        shown = html.unescape(re.sub(r"<[^>]+>", "", text)) if form.get("parse_mode") == "HTML" else text
        post = state.publish("telegram", {"method": method, "chat_id": chat_id, "text": text, "shown": shown,
                                          "photo": form.get("photo"), "form": form})
        message: dict[str, Any] = {"message_id": post["id"], "date": int(state.now()), "chat": chat}
        if method == "sendPhoto":
            message.update(caption=text, photo=[{"file_id": "F1", "file_unique_id": "U1", "width": 1, "height": 1}])
        else:
            message["text"] = text
        return JSONResponse({"ok": True, "result": message})

    # -- X API v2 and v1.1 media upload ----------------------------------------------------------------------
    async def x_tweets(request: Request) -> Response:
        entry = await record(request, "x")
        if state.is_revoked(*x_credentials(entry.headers)):
            return x_problem(401, "Unauthorized", "Unauthorized")
        body = entry.json or {}

        def accept() -> Response:
            text = body.get("text", "")
            if state.find("x", text=text) is not None:
                return x_problem(403, "Forbidden", "You are not allowed to create a Tweet with duplicate content.")
            media = body.get("media", {}).get("media_ids", [])
            post = state.publish("x", {"text": text, "media_ids": media, "created": state.now()})
            return JSONResponse({"data": {"id": str(post["id"]), "text": text,
                                          "edit_history_tweet_ids": [str(post["id"])]}}, 201)

        return await create("x", accept)

    async def x_me(request: Request) -> Response:
        entry = await record(request, "x")
        if state.is_revoked(*x_credentials(entry.headers)):
            return x_problem(401, "Unauthorized", "Unauthorized")
        return JSONResponse({"data": {"id": X_USER_ID, "name": "Northwind", "username": "northwind"}})

    async def x_timeline(request: Request) -> Response:
        """The account's posts as X shows them: links rewritten to t.co, `&<>` escaped, a t.co link appended
        for media; newest first, since `start_time`. Answers 403 as the Free tier does when `state.x_can_read`
        is false."""
        entry = await record(request, "x")
        if state.is_revoked(*x_credentials(entry.headers)):
            return x_problem(401, "Unauthorized", "Unauthorized")
        if not state.x_can_read or request.path_params["user"] != X_USER_ID:
            return JSONResponse({"title": "Client Forbidden", "type": "https://api.twitter.com/2/problems/"
                                 "client-forbidden", "reason": "client-not-enrolled", "detail": "When authenticating "
                                 "requests to the Twitter API v2 endpoints, you must use keys and tokens from a "
                                 "Twitter developer App that is attached to a Project."}, 403)
        since = entry.query.get("start_time")
        start = datetime.fromisoformat(since.replace("Z", "+00:00")).timestamp() if since else 0.0
        shown = []
        for post in reversed(state.posts("x")):
            if post["created"] < start:
                continue
            text = html.escape(URL.sub(f"https://t.co/{post['id']:010d}", post["text"]), quote=False)
            if post["media_ids"]:
                text += f" https://t.co/m{post['id']:09d}"
            shown.append({"id": str(post["id"]), "text": text, "edit_history_tweet_ids": [str(post["id"])]})
        return JSONResponse({"data": shown[:int(entry.query.get("max_results", 10))],
                             "meta": {"result_count": len(shown)}} if shown else {"meta": {"result_count": 0}})

    async def x_media(request: Request) -> Response:
        entry = await record(request, "x-upload")
        if state.is_revoked(*x_credentials(entry.headers)):
            return JSONResponse({"errors": [{"code": 89, "message": "Invalid or expired token."}]}, 401)

        def accept() -> Response:
            name, _, content = entry.files["media"]
            media = state.publish("x-upload", {"filename": name, "size": len(content), "content": content})
            return JSONResponse({"media_id": media["id"], "media_id_string": str(media["id"]), "size": len(content),
                                 "expires_after_secs": 86400, "image": {"image_type": "image/png", "w": 1, "h": 1}})

        return await create("x-upload", accept)

    # -- Graph API -----------------------------------------------------------------------------------------
    async def graph(request: Request) -> Response:
        node, edge = request.path_params["node"], request.path_params["edge"]
        entry = await record(request, "facebook")
        args = {**entry.query, **entry.form}
        if state.is_revoked(args.get("access_token")):
            return graph_error(190, "Error validating access token: The session has been invalidated because "
                                    "the user changed their password or Facebook has changed the session for "
                                    "security reasons.", subcode=460)
        if request.method == "POST" and edge in ("feed", "photos"):
            return await create("facebook", lambda: graph_publish(node, edge, args))
        if request.method == "GET" and edge == "posts":
            since = float(args.get("since", 0))
            found = [{"id": p["post_id"], "message": p["message"], "created_time": p["created_time"]}
                     for p in reversed(state.posts("facebook")) if p["page"] == node and p["created"] >= since]
            return JSONResponse({"data": found})
        return graph_error(100, f"Unknown path components: /{edge}")

    def graph_publish(page: str, edge: str, args: dict[str, str]) -> Response:
        message = args.get("message") if edge == "feed" else args.get("caption")
        if edge == "feed" and state.find("facebook", page=page, message=message) is not None:
            return graph_error(506, "(#506) Duplicate status message")
        now = state.now()
        post = state.publish("facebook", {"page": page, "edge": edge, "message": message, "link": args.get("link"),
                                          "url": args.get("url"), "created": now,
                                          "created_time": time.strftime("%Y-%m-%dT%H:%M:%S+0000", time.gmtime(now))})
        post["post_id"] = f"{page}_{post['id']}"
        if edge == "photos":
            return JSONResponse({"id": str(post["id"] + 5000), "post_id": post["post_id"]})
        return JSONResponse({"id": post["post_id"]})

    # -- Discourse -----------------------------------------------------------------------------------------
    async def discourse_posts(request: Request) -> Response:
        entry = await record(request, "discourse")
        if not entry.headers.get("api-key") or state.is_revoked(entry.headers.get("api-key")):
            return discourse_error(403, "You are not permitted to view the requested resource. The API username "
                                        "or key is invalid.", "invalid_access")
        body = entry.json if isinstance(entry.json, dict) else entry.form
        return await create("discourse", lambda: discourse_publish(body, entry.headers.get("api-username", "")))

    def discourse_publish(body: dict[str, Any], user: str) -> Response:
        raw = body.get("raw", "")
        if len(raw.strip()) < 20:
            return discourse_error(422, "Body is too short (minimum is 20 characters)")
        if body.get("topic_id") is not None:
            topic = state.find("discourse", topic_id=int(body["topic_id"]), post_number=1)
            if topic is None:
                return discourse_error(404, "The requested URL or resource could not be found.", "not_found")
            replies = [p for p in state.posts("discourse") if p["topic_id"] == topic["topic_id"]]
            post = state.publish("discourse", {"raw": raw, "topic_id": topic["topic_id"], "slug": topic["slug"],
                                               "post_number": len(replies) + 1, "username": user})
        else:
            title = body.get("title", "")
            if len(title) < 15:
                return discourse_error(422, "Title is too short (minimum is 15 characters)")
            if body.get("external_id") and state.find("discourse", external_id=body["external_id"]):
                return discourse_error(422, "External ID has already been taken")
            if state.find("discourse", title=title):
                return discourse_error(422, "Title has already been used")
            slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
            post = state.publish("discourse", {"raw": raw, "title": title, "slug": slug, "post_number": 1,
                                               "category": body.get("category"), "tags": body.get("tags"),
                                               "external_id": body.get("external_id"), "username": user})
            post["topic_id"] = post["id"] + 50000
        return JSONResponse({"id": post["id"], "topic_id": post["topic_id"], "topic_slug": post["slug"],
                             "post_number": post["post_number"], "raw": raw, "username": user})

    async def discourse_by_external_id(request: Request) -> Response:
        await record(request, "discourse")
        topic = state.find("discourse", external_id=request.path_params["external_id"])
        if topic is None:
            return discourse_error(404, "The requested URL or resource could not be found.", "not_found")
        return RedirectResponse(f"/t/{topic['slug']}/{topic['topic_id']}.json", 301)

    async def discourse_topic(request: Request) -> Response:
        await record(request, "discourse")
        topic = state.find("discourse", topic_id=request.path_params["topic_id"], post_number=1)
        if topic is None:
            return discourse_error(404, "The requested URL or resource could not be found.", "not_found")
        return JSONResponse({"id": topic["topic_id"], "slug": topic["slug"], "title": topic["title"],
                             "external_id": topic["external_id"],
                             "post_stream": {"posts": [{"id": topic["id"], "post_number": 1}]}})

    async def image(request: Request) -> Response:
        await record(request, "images")
        return Response(PNG, media_type="image/png")

    return Starlette(routes=[
        Route("/bot{token}/{method}", telegram, methods=["GET", "POST"]),
        Route("/2/tweets", x_tweets, methods=["POST"]),
        Route("/2/users/me", x_me),
        Route("/2/users/{user}/tweets", x_timeline),
        Route("/1.1/media/upload.json", x_media, methods=["POST"]),
        Route("/posts.json", discourse_posts, methods=["POST"]),
        Route("/t/external_id/{external_id}.json", discourse_by_external_id),
        Route("/t/{slug}/{topic_id:int}.json", discourse_topic),
        Route("/img/{name}", image),
        *pinterest.routes(state, record, create),
        *instagram.routes(state, record, create),  # before the Graph routes of Facebook Pages
        *reddit.routes(state, record, create),
        Route("/v{version}/{node}/{edge}", graph, methods=["GET", "POST"]),
        *(route for module in (bluesky, mastodon, indexnow) for route in module.routes(state, record, create)),
    ])


def fault_response(fault: Fault) -> Response:
    if fault.json is not None:
        return JSONResponse(fault.json, fault.status, headers=fault.headers)
    return Response(fault.text or "", fault.status, headers=fault.headers,
                    media_type=fault.content_type or "text/plain")


def tg_error(status: int, description: str, **parameters: Any) -> JSONResponse:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    return JSONResponse(body, status)


def x_problem(status: int, title: str, detail: str) -> JSONResponse:
    return JSONResponse({"title": title, "detail": detail, "type": "about:blank", "status": status}, status)


def x_credentials(headers: dict[str, str]) -> list[str]:
    """The access token of an OAuth 1.0a header, or the bearer token."""
    auth = headers.get("authorization", "")
    if auth.startswith("Bearer "):
        return [auth[len("Bearer "):]]
    params = {k: unquote(v) for k, v in re.findall(r'(\w+)="([^"]*)"', auth)}
    return [params.get("oauth_token", ""), params.get("oauth_consumer_key", "")]


def graph_error(code: int, message: str, subcode: int | None = None, status: int = 400) -> JSONResponse:
    error: dict[str, Any] = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "AbCdEf"}
    if subcode:
        error["error_subcode"] = subcode
    return JSONResponse({"error": error}, status)


def discourse_error(status: int, message: str, error_type: str | None = None) -> JSONResponse:
    body: dict[str, Any] = {"action": "create_post", "errors": [message]}
    if error_type:
        body = {"errors": [message], "error_type": error_type}
    return JSONResponse(body, status)


class _TelegramHTML(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.problem = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in TELEGRAM_TAGS and not self.problem:
            self.problem = f'Unsupported start tag "{tag}"'


def telegram_html_problem(text: str) -> str:
    """What Telegram would say about `text` in HTML parse mode ('' when it parses)."""
    if BARE_AMPERSAND.search(text):
        return "Can't find end of the entity starting at byte offset " + str(BARE_AMPERSAND.search(text).start())
    parser = _TelegramHTML()
    parser.feed(text)
    parser.close()
    return parser.problem
