"""Streaming to the client: pre-encoded SSE frames as the response body, the ASGI ``send`` that every
response goes through (coalescing a stream's frames, adding the request id), and each stream's control:
keep-alives during upstream silence and the error event that ends it at shutdown."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping, Sequence
from typing import Any, Protocol

from apipod.domain.stream import FailureKind, StreamEvent, StreamFailed

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class Responding(Protocol):
    responded: bool


class FrameEncoder(Protocol):
    def encode(self, event: StreamEvent) -> list[bytes]: ...


SHUTTING_DOWN = StreamFailed(kind=FailureKind.INTERNAL, message="The gateway is shutting down.")
"""How a stream still running when the shutdown grace ends is ended, in the client's dialect."""


async def frames(
    batches: AsyncIterator[Sequence[StreamEvent]], encoder: FrameEncoder, control: StreamControl | None = None
) -> AsyncIterator[bytes]:
    """Encode each event as it arrives, every event on its own; one body chunk per upstream read (the frames
    of its events joined). Nothing is buffered.

    With a ``control``, each read re-arms its keep-alive clock (one float stored, no timer call), and a
    shutdown that gives up on the stream ends it with ``SHUTTING_DOWN`` instead of cutting the body.

    PERF: the body goes out through Falcon's plain ``resp.stream``, not its SSE path: the frames are encoded
    already, and the SSE path adds a disconnect-watching task per stream that ``RequestLifetime`` already
    provides (it cancels the request when the client goes away, before the first event too). And a read's
    events go through Falcon and the ASGI send once, not once each."""
    encode = encoder.encode
    step = batches.__anext__
    try:
        while True:
            if control is not None and control.stopping:
                await _aclose(batches)
                batch: Sequence[StreamEvent] = (SHUTTING_DOWN,)
            else:
                if control is not None:
                    control.waiting = True
                try:
                    batch = await step()
                except StopAsyncIteration:
                    return
                except asyncio.CancelledError:
                    if control is None or not control.stopped_here():
                        raise  # the client went away
                    await _aclose(batches)
                    batch = (SHUTTING_DOWN,)
                if control is not None:
                    control.waiting = False
                    control.last = control.clock()
            if len(batch) == 1:  # PERF: a read of one event, the usual case for a paced upstream
                event = batch[0]
                encoded = encode(event)
                if type(event) is StreamFailed:
                    async for frame in _failure_frames(encoded):
                        yield frame
                    return
                if encoded:
                    yield encoded[0] if len(encoded) == 1 else b"".join(encoded)
                continue
            parts: list[bytes] = []
            for event in batch:
                encoded = encode(event)
                if type(event) is StreamFailed:
                    async for frame in _failure_frames(parts + encoded):
                        yield frame
                    return
                parts += encoded
            if parts:
                yield parts[0] if len(parts) == 1 else b"".join(parts)
    finally:
        if control is not None:
            control.close()


async def _failure_frames(encoded: list[bytes]) -> AsyncIterator[bytes]:
    """The frames that end a failed stream, the error frame in a network write of its own: what came before it
    is flushed first (a loop turn passes, so ``CoalescingSend`` writes its pending frames). Gemini's SDK only
    recognises a mid-stream error object that arrives on its own (docs/protocols/gemini-cli.md §6)."""
    if len(encoded) > 1:
        yield b"".join(encoded[:-1])
    if encoded:
        await asyncio.sleep(0)
        yield encoded[-1]


async def _aclose(events: AsyncIterator[object]) -> None:
    aclose = getattr(events, "aclose", None)
    if aclose is not None:
        await aclose()


async def failed(event: StreamFailed) -> AsyncIterator[Sequence[StreamEvent]]:
    """A stream of one error event: a failure after the response was committed by a keep-alive."""
    yield (event,)


STREAM_HEADERS = (
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
)
"""What a chat stream answers with; a keep-alive before the first event commits them."""


class StreamControl:
    """One chat stream's keep-alive timer and shutdown handle, from the request's start to the stream's end.

    Keep-alives: one timer per stream, armed for ``interval`` after the last upstream event (``last``, set
    by ``frames`` per event). When it fires and the upstream has been silent that long, it writes
    ``keepalive`` through the request's ``CoalescingSend``; before the first event that also commits the
    200 and the stream headers (``committed``): from then on a failure becomes an in-stream error event.
    Events only store a time, so a stream that is never silent costs no timer operation per event.

    Shutdown: ``stop()`` ends the stream with ``SHUTTING_DOWN``: at once when it is waiting for the upstream
    (its task is cancelled, and ``frames`` turns that into the error event), else after the write under way.
    """

    __slots__ = (
        "_content_type",
        "_frame",
        "_interval",
        "_loop",
        "_registry",
        "_send",
        "_task",
        "_timer",
        "clock",
        "closed",
        "committed",
        "last",
        "stopping",
        "waiting",
    )

    def __init__(
        self,
        registry: set[StreamControl],
        *,
        interval: float,
        keepalive: bytes | Callable[[], bytes],
        flush_delay: float = 0.0,
        content_type: bytes = b"text/event-stream",
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self.clock = self._loop.time
        self._registry = registry
        self._task = asyncio.current_task()
        self._send = CURRENT_SEND.get()
        self._frame = keepalive  # bytes, or a callable when the frame changes (a Responses sequence number)
        self._content_type = content_type
        self._interval = interval
        self._timer: asyncio.TimerHandle | None = None
        self.closed = False
        self.committed = False
        self.stopping = False
        self.waiting = True  # for the upstream's first event
        self.last = self.clock()
        if self._send is not None:
            self._send.delay = flush_delay
            if interval > 0:
                self._timer = self._loop.call_later(interval, self._due)
        registry.add(self)

    def _due(self) -> None:
        if self.closed or self._send is None:
            return
        now = self.clock()
        quiet = now - self.last
        if quiet + 0.001 >= self._interval:
            frame = self._frame if isinstance(self._frame, bytes) else self._frame()
            self._send.keepalive(frame, start=not self.committed, content_type=self._content_type)
            self.committed = True
            self.last = now
            quiet = 0.0
        self._timer = self._loop.call_later(self._interval - quiet, self._due)

    def stop(self) -> None:
        """End the stream with the shutdown error event (``frames`` writes it)."""
        if self.stopping or self.closed:
            return
        self.stopping = True
        if self.waiting and self._task is not None:
            self._task.cancel()

    def stopped_here(self) -> bool:
        """Whether a cancellation came from ``stop()``; if so it is taken back, and the request goes on to
        write the error event (a client that went away cancels too, and that one must go on)."""
        if not self.stopping:
            return False
        if self._task is not None:
            self._task.uncancel()
        return True

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self._timer is not None:
                self._timer.cancel()
            self._registry.discard(self)

    async def aclose(self) -> None:
        self.close()


class CoalescingSend:
    """Wraps ASGI ``send`` for event streams: the first frame of an event-loop turn is written at once,
    the frames that follow in the same turn (an upstream delivered several in one network read) are joined
    and written together as soon as the turn ends. With a ``delay`` (STREAM_FLUSH_INTERVAL_MS, set per
    stream by its ``StreamControl``) the frames that follow within that many seconds are joined instead.

    PERF: a write costs a system call and an ASGI round of its own, more than encoding a frame; bursts of
    frames are common (Anthropic's block start and first delta, OpenAI's usage and ``[DONE]``). Nothing is
    held back waiting for more: the joined write happens before the loop waits on any I/O, so every frame
    still reaches the client as it arrives. A write still in progress is awaited before the next one, which
    keeps the order and the client's backpressure.

    Every response also gets the request's ``x-request-id`` header here, and ``lifetime.responded`` is set
    once its last body message is on its way (a disconnect after that is no reason to cancel anything).
    The instance is the request's ``CURRENT_SEND``, so a stream's keep-alive timer can write through it
    while the response body waits for the upstream; once a keep-alive has started the response, the app's
    own ``http.response.start`` is dropped.
    """

    __slots__ = (
        "_flushing",
        "_header",
        "_lifetime",
        "_loop",
        "_pending",
        "_send",
        "_started",
        "_streaming",
        "_turn_open",
        "delay",
    )

    def __init__(self, send: Send, header: tuple[bytes, bytes], lifetime: Responding) -> None:
        self._send = send
        self._header = header
        self._lifetime = lifetime
        self._loop = asyncio.get_running_loop()
        self._pending: list[bytes] = []
        self._flushing: asyncio.Task[None] | None = None
        self._turn_open = False
        self._streaming = False
        self._started = False
        self.delay = 0.0
        CURRENT_SEND.set(self)

    async def __call__(self, message: MutableMapping[str, Any]) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            if self._started:
                return  # a keep-alive committed the stream's start already
            self._started = True
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
            if self.delay > 0:
                self._loop.call_later(self.delay, self._end_turn)
            else:
                self._loop.call_soon(self._end_turn)
        else:
            await self.drain()
            if not message.get("more_body"):
                self._lifetime.responded = True
        await self._send(message)

    def keepalive(self, frame: bytes, *, start: bool, content_type: bytes = b"text/event-stream") -> None:
        """Write ``frame`` soon, after the write under way, if any (then the client is not idle anyway);
        with ``start``, the stream's 200 and headers first."""
        if self._flushing is not None and not self._flushing.done():
            return
        if start:
            if self._started:
                return  # the app answered already; its own body follows
            self._started = self._streaming = True
        self._flushing = self._loop.create_task(self._keepalive(frame, start, content_type))
        self._flushing.add_done_callback(_retrieve)

    async def _keepalive(self, frame: bytes, start: bool, content_type: bytes) -> None:
        if start:
            headers = [(b"content-type", content_type), *STREAM_HEADERS[1:], self._header]
            await self._send({"type": "http.response.start", "status": 200, "headers": headers})
        await self._send({"type": "http.response.body", "body": frame, "more_body": True})

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


CURRENT_SEND: contextvars.ContextVar[CoalescingSend | None] = contextvars.ContextVar("apipod_send", default=None)
"""The request's ``CoalescingSend`` (set in the request's task when it is made)."""


def _retrieve(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        task.exception()  # a failed write to a gone client is not worth a warning
