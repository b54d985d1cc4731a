"""A fake Mastodon instance: /api/v2/instance, /api/v2/media and /api/v1/statuses, answering and failing as
Mastodon does (`{"error": ...}`, `X-RateLimit-*` headers, Idempotency-Key honoured).

Faults: `mastodon-media` (media upload), `mastodon` (statuses). A revoked access token is refused with 401.
`set_instance_limit(state, n)` changes the instance's `max_characters` (500 otherwise).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fake_platform.state import FakeState, Fault, Recorded

UNAUTHORIZED = {"error": "The access token is invalid"}


def rate_limited(reset_in: int) -> Fault:
    reset = datetime.fromtimestamp(time.time() + reset_in, UTC).isoformat(timespec="milliseconds")
    return Fault(429, json={"error": "Too many requests"},
                 headers={"X-RateLimit-Limit": "300", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset})


SERVER_ERROR = Fault(503, json={"error": "Service Unavailable"})
VALIDATION_FAILED = Fault(422, json={"error": "Validation failed: Text character limit of 500 exceeded"})
MISSING_SCOPE = Fault(403, json={"error": "This action is outside the authorized scopes"})


def set_instance_limit(state: FakeState, max_characters: int) -> None:
    state.publish("mastodon-limit", {"max_characters": max_characters})


def routes(state: FakeState, record: Callable[[Request, str], Awaitable[Recorded]],
           create: Callable[[str, Callable[[], Response]], Awaitable[Response]]) -> list[Route]:
    """The fake instance's routes, on the shared fake platform app."""

    def refused(entry: Recorded) -> Response | None:
        token = entry.headers.get("authorization", "").removeprefix("Bearer ")
        if not token or state.is_revoked(token):
            return JSONResponse(UNAUTHORIZED, 401)
        return None

    async def instance(request: Request) -> Response:
        await record(request, "mastodon-instance")
        limits = state.posts("mastodon-limit")
        limit = limits[-1]["max_characters"] if limits else 500
        return JSONResponse({"domain": "fake.social", "title": "Fake social", "version": "4.3.2",
                             "api_versions": {"mastodon": 2}, "configuration": {"urls": {}, "statuses": {
                                 "max_characters": limit, "max_media_attachments": 4,
                                 "characters_reserved_per_url": 23}}})

    async def instance_v1(request: Request) -> Response:
        await record(request, "mastodon-instance")
        return JSONResponse({"uri": "fake.social", "title": "Fake social", "version": "4.3.2",
                             "urls": {}, "stats": {}, "languages": ["en"]})

    async def media(request: Request) -> Response:
        entry = await record(request, "mastodon-media")
        problem = refused(entry)
        if problem is not None:
            return problem

        def accept() -> Response:
            name, kind, content = entry.files["file"]
            item = state.publish("mastodon-media", {"filename": name, "type": kind, "size": len(content),
                                                    "description": entry.form.get("description")})
            return JSONResponse({"id": str(item["id"]), "type": "image", "url": "https://fake.social/m/1.png",
                                 "preview_url": "https://fake.social/m/1s.png", "description": item["description"]})

        return await create("mastodon-media", accept)

    async def statuses(request: Request) -> Response:
        entry = await record(request, "mastodon")
        problem = refused(entry)
        if problem is not None:
            return problem
        body = entry.json if isinstance(entry.json, dict) else entry.form
        key = entry.headers.get("idempotency-key")

        def accept() -> Response:
            earlier = state.find("mastodon", idempotency_key=key) if key else None
            status = earlier or state.publish("mastodon", {
                "status": body.get("status"), "media_ids": body.get("media_ids[]"), "visibility": body.get(
                    "visibility"), "language": body.get("language"), "idempotency_key": key})
            sid = str(status["id"])
            return JSONResponse({"id": sid, "uri": f"https://fake.social/users/shop/statuses/{sid}",
                                 "url": f"https://fake.social/@shop/{sid}", "content": status["status"],
                                 "visibility": status["visibility"], "created_at": "2026-03-01T11:00:00.000Z",
                                 "media_attachments": [], "mentions": [], "tags": [], "emojis": []})

        return await create("mastodon", accept)

    return [
        Route("/api/v1/instance", instance_v1),
        Route("/api/v2/instance", instance),
        Route("/api/v2/media", media, methods=["POST"]),
        Route("/api/v1/statuses", statuses, methods=["POST"]),
    ]
