"""The fake Pinterest API v5: `POST /v5/pins` as Pinterest answers it, errors as `{"code": N, "message": ...}`."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fake_platform.state import FakeState, Fault, Recorded

Record = Callable[[Request, str], Awaitable[Recorded]]
Create = Callable[[str, Callable[[], Response]], Awaitable[Response]]


def pinterest_error(status: int, code: int, message: str) -> JSONResponse:
    return JSONResponse({"code": code, "message": message}, status)


def routes(state: FakeState, record: Record, create: Create) -> list[Route]:
    """Pinterest's routes, recorded under the platform name `pinterest`; faults taken from `pinterest`."""

    async def pins(request: Request) -> Response:
        entry = await record(request, "pinterest")
        auth = entry.headers.get("authorization", "")
        if not auth.startswith("Bearer ") or state.is_revoked(auth[len("Bearer "):]):
            return pinterest_error(401, 2, "Authentication failed.")
        body: dict[str, Any] = entry.json if isinstance(entry.json, dict) else {}
        return await create("pinterest", lambda: publish(body))

    def publish(body: dict[str, Any]) -> Response:
        source = body.get("media_source") or {}
        if not body.get("board_id"):
            return pinterest_error(400, 1, "Invalid request: 'board_id' is a required property")
        if source.get("source_type") != "image_url" or not source.get("url"):
            return pinterest_error(400, 1, "Invalid request: media_source: 'url' is a required property")
        if len(body.get("title") or "") > 100:
            return pinterest_error(400, 1, "Invalid request: title: is too long (maximum 100 characters)")
        if len(body.get("description") or "") > 800:
            return pinterest_error(400, 1, "Invalid request: description: is too long (maximum 800 characters)")
        pin = state.publish("pinterest", {key: body.get(key) for key in ("board_id", "board_section_id", "title",
                                                                          "description", "link")}
                            | {"image_url": source["url"],
                               "created_at": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(state.now()))})
        return JSONResponse({"id": str(pin["id"]), "board_id": pin["board_id"], "title": pin["title"],
                             "description": pin["description"], "link": pin["link"],
                             "created_at": pin["created_at"]}, 201)

    async def board_pins(request: Request) -> Response:
        entry = await record(request, "pinterest")
        auth = entry.headers.get("authorization", "")
        if not auth.startswith("Bearer ") or state.is_revoked(auth[len("Bearer "):]):
            return pinterest_error(401, 2, "Authentication failed.")
        board = request.path_params["board"]
        items = [{"id": str(p["id"]), "board_id": board, "description": p["description"], "link": p["link"],
                  "created_at": p["created_at"]} for p in reversed(state.posts("pinterest")) if p["board_id"] == board]
        return JSONResponse({"items": items[:int(entry.query.get("page_size", 25))], "bookmark": None})

    return [Route("/v5/pins", pins, methods=["POST"]),
            Route("/v5/boards/{board}/pins", board_pins, methods=["GET"])]


def pinterest_rate_limited(retry_after: int | None) -> Fault:
    return Fault(429, json={"code": 8, "message": "You have exceeded your rate limit. Try again later."},
                 headers={"Retry-After": str(retry_after)} if retry_after is not None else {})


PINTEREST_SERVER_ERROR = Fault(503, json={"code": 3, "message": "Service is temporarily unavailable."})
PINTEREST_BAD_IMAGE = Fault(400, json={"code": 1, "message": "Invalid request: Sorry, we could not fetch the image."})
PINTEREST_NO_SCOPE = Fault(403, json={"code": 29, "message": "You are not permitted to access that resource."})
