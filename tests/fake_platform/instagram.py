"""The fake Instagram Graph API content publishing: media containers, their status, media_publish, media.

Containers are `IN_PROGRESS` for `state.settings['ig_polls']` status reads (default 1), then `FINISHED`; an
image URL containing 'broken' ends `ERROR`, as when Instagram cannot fetch the image.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fake_platform.state import FakeState, Recorded

Record = Callable[[Request, str], Awaitable[Recorded]]
Create = Callable[[str, Callable[[], Response]], Awaitable[Response]]
CONTAINERS = "instagram-containers"


def graph_error(code: int, message: str, subcode: int | None = None, status: int = 400,
                user_msg: str | None = None) -> JSONResponse:
    error: dict[str, Any] = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "IgTrace"}
    if subcode:
        error["error_subcode"] = subcode
    if user_msg:
        error["error_user_msg"] = user_msg
    return JSONResponse({"error": error}, status)


def routes(state: FakeState, record: Record, create: Create) -> list[Route]:
    """Instagram's routes (before the generic Graph route), recorded and faulted under `instagram`."""

    async def args_of(request: Request) -> dict[str, str] | Response:
        entry = await record(request, "instagram")
        args = {**entry.query, **entry.form}
        if state.is_revoked(args.get("access_token")):
            return graph_error(190, "Error validating access token: Session has expired.", subcode=463, status=401)
        return args

    async def media(request: Request) -> Response:
        args = await args_of(request)
        if isinstance(args, Response):
            return args
        account = request.path_params["node"]
        if request.method == "GET":
            found = [{"id": str(p["id"]), "caption": p["caption"], "permalink": p["permalink"],
                      "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S+0000", time.gmtime(p["created"]))}
                     for p in reversed(state.posts("instagram")) if p["account"] == account]
            return JSONResponse({"data": found})
        return await create("instagram", lambda: new_container(account, args))

    def new_container(account: str, args: dict[str, str]) -> Response:
        children = [c for c in args.get("children", "").split(",") if c]
        if args.get("media_type") == "CAROUSEL":
            known = {str(c["id"]): c for c in state.posts(CONTAINERS)}
            if not 2 <= len(children) <= 10 or any(not known.get(c, {}).get("carousel_item") for c in children):
                return graph_error(100, "Invalid parameter", user_msg="The carousel children are not valid.")
        elif not args.get("image_url"):
            return graph_error(100, "Invalid parameter", subcode=2207003,
                               user_msg="Only photo or video can be accepted as media type.")
        container = state.publish(CONTAINERS, {
            "account": account, "image_url": args.get("image_url"), "caption": args.get("caption"),
            "carousel_item": args.get("is_carousel_item") == "true", "children": children,
            "media_type": args.get("media_type", "IMAGE"), "polls": int(state.settings.get("ig_polls", 1))})
        return JSONResponse({"id": str(container["id"])})

    async def publish(request: Request) -> Response:
        args = await args_of(request)
        if isinstance(args, Response):
            return args
        account = request.path_params["node"]

        def accept() -> Response:
            container = state.find(CONTAINERS, id=_int(args.get("creation_id")))
            if container is None or container["account"] != account:
                return graph_error(100, "Unsupported post request. Object does not exist.", subcode=33)
            if _status(container) != "FINISHED":
                return graph_error(9007, "Media ID is not available", subcode=2207027,
                                   user_msg="The media is not ready for publishing, please wait for a moment")
            container["published"] = True
            post = state.publish("instagram", {"account": account, "caption": container["caption"],
                                               "media_type": container["media_type"], "created": state.now(),
                                               "image_url": container["image_url"],
                                               "children": [state.find(CONTAINERS, id=int(c))["image_url"]
                                                            for c in container["children"]]})
            post["permalink"] = f"https://www.instagram.com/p/FAKE{post['id']}/"
            return JSONResponse({"id": str(post["id"])})

        return await create("instagram", accept)

    async def node(request: Request) -> Response:
        args = await args_of(request)
        if isinstance(args, Response):
            return args
        ident = _int(request.path_params["node"])
        container = state.find(CONTAINERS, id=ident)
        if container is not None:
            status = _status(container, read=True)
            body = {"id": str(ident), "status_code": status}
            if status == "ERROR":
                body["status"] = "Error: Media download has failed. The media URI doesn't meet our requirements."
            return JSONResponse(body)
        post = state.find("instagram", id=ident)
        if post is not None:
            return JSONResponse({"id": str(ident), "permalink": post["permalink"]})
        return graph_error(100, "Unsupported get request.", subcode=33)

    def _status(container: dict[str, Any], read: bool = False) -> str:
        if "broken" in (container["image_url"] or ""):
            return "ERROR"
        if container.get("published"):
            return "PUBLISHED"
        if container["polls"] > 0:
            if read:
                with state.lock:
                    container["polls"] -= 1
            return "IN_PROGRESS"
        return "FINISHED"

    return [
        Route("/v{version}/{node}/media", media, methods=["GET", "POST"]),
        Route("/v{version}/{node}/media_publish", publish, methods=["POST"]),
        Route("/v{version}/{node}", node, methods=["GET"]),
    ]


def _int(text: str | None) -> int:
    try:
        return int(text or "")
    except ValueError:
        return -1
