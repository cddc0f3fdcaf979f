"""A request's disconnect watcher leaves no reference cycle behind: what a finished request held is freed by
reference counting, not left for the garbage collector's full collections (their pauses grew with every
request: 17-21 ms under load before, 2 ms after; docs/benchmarks.md). Nor does a whole request through the app."""

from __future__ import annotations

import asyncio
import gc
import weakref
from typing import Any

from apipod.entrypoints.http.app import create_app
from apipod.entrypoints.http.request_scope import HttpRequestProvider, RequestLifetime
from tests.unit.application.fakes import make_world, text_result
from tests.unit.entrypoints.test_http_app import CATALOG, SECRET


class Server:
    """The server's ``receive``: nothing more ever arrives. Weakly referenced, it tells when the lifetime that
    holds it is gone."""

    async def __call__(self) -> dict[str, Any]:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


async def test_a_closed_lifetime_is_freed_without_the_collector() -> None:
    gc.collect()
    gc.disable()
    try:

        async def request() -> weakref.ref[Server]:
            server = Server()
            lifetime = RequestLifetime(server)
            lifetime.watch()
            await asyncio.sleep(0)  # the watcher is waiting for the server's next message
            await lifetime.close()
            return weakref.ref(server)

        gone = await asyncio.get_running_loop().create_task(request())
        for _ in range(3):
            await asyncio.sleep(0)  # the cancelled watcher finishes

        assert gone() is None
    finally:
        gc.enable()


async def test_a_whole_request_through_the_app_leaves_no_cycle() -> None:
    """The request's container holds the exchange, which holds the ASGI scope, which held the container: every
    request through the app was left for a full collection. Now the server's ``receive`` (held by the exchange)
    is freed the moment the request ends."""
    world = await make_world(CATALOG, HttpRequestProvider())
    app = create_app(lambda: world.container, admin_secret=SECRET, max_body_bytes=10_000)
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    class Body:
        """The server's ``receive``: one body, then nothing more. Like uvicorn's (a bound method of the request's
        cycle, which holds the scope), it holds the request's scope."""

        def __init__(self, body: bytes) -> None:
            self.body = body
            self.scope: dict[str, Any] = {}

        async def __call__(self) -> dict[str, Any]:
            if self.body:
                body, self.body = self.body, b""
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.Event().wait()
            raise AssertionError("unreachable")

    def scope(path: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
        return {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [(b"host", b"apipod"), (b"content-type", b"application/json"), *headers],
            "client": ("127.0.0.1", 5000),
            "server": ("127.0.0.1", 8080),
        }

    created = b'{"name": "gc", "tier": "basic"}'
    await app(scope("/admin/create-key", [(b"x-admin-secret", SECRET.encode())]), Body(created), send)
    key = next(m for m in sent if m["type"] == "http.response.body")["body"].split(b'"api_key":"')[1].split(b'"')[0]
    world.upstream.script("m", text_result("hello!"))
    sent.clear()
    gc.collect()
    gc.disable()
    try:
        receive = Body(b'{"model": "basic", "messages": [{"role": "user", "content": "hi"}]}')
        gone = weakref.ref(receive)

        async def request(body: Body) -> None:
            body.scope = scope("/v1/chat/completions", [(b"authorization", b"Bearer " + key)])
            await app(body.scope, body, send)

        await asyncio.get_running_loop().create_task(request(receive))
        del receive
        for _ in range(3):
            await asyncio.sleep(0)  # the disconnect watcher finishes

        assert sent[0]["status"] == 200
        assert gone() is None
    finally:
        gc.enable()
