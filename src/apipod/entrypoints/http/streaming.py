"""Streaming to the client: pre-encoded SSE frames through Falcon's SSE path, and a guard that cancels
the stream the moment the client disconnects."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any, Protocol

import falcon.asgi

from apipod.domain.stream import StreamEvent, StreamFailed

CLOSERS = "apipod.closers"

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class FrameEncoder(Protocol):
    def encode(self, event: StreamEvent) -> list[bytes]: ...


class Frame(falcon.asgi.SSEvent):
    """An SSE frame already encoded by a dialect's stream encoder: Falcon sends it as is."""

    __slots__ = ("frame",)

    def __init__(self, frame: bytes) -> None:
        self.frame = frame

    def serialize(self, handler: Any = None) -> bytes:
        return self.frame


async def frames(events: AsyncIterator[StreamEvent], encoder: FrameEncoder) -> AsyncIterator[Frame]:
    """Encode each event as it arrives. Nothing is buffered: one upstream event, one write."""
    async for event in events:
        for frame in encoder.encode(event):
            yield Frame(frame)
        if isinstance(event, StreamFailed):
            return


def close_on_exit(req: falcon.asgi.Request, events: AsyncIterator[StreamEvent]) -> None:
    """Make sure ``events`` is closed when the request ends, however it ends (Falcon does not close an
    SSE emitter it stopped iterating)."""
    closers = req.scope.get(CLOSERS)
    aclose = getattr(events, "aclose", None)
    if closers is not None and aclose is not None:
        closers.append(aclose)


class DisconnectGuard:
    """Pure-ASGI wrapper. A streaming response registers its closer; when the client disconnects while
    one is registered, the request task is cancelled at once (the upstream read it waits on included), and
    the closers run: the upstream call is cancelled and the books closed without waiting for the next
    upstream chunk."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        task = asyncio.current_task()
        closers: list[Callable[[], Awaitable[None]]] = []
        scope[CLOSERS] = closers
        disconnected = False

        async def guarded_receive() -> MutableMapping[str, Any]:
            nonlocal disconnected
            message = await receive()
            if message["type"] == "http.disconnect" and closers and not disconnected:
                disconnected = True
                if task is not None:
                    task.cancel()
            return message

        try:
            await self._app(scope, guarded_receive, send)
        except asyncio.CancelledError:
            if not disconnected or task is None:
                raise
            task.uncancel()
        finally:
            for close in closers:
                await close()
