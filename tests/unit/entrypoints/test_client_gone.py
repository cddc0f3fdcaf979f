"""The server's callback for a client that went away (``client_gone``): ``apipod serve``'s protocol over a real
socket, and ``RequestLifetime`` using it in place of a task that waits on ``receive()``."""

from __future__ import annotations

import asyncio
import gc
import socket
import weakref
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import uvicorn

from apipod.entrypoints.http.bounded_protocol import BoundedHttpToolsProtocol
from apipod.entrypoints.http.client_gone import CLIENT_GONE, client_gone_of
from apipod.entrypoints.http.request_scope import RequestLifetime

REQUEST = b"POST /wait HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\n{}"


class App:
    """Reads the body, watches for the client leaving, then waits for ``release`` before it answers (or, with
    ``after_disconnect``, first waits until uvicorn's ``receive()`` says the client left)."""

    def __init__(self, *, after_disconnect: bool = False) -> None:
        self.after_disconnect = after_disconnect
        self.watching = asyncio.Event()
        self.release = asyncio.Event()
        self.gone: list[str] = []
        self.hooks: list[Any] = []

    async def __call__(self, scope: dict[str, Any], receive: Callable[[], Any], send: Callable[[Any], Any]) -> None:
        if scope["type"] != "http":
            return
        await receive()
        hook = client_gone_of(scope)
        self.hooks.append(hook)
        if self.after_disconnect:
            assert (await receive())["type"] == "http.disconnect"
        if hook is not None:
            hook.watch(lambda: self.gone.append(scope["path"]))
        self.watching.set()
        await self.release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})


@pytest.fixture
async def served() -> AsyncIterator[Callable[[App], Any]]:
    servers: list[tuple[uvicorn.Server, asyncio.Task[None]]] = []

    async def serve(app: App) -> int:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        config = uvicorn.Config(app, http=BoundedHttpToolsProtocol, lifespan="off", log_level="critical")
        server = uvicorn.Server(config)
        task = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))
        servers.append((server, task))
        while not server.started:
            await asyncio.sleep(0.01)
        return int(sock.getsockname()[1])

    yield serve
    for server, task in servers:
        server.should_exit = True
        await task


async def ask(served: Any, app: App) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """``app`` served, and a connection to it that has sent one request."""
    reader, writer = await asyncio.open_connection("127.0.0.1", await served(app))
    writer.write(REQUEST)
    return reader, writer


async def test_the_server_calls_back_when_the_client_leaves_while_the_app_waits(served: Any) -> None:
    app = App()
    _, writer = await ask(served, app)
    await asyncio.wait_for(app.watching.wait(), 5)
    assert app.gone == []
    writer.close()
    for _ in range(100):
        if app.gone:
            break
        await asyncio.sleep(0.01)
    assert app.gone == ["/wait"]
    app.release.set()


async def test_no_call_back_once_the_response_is_complete(served: Any) -> None:
    app = App()
    reader, writer = await ask(served, app)
    await asyncio.wait_for(app.watching.wait(), 5)
    app.release.set()
    assert (await asyncio.wait_for(reader.readuntil(b"ok"), 5)).startswith(b"HTTP/1.1 200")
    writer.close()
    await asyncio.sleep(0.1)
    assert app.gone == []


async def test_a_client_already_gone_is_told_at_once(served: Any) -> None:
    app = App(after_disconnect=True)
    _, writer = await ask(served, app)
    await asyncio.sleep(0.1)
    writer.close()
    await asyncio.wait_for(app.watching.wait(), 5)
    assert app.gone == ["/wait"]
    app.release.set()


async def answer_in_turn(app: App, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, count: int) -> None:
    """``count`` requests one after the other on one connection, each let through and answered."""
    for _ in range(count):
        app.watching.clear()
        app.release.clear()
        writer.write(REQUEST)
        await asyncio.wait_for(app.watching.wait(), 5)
        app.release.set()
        await asyncio.wait_for(reader.readuntil(b"ok"), 5)


async def test_each_request_of_a_keep_alive_connection_has_its_own_hook(served: Any) -> None:
    app = App()
    reader, writer = await asyncio.open_connection("127.0.0.1", await served(app))
    await answer_in_turn(app, reader, writer, 2)
    first, second = app.hooks
    assert first is not second
    first.watch(lambda: app.gone.append("late"))  # a finished request's hook watches nothing
    writer.close()
    await asyncio.sleep(0.1)
    assert app.gone == []


class Probe:
    """Put into a request's scope: alive for as long as the scope is."""


async def test_a_finished_requests_scope_is_freed_without_the_collector(served: Any) -> None:
    """The scope holds the hook; the hook must not hold the scope's cycle strongly, or every request is left in a
    reference cycle for the garbage collector's full collections."""
    app = App()
    probes: list[weakref.ref[Probe]] = []
    inner = app.__call__

    async def probed(scope: dict[str, Any], receive: Callable[[], Any], send: Callable[[Any], Any]) -> None:
        probe = scope["probe"] = Probe()
        probes.append(weakref.ref(probe))
        del probe
        await inner(scope, receive, send)

    gc.collect()
    gc.disable()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", await served(probed))
        await answer_in_turn(app, reader, writer, 2)
        app.hooks.clear()
        await asyncio.sleep(0.05)
        assert probes[0]() is None  # the first request's scope: the connection has moved on to the second
        writer.close()
    finally:
        gc.enable()


class Hook:
    """A server's ``ClientGone``, driven by the test."""

    def __init__(self) -> None:
        self.callback: Callable[[], None] | None = None
        self.unwatched = False

    def watch(self, callback: Callable[[], None]) -> None:
        self.callback = callback

    def unwatch(self) -> None:
        self.unwatched = True


async def test_the_lifetime_takes_the_servers_word_and_cancels_the_request() -> None:
    hook = Hook()
    received: list[str] = []

    async def server_receive() -> dict[str, Any]:
        received.append("server")
        return {"type": "http.disconnect"}

    async def request() -> RequestLifetime:
        lifetime = RequestLifetime(server_receive, hook)
        lifetime.watch()
        assert await lifetime.receive() == {"type": "http.disconnect"}  # the server's own receive, no watcher
        assert hook.callback is not None
        hook.callback()  # the server: the client left
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            return lifetime
        raise AssertionError("not cancelled")

    lifetime = await asyncio.get_running_loop().create_task(request())
    assert lifetime.disconnected
    assert received == ["server"]
    await lifetime.close()
    assert hook.unwatched


async def test_a_client_leaving_after_the_response_cancels_nothing() -> None:
    hook = Hook()

    async def never() -> dict[str, Any]:
        raise AssertionError("not read")

    lifetime = RequestLifetime(never, hook)
    lifetime.watch()
    lifetime.responded = True
    assert hook.callback is not None
    hook.callback()
    await asyncio.sleep(0)
    assert lifetime.disconnected
    await lifetime.close()


def test_the_extension_is_found_only_where_a_server_put_it() -> None:
    hook = Hook()
    assert client_gone_of({"type": "http"}) is None
    assert client_gone_of({"type": "http", "extensions": {"http.response.trailers": {}}}) is None
    assert client_gone_of({"type": "http", "extensions": {CLIENT_GONE: hook}}) is hook
