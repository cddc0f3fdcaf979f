"""Streaming to the client: pre-encoded SSE frames as the response body, and the ASGI ``send`` that every
response goes through (coalescing a stream's frames, adding the request id)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any, Protocol

from apipod.domain.stream import StreamEvent, StreamFailed

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class Responding(Protocol):
    responded: bool


class FrameEncoder(Protocol):
    def encode(self, event: StreamEvent) -> list[bytes]: ...


async def frames(events: AsyncIterator[StreamEvent], encoder: FrameEncoder) -> AsyncIterator[bytes]:
    """Encode each event as it arrives; one upstream event, one body chunk (its frames joined). Nothing is
    buffered.

    PERF: the body goes out through Falcon's plain ``resp.stream``, not its SSE path: the frames are encoded
    already, and the SSE path adds a disconnect-watching task per stream that ``RequestLifetime`` already
    provides (it cancels the request when the client goes away, before the first event too)."""
    async for event in events:
        encoded = encoder.encode(event)
        if encoded:
            yield encoded[0] if len(encoded) == 1 else b"".join(encoded)
        if isinstance(event, StreamFailed):
            return


class CoalescingSend:
    """Wraps ASGI ``send`` for event streams: the first frame of an event-loop turn is written at once,
    the frames that follow in the same turn (an upstream delivered several in one network read) are joined
    and written together as soon as the turn ends.

    PERF: a write costs a system call and an ASGI round of its own, more than encoding a frame; bursts of
    frames are common (Anthropic's block start and first delta, OpenAI's usage and ``[DONE]``). Nothing is
    held back waiting for more: the joined write happens before the loop waits on any I/O, so every frame
    still reaches the client as it arrives. A write still in progress is awaited before the next one, which
    keeps the order and the client's backpressure.

    Every response also gets the request's ``x-request-id`` header here, and ``lifetime.responded`` is set
    once its last body message is on its way (a disconnect after that is no reason to cancel anything).
    """

    __slots__ = ("_flushing", "_header", "_lifetime", "_loop", "_pending", "_send", "_streaming", "_turn_open")

    def __init__(self, send: Send, header: tuple[bytes, bytes], lifetime: Responding) -> None:
        self._send = send
        self._header = header
        self._lifetime = lifetime
        self._loop = asyncio.get_running_loop()
        self._pending: list[bytes] = []
        self._flushing: asyncio.Task[None] | None = None
        self._turn_open = False
        self._streaming = False

    async def __call__(self, message: MutableMapping[str, Any]) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            headers = message["headers"] = [*message.get("headers", ()), self._header]
            self._streaming = any(
                name == b"content-type" and value.startswith(b"text/event-stream") for name, value in headers
            )
        elif kind == "http.response.body" and self._streaming and message.get("more_body"):
            if self._flushing is not None:
                await self._wait_flush()
            if self._turn_open:
                self._pending.append(message["body"])
                return
            self._turn_open = True
            self._loop.call_soon(self._end_turn)
        else:
            await self.drain()
            if not message.get("more_body"):
                self._lifetime.responded = True
        await self._send(message)

    def _end_turn(self) -> None:
        self._turn_open = False
        if self._pending:
            body = b"".join(self._pending)
            self._pending.clear()
            message = {"type": "http.response.body", "body": body, "more_body": True}
            self._flushing = self._loop.create_task(self._send(message))  # type: ignore[arg-type]
            self._flushing.add_done_callback(_retrieve)

    async def _wait_flush(self) -> None:
        flushing, self._flushing = self._flushing, None
        if flushing is not None:
            await flushing

    async def drain(self) -> None:
        """Write whatever is pending, in order, before the response's last message."""
        await self._wait_flush()
        if self._pending:
            body = b"".join(self._pending)
            self._pending.clear()
            await self._send({"type": "http.response.body", "body": body, "more_body": True})


def _retrieve(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        task.exception()  # a failed write to a gone client is not worth a warning
