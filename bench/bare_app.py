"""The baseline of bench/tracker.py: a bare ASGI app answering the same 302 as the tracker, logging nothing."""

from __future__ import annotations

from typing import Any

LOCATION = (b"https://shop.example.com/products/merino-scarf?color=red&utm_source=social&utm_medium=social"
            b"&utm_campaign=bench&utm_content=a&dr_click=AAAAAAAAAAAAAAAA")


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    await send({"type": "http.response.start", "status": 302,
                "headers": [(b"location", LOCATION), (b"cache-control", b"no-store, private"),
                            (b"content-length", b"0")]})
    await send({"type": "http.response.body", "body": b""})
