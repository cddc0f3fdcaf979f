"""An in-process httpx transport that streams an ASGI app's answer as it is produced.

``httpx.ASGITransport`` runs the app to completion and buffers the body, so it cannot show incremental
delivery, a hang before the first byte, a connection dropped mid-stream, or a client going away. This
transport can, without sockets:

- the response returns at ``http.response.start``; body chunks arrive as the app sends them;
- the read timeout of the request (``timeout=``) applies to the start and to every chunk: ``ReadTimeout``;
- an app that fails, or stops without finishing, mid-body: ``ReadError`` (a dropped connection);
  before the response started: ``RemoteProtocolError`` ("server disconnected without a response");
- closing the response (or timing out) tells the app ``http.disconnect``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx

_END = object()  # the app returned


class _Failed:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class StreamingASGITransport(httpx.AsyncBaseTransport):
    def __init__(self, app: Any) -> None:
        self.app = app
        self.tasks: set[asyncio.Task[None]] = set()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = b"".join([part async for part in request.stream])  # type: ignore[union-attr]
        timeout = request.extensions.get("timeout", {}).get("read")
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": request.method,
            "headers": [(k.lower(), v) for k, v in request.headers.raw],
            "scheme": request.url.scheme,
            "path": request.url.path,
            "raw_path": request.url.raw_path.split(b"?")[0],
            "query_string": request.url.query,
            "server": (request.url.host, request.url.port),
            "client": ("127.0.0.1", 123),
            "root_path": "",
        }
        messages: asyncio.Queue[Any] = asyncio.Queue()
        gone = asyncio.Event()
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await gone.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if not gone.is_set():
                await messages.put(message)

        async def run() -> None:
            try:
                await self.app(scope, receive, send)
            except Exception as exc:  # handed to the reader as a dropped connection
                await messages.put(_Failed(exc))
            else:
                await messages.put(_END)

        task = asyncio.create_task(run())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        stream = _Body(messages, gone, task, timeout)
        try:
            start = await stream.next_message()
        except BaseException:
            await stream.aclose()
            raise
        if not isinstance(start, dict) or start.get("type") != "http.response.start":
            await stream.aclose()
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.", request=request)
        return httpx.Response(start["status"], headers=start.get("headers", []), stream=stream, request=request)


class _Body(httpx.AsyncByteStream):
    def __init__(
        self, messages: asyncio.Queue[Any], gone: asyncio.Event, task: asyncio.Task[None], timeout: float | None
    ) -> None:
        self._messages = messages
        self._gone = gone
        self._task = task
        self._timeout = timeout
        self._done = False

    async def next_message(self) -> Any:
        try:
            return await asyncio.wait_for(self._messages.get(), self._timeout)
        except TimeoutError:
            self._gone.set()
            raise httpx.ReadTimeout("timed out waiting for the app") from None

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while not self._done:
            message = await self.next_message()
            if isinstance(message, dict) and message.get("type") == "http.response.body":
                if message.get("body"):
                    yield message["body"]
                if not message.get("more_body"):
                    self._done = True
                continue
            self._gone.set()
            raise httpx.ReadError("peer closed connection without sending complete message body")

    async def aclose(self) -> None:
        """Like closing a socket: the app sees ``http.disconnect`` and gets a moment to notice it."""
        self._gone.set()
        if not self._task.done():
            with contextlib.suppress(TimeoutError, Exception):
                await asyncio.wait_for(asyncio.shield(self._task), 1.0)
        if not self._task.done():
            self._task.cancel()
