"""The baseline apipod is compared with: a bare Python forwarder on the same stack (uvicorn on uvloop and
httptools, httpx over the aiohttp transport), with no governance at all: no key, no routing, no quota, no
usage row, no translation. It forwards the body to the upstream and streams the answer back as it comes.

Run: python scripts/bench_forwarder.py PORT UPSTREAM_BASE_URL
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import httpx
import uvicorn
from httpx_aiohttp import AiohttpTransport

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


def forwarder(upstream: str) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    client = httpx.AsyncClient(transport=AiohttpTransport(), base_url=upstream, timeout=60)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        request = client.build_request(
            scope["method"], scope["path"], content=body, headers={"content-type": "application/json"}
        )
        answer = await client.send(request, stream=True)
        try:
            headers = [(b"content-type", answer.headers.get("content-type", "application/json").encode())]
            await send({"type": "http.response.start", "status": answer.status_code, "headers": headers})
            async for chunk in answer.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            await answer.aclose()

    return app


if __name__ == "__main__":
    port, upstream = int(sys.argv[1]), sys.argv[2]
    uvicorn.run(
        forwarder(upstream),
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
        lifespan="off",
    )
