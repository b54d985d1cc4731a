"""A fake IndexNow endpoint: `POST /indexnow` with `{host, key, keyLocation, urlList}`, answered as the protocol
defines (200 or 202 accepted, 400 bad request, 403 key not valid, 422 URLs not of the host, 429).

Faults: `indexnow`. A revoked key is answered 403, as an engine answers a key its host does not serve.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fake_platform.state import FakeState, Fault, Recorded

TOO_MANY = Fault(429, text="", headers={"Retry-After": "600"})
SERVER_ERROR = Fault(503, text="Service Unavailable")
BAD_REQUEST = Fault(400, json={"code": "InvalidRequestParameters", "message": "Invalid request parameters"})


def routes(state: FakeState, record: Callable[[Request, str], Awaitable[Recorded]],
           create: Callable[[str, Callable[[], Response]], Awaitable[Response]]) -> list[Route]:
    """The fake endpoint's route, on the shared fake platform app."""

    async def submit(request: Request) -> Response:
        entry = await record(request, "indexnow")
        body = entry.json if isinstance(entry.json, dict) else {}
        host, key, urls = body.get("host"), body.get("key"), body.get("urlList")
        if not host or not key or not isinstance(urls, list) or not urls or len(urls) > 10_000:
            return JSONResponse({"code": "InvalidRequestParameters", "message": "Invalid request parameters"},
                                400)
        if state.is_revoked(key):
            return JSONResponse({"code": "UserForbiddedToAccessSite",
                                 "message": "User is unauthorized to access the site. Please verify the site "
                                            "using the key and try again."}, 403)
        location = body.get("keyLocation")
        if any(urlsplit(u).hostname != host for u in urls) or (location and urlsplit(location).hostname != host):
            return JSONResponse({"code": "InvalidUrl", "message": "The URL does not belong to the host"}, 422)

        def accept() -> Response:
            state.publish("indexnow", {"host": host, "key": key, "keyLocation": location, "urlList": urls})
            return Response(status_code=202)

        return await create("indexnow", accept)

    return [Route("/indexnow", submit, methods=["POST"])]
