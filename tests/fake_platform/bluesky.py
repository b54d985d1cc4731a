"""A fake Bluesky PDS: the XRPC methods the bluesky plugin calls (createSession, refreshSession, uploadBlob,
createRecord), answering and failing as a PDS does (`{"error": ..., "message": ...}`).

Faults: `bluesky-login` (createSession), `bluesky-upload` (uploadBlob), `bluesky` (createRecord). A revoked
app password is refused at login; a revoked access token is answered `ExpiredToken`, as a PDS answers a
token past its time. `short_sessions(state)` makes the next sessions' access tokens expire within minutes.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fake_platform.state import FakeState, Fault, Recorded

DID = "did:plc:fakeshop7kq3x2mzy5lt4cwe"
CID = "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"
BLOB_CID = "bafkreibme22gw2h7y2h7tg2fhqotaqjucnbc24deqo72b6mkl2egezxhvy"


def xrpc_error(status: int, error: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": error, "message": message}, status, headers=headers)


def rate_limited(reset_in: int) -> Fault:
    """A PDS's 429: `ratelimit-*` headers, the window's reset as a Unix time."""
    return Fault(429, json={"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"},
                 headers={"ratelimit-limit": "5000", "ratelimit-remaining": "0", "ratelimit-policy": "5000;w=3600",
                          "ratelimit-reset": str(int(time.time()) + reset_in)})


SERVER_ERROR = Fault(500, json={"error": "InternalServerError", "message": "Internal Server Error"})
INVALID_RECORD = Fault(400, json={"error": "InvalidRequest",
                                  "message": "Invalid app.bsky.feed.post record: Record/text must not be longer "
                                             "than 300 graphemes"})


def short_sessions(state: FakeState, seconds: int = 60) -> None:
    """Access tokens issued from now on expire after `seconds` (the SDK refreshes them ahead of time)."""
    state.publish("bluesky-ttl", {"seconds": seconds})


def _jwt(scope: str, ttl: int) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    now = int(time.time())
    nonce = time.monotonic_ns()
    return ".".join([part({"typ": "at+jwt", "alg": "ES256K"}),
                     part({"scope": scope, "sub": DID, "iat": now, "exp": now + ttl, "jti": str(nonce)}),
                     "c2lnbmF0dXJl"])


def routes(state: FakeState, record: Callable[[Request, str], Awaitable[Recorded]],
           create: Callable[[str, Callable[[], Response]], Awaitable[Response]]) -> list[Route]:
    """The fake PDS's routes, on the shared fake platform app."""

    def new_session(handle: str) -> dict[str, Any]:
        ttls = state.posts("bluesky-ttl")
        ttl = ttls[-1]["seconds"] if ttls else 7200
        session = {"accessJwt": _jwt("com.atproto.appPass", ttl), "refreshJwt": _jwt("com.atproto.refresh", 86400),
                   "handle": handle, "did": DID, "active": True}
        state.publish("bluesky-sessions", dict(session))
        return session

    def bearer(entry: Recorded) -> str:
        return entry.headers.get("authorization", "").removeprefix("Bearer ")

    def token_problem(entry: Recorded) -> Response | None:
        token = bearer(entry)
        if not token or state.find("bluesky-sessions", accessJwt=token) is None:
            return xrpc_error(401, "AuthenticationRequired", "Authentication Required")
        if state.is_revoked(token):
            return xrpc_error(400, "ExpiredToken", "Token has expired")
        return None

    async def create_session(request: Request) -> Response:
        entry = await record(request, "bluesky-login")
        body = entry.json or {}
        if state.is_revoked(body.get("password")):
            return xrpc_error(401, "AuthenticationRequired", "Invalid identifier or password")
        return await create("bluesky-login", lambda: JSONResponse(new_session(body.get("identifier", ""))))

    async def refresh_session(request: Request) -> Response:
        entry = await record(request, "bluesky-refresh")
        old = state.find("bluesky-sessions", refreshJwt=bearer(entry))
        if old is None:
            return xrpc_error(400, "ExpiredToken", "Token has been revoked")
        return JSONResponse(new_session(old["handle"]))

    async def upload_blob(request: Request) -> Response:
        entry = await record(request, "bluesky-upload")
        content = await request.body()
        problem = token_problem(entry)
        if problem is not None:
            return problem

        def accept() -> Response:
            kind = "image/png" if content.startswith(b"\x89PNG") else "application/octet-stream"  # sniffed
            state.publish("bluesky-upload", {"size": len(content), "mime": kind, "content": content})
            return JSONResponse({"blob": {"$type": "blob", "ref": {"$link": BLOB_CID}, "mimeType": kind,
                                          "size": len(content)}})

        return await create("bluesky-upload", accept)

    async def create_record(request: Request) -> Response:
        entry = await record(request, "bluesky")
        problem = token_problem(entry)
        if problem is not None:
            return problem
        body = entry.json or {}

        def accept() -> Response:
            post = state.publish("bluesky", {"repo": body.get("repo"), "collection": body.get("collection"),
                                             "record": body.get("record", {}), "token": bearer(entry)})
            rkey = f"3lfake{post['id']}"
            post["uri"] = f"at://{DID}/{body.get('collection')}/{rkey}"
            return JSONResponse({"uri": post["uri"], "cid": CID, "validationStatus": "valid",
                                 "commit": {"cid": CID, "rev": "3lfakerev"}})

        return await create("bluesky", accept)

    return [
        Route("/xrpc/com.atproto.server.createSession", create_session, methods=["POST"]),
        Route("/xrpc/com.atproto.server.refreshSession", refresh_session, methods=["POST"]),
        Route("/xrpc/com.atproto.repo.uploadBlob", upload_blob, methods=["POST"]),
        Route("/xrpc/com.atproto.repo.createRecord", create_record, methods=["POST"]),
    ]
