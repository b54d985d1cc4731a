"""The fake Reddit API, as PRAW reaches it: the password/refresh-token grant, `/api/submit/`, `/api/info/`.

Submit errors come as Reddit sends them: HTTP 200 with `{"json": {"errors": [[TYPE, message, field]]}}`. A
`Fault` injected under `reddit-removal` makes the next accepted post removed at once, its JSON's `category`
as `removed_by_category` (what the spam filter or AutoModerator does).
"""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fake_platform.state import FakeState, Fault, Recorded

Record = Callable[[Request, str], Awaitable[Recorded]]
Create = Callable[[str, Callable[[], Response]], Awaitable[Response]]
INVALID_TOKEN = {"www-authenticate": 'Bearer realm="reddit", error="invalid_token"'}


def reddit_errors(*errors: tuple[str, str, str | None]) -> JSONResponse:
    return JSONResponse({"json": {"errors": [list(e) for e in errors]}})


def routes(state: FakeState, record: Record, create: Create) -> list[Route]:
    """Reddit's routes, recorded and faulted under `reddit`."""

    async def access_token(request: Request) -> Response:
        entry = await record(request, "reddit-auth")
        client = base64.b64decode(entry.headers.get("authorization", "Basic ").split(" ", 1)[1] or b"").decode()
        if state.is_revoked(client.partition(":")[2]):
            return JSONResponse({"message": "Unauthorized", "error": 401}, 401)
        grant = entry.form.get("password") or entry.form.get("refresh_token")
        if state.is_revoked(grant):
            return JSONResponse({"error": "invalid_grant"})
        with state.lock:
            state.counter += 1
            token = f"reddit-token-{state.counter}"
        return JSONResponse({"access_token": token, "token_type": "bearer", "expires_in": 86400, "scope": "*"})

    def authorized(entry: Recorded) -> bool:
        token = entry.headers.get("authorization", "").removeprefix("bearer ").removeprefix("Bearer ")
        return token.startswith("reddit-token-") and not state.is_revoked(token, "all-reddit-tokens")

    async def submit(request: Request) -> Response:
        entry = await record(request, "reddit")
        if not authorized(entry):
            return JSONResponse({"message": "Unauthorized", "error": 401}, 401, headers=INVALID_TOKEN)
        return await create("reddit", lambda: publish(entry.form))

    def publish(form: dict[str, str]) -> Response:
        if not form.get("title"):
            return reddit_errors(("NO_TEXT", "we need something here", "title"))
        if len(form["title"]) > 300:
            return reddit_errors(("TOO_LONG", "this is too long (max: 300)", "title"))
        if form.get("kind") == "link" and state.find("reddit", sr=form.get("sr"), url=form.get("url")) \
                and form.get("resubmit") != "True":
            return reddit_errors(("ALREADY_SUB", "that link has already been submitted", "url"))
        removal = state.next_fault("reddit-removal")
        post = state.publish("reddit", {key: form.get(key) for key in ("sr", "kind", "title", "text", "url",
                                                                       "flair_id", "flair_text", "nsfw",
                                                                       "spoiler")}
                             | {"removed_by_category": removal.json["category"] if removal else None,
                                "created_utc": state.now()})
        post["name"] = f"t3_fk{post['id']}"
        url = f"https://www.reddit.com/r/{form.get('sr')}/comments/fk{post['id']}/title/"
        return JSONResponse({"json": {"errors": [], "data": {"url": url, "drafts_count": 0, "id": f"fk{post['id']}",
                                                            "name": post["name"]}}})

    async def info(request: Request) -> Response:
        entry = await record(request, "reddit-info")
        if not authorized(entry):
            return JSONResponse({"message": "Unauthorized", "error": 401}, 401, headers=INVALID_TOKEN)
        children: list[dict[str, Any]] = []
        for name in entry.query.get("id", "").split(","):
            post = state.find("reddit", name=name)
            if post is not None:
                children.append({"kind": "t3", "data": {
                    "id": name[3:], "name": name, "title": post["title"], "subreddit": post["sr"],
                    "removed_by_category": post["removed_by_category"], "permalink": f"/comments/{name[3:]}/"}})
        return JSONResponse({"kind": "Listing", "data": {"after": None, "before": None, "dist": len(children),
                                                         "children": children}})

    async def submitted(request: Request) -> Response:
        entry = await record(request, "reddit-info")
        if not authorized(entry):
            return JSONResponse({"message": "Unauthorized", "error": 401}, 401, headers=INVALID_TOKEN)
        children = [{"kind": "t3", "data": {"id": p["name"][3:], "name": p["name"], "title": p["title"],
                                            "subreddit": p["sr"], "created_utc": p["created_utc"],
                                            "author": request.path_params["user"]}}
                    for p in reversed(state.posts("reddit"))]
        return JSONResponse({"kind": "Listing", "data": {"after": None, "before": None, "dist": len(children),
                                                         "children": children}})

    return [
        Route("/api/v1/access_token", access_token, methods=["POST"]),
        Route("/api/submit/", submit, methods=["POST"]),
        Route("/api/info/", info, methods=["GET"]),
        Route("/user/{user}/submitted{rest:path}", submitted, methods=["GET"]),
    ]


def reddit_ratelimit(minutes: int) -> Fault:
    return Fault(200, json={"json": {"errors": [[
        "RATELIMIT", f"Looks like you've been doing that a lot. Take a break for {minutes} minutes before trying "
                     "again.", "ratelimit"]]}})


def reddit_removed(category: str) -> Fault:
    return Fault(200, json={"category": category})


REDDIT_TOO_MANY = Fault(429, text="Too Many Requests", headers={"Retry-After": "42"})
REDDIT_SERVER_ERROR = Fault(503, text="<html>all our servers are busy</html>", content_type="text/html")
REDDIT_NO_SELFS = Fault(200, json={"json": {"errors": [[
    "NO_SELFS", "This community doesn't allow text posts.", "sr"]]}})
REDDIT_BAD_FLAIR = Fault(200, json={"json": {"errors": [[
    "SUBMIT_VALIDATION_FLAIR_REQUIRED", "Your post must contain post flair.", "flair"]]}})
