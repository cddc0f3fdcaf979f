"""StreamControl and frames: keep-alives during upstream silence (before the first event too, committing
the response), the flush interval, and the shutdown's error event."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, MutableMapping, Sequence
from typing import Any

from apipod.domain.stream import StreamEvent, StreamFailed, TextDelta
from apipod.entrypoints.http.streaming import SHUTTING_DOWN, CoalescingSend, StreamControl, frames

HEADER = (b"x-request-id", b"req_1")
START_SSE = {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]}
PING = b": keep-alive\n\n"


class Lifetime:
    responded = False


class Recorder:
    def __init__(self) -> None:
        self.sent: list[MutableMapping[str, Any]] = []

    async def __call__(self, message: MutableMapping[str, Any]) -> None:
        self.sent.append(message)

    def bodies(self) -> list[bytes]:
        return [m["body"] for m in self.sent if m["type"] == "http.response.body"]

    def starts(self) -> list[MutableMapping[str, Any]]:
        return [m for m in self.sent if m["type"] == "http.response.start"]


class Encoder:
    def encode(self, event: StreamEvent) -> list[bytes]:
        if isinstance(event, StreamFailed):
            return [f"error:{event.message}\n\n".encode()]
        assert isinstance(event, TextDelta)
        return [f"text:{event.text}\n\n".encode()]


class Upstream:
    """Events released by the test, each a read of its own unless put as a batch; records whether it was
    closed."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[StreamEvent | Sequence[StreamEvent] | None] = asyncio.Queue()
        self.closed = False

    def __aiter__(self) -> Upstream:
        return self

    async def __anext__(self) -> Sequence[StreamEvent]:
        item = await self.queue.get()
        if item is None:
            raise StopAsyncIteration
        return item if isinstance(item, Sequence) else (item,)

    async def aclose(self) -> None:
        self.closed = True


async def relay(send: CoalescingSend, body: AsyncIterator[bytes]) -> None:
    """What Falcon does with ``resp.stream``."""
    await send(START_SSE)
    async for chunk in body:
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def test_silence_gets_keepalives_and_events_rearm_the_clock() -> None:
    out = Recorder()
    send = CoalescingSend(out, HEADER, Lifetime())
    registry: set[StreamControl] = set()
    control = StreamControl(registry, interval=0.05, keepalive=PING)
    control.waiting = False
    upstream = Upstream()
    task = asyncio.create_task(relay(send, frames(upstream, Encoder(), control)))
    await upstream.queue.put(TextDelta(text="a"))
    await asyncio.sleep(0.18)  # about three intervals of silence
    await upstream.queue.put(TextDelta(text="b"))
    await upstream.queue.put(None)
    await task
    bodies = [b for b in out.bodies() if b]
    assert bodies[0] == b"text:a\n\n"
    assert 2 <= bodies.count(PING) <= 4
    assert bodies[-1] == b"text:b\n\n"
    assert len(out.starts()) == 1
    assert registry == set() and control.closed  # the stream's end disarms and unregisters it


async def test_a_keepalive_before_the_first_event_commits_the_response_once() -> None:
    out = Recorder()
    send = CoalescingSend(out, HEADER, Lifetime())
    control = StreamControl(set(), interval=0.03, keepalive=PING)
    await asyncio.sleep(0.05)  # the upstream is still silent
    assert control.committed
    upstream = Upstream()
    await upstream.queue.put(TextDelta(text="a"))
    await upstream.queue.put(None)
    control.waiting = False
    await relay(send, frames(upstream, Encoder(), control))  # the app's own start is dropped
    [start] = out.starts()
    assert start["status"] == 200
    assert (b"content-type", b"text/event-stream") in start["headers"] and HEADER in start["headers"]
    assert out.bodies()[0] == PING and b"text:a\n\n" in out.bodies()


async def test_no_keepalive_when_events_keep_coming_or_when_off() -> None:
    out = Recorder()
    send = CoalescingSend(out, HEADER, Lifetime())
    control = StreamControl(set(), interval=0, keepalive=PING)
    await asyncio.sleep(0.03)
    assert not control.committed
    upstream = Upstream()
    await upstream.queue.put(None)
    await relay(send, frames(upstream, Encoder(), control))
    assert PING not in out.bodies()


async def test_stop_while_waiting_for_the_upstream_ends_with_the_error_event() -> None:
    out = Recorder()
    send = CoalescingSend(out, HEADER, Lifetime())
    registry: set[StreamControl] = set()
    upstream = Upstream()

    async def request() -> None:
        control = StreamControl(registry, interval=0, keepalive=PING)
        control.waiting = False
        await relay(send, frames(upstream, Encoder(), control))

    task = asyncio.create_task(request())
    await upstream.queue.put(TextDelta(text="a"))
    await asyncio.sleep(0.02)
    [control] = registry
    control.stop()
    await task
    assert not task.cancelled()
    assert out.bodies()[-2:] == [f"error:{SHUTTING_DOWN.message}\n\n".encode(), b""]
    assert upstream.closed


async def test_a_client_gone_still_cancels_the_stream() -> None:
    out = Recorder()
    send = CoalescingSend(out, HEADER, Lifetime())
    upstream = Upstream()

    async def request() -> None:
        control = StreamControl(set(), interval=0, keepalive=PING)
        await relay(send, frames(upstream, Encoder(), control))

    task = asyncio.create_task(request())
    await asyncio.sleep(0.01)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert task.cancelled()


async def test_a_flush_interval_joins_the_events_of_the_window() -> None:
    out = Recorder()
    send = CoalescingSend(out, HEADER, Lifetime())
    send.delay = 0.05
    await send(START_SSE)
    await send({"type": "http.response.body", "body": b"a", "more_body": True})  # written at once
    await asyncio.sleep(0.01)
    await send({"type": "http.response.body", "body": b"b", "more_body": True})
    await asyncio.sleep(0.01)
    await send({"type": "http.response.body", "body": b"c", "more_body": True})
    assert out.bodies() == [b"a"]
    await asyncio.sleep(0.06)
    assert out.bodies() == [b"a", b"bc"]


async def test_the_events_of_one_read_are_encoded_each_and_written_together() -> None:
    out = Recorder()
    send = CoalescingSend(out, HEADER, Lifetime())
    upstream = Upstream()
    await upstream.queue.put((TextDelta(text="a"), TextDelta(text="b"), TextDelta(text="c")))
    await upstream.queue.put(TextDelta(text="d"))
    await upstream.queue.put(None)
    control = StreamControl(set(), interval=0, keepalive=PING)
    await relay(send, frames(upstream, Encoder(), control))
    assert out.bodies() == [b"text:a\n\ntext:b\n\ntext:c\n\n", b"text:d\n\n", b""]


async def test_a_failure_inside_a_read_goes_out_alone_after_what_came_before_it() -> None:
    out = Recorder()
    send = CoalescingSend(out, HEADER, Lifetime())
    upstream = Upstream()
    failure = StreamFailed(kind="upstream", message="broke")
    await upstream.queue.put((TextDelta(text="a"), TextDelta(text="b"), failure))
    control = StreamControl(set(), interval=0, keepalive=PING)
    await relay(send, frames(upstream, Encoder(), control))
    assert out.bodies() == [b"text:a\n\ntext:b\n\n", b"error:broke\n\n", b""]
