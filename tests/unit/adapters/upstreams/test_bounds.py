"""Upstream bounds (docs/behaviour.md §6): ``first_event`` and ``total`` time limits, the SSE event
cap, the JSON answer cap and the cap on one tool call's streamed arguments, over ``httpx.MockTransport``.

Bounds are a few tenths of a second; stalls wait on an event that is never set, so only the bound ends them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import attrs
import httpx
import pytest

from apipod.adapters.retry import NO_RETRY
from apipod.adapters.upstreams._http import UpstreamHttp
from apipod.adapters.upstreams._sse import SSEDecoder, SSEEventTooLarge
from apipod.dialects import anthropic, openai
from apipod.domain.catalog import Timeouts, Upstream, UpstreamKind
from apipod.domain.errors import UpstreamResponseTooLargeError, UpstreamTimeoutError, UpstreamUnavailableError
from apipod.domain.stream import (
    Finished,
    MessageStarted,
    StreamEvent,
    StreamFailed,
    TextDelta,
    ToolCallDelta,
    ToolCallStarted,
)

URL = "http://up.test/v1/chat/completions"
FAST = Timeouts(connect=1.0, read=5.0, first_event=0.2, total=5.0)
UPSTREAM = Upstream(name="up", kind=UpstreamKind.OPENAI, base_url="http://up.test/v1", timeouts=FAST)
STALL = object()  # a script step: send nothing more, ever
TICK = 0.02  # the pace of keep-alive scripts (not a timing assertion)


def chunk(text: str, finish: str | None = None) -> bytes:
    delta = f'{{"content":"{text}"}}' if text else "{}"
    reason = f'"{finish}"' if finish else "null"
    return (
        (b'data: {"id":"c","model":"m","choices":[{"index":0,"delta":' + delta.encode() + b',"finish_reason":')
        + reason.encode()
        + b"}]}\n\n"
    )


class Script(httpx.AsyncByteStream):
    """A body sent step by step: bytes are one chunk, a float is a pause, ``STALL`` stops sending for good.
    Records how many chunks were pulled and whether the body was closed."""

    def __init__(self, *steps: object, repeat: bytes | None = None) -> None:
        self.steps = steps
        self.repeat = repeat  # after the steps, this chunk every TICK forever
        self.sent = 0
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for step in self.steps:
            if step is STALL:
                await asyncio.Event().wait()
            elif isinstance(step, float):
                await asyncio.sleep(step)
            else:
                assert isinstance(step, bytes)
                self.sent += 1
                yield step
        while self.repeat is not None:
            self.sent += 1
            yield self.repeat
            await asyncio.sleep(TICK)

    async def aclose(self) -> None:
        self.closed = True


def core(handler: Callable[[httpx.Request], object], dialect: object = openai) -> UpstreamHttp:
    async def respond(request: httpx.Request) -> httpx.Response:
        answer = handler(request)
        if asyncio.iscoroutine(answer):
            answer = await answer
        assert isinstance(answer, httpx.Response)
        return answer

    decode_error = dialect.decode_error  # type: ignore[attr-defined]
    return UpstreamHttp(
        httpx.AsyncClient(transport=httpx.MockTransport(respond)), decode_error=decode_error, retry=NO_RETRY
    )


def sse(body: Script) -> Callable[[httpx.Request], httpx.Response]:
    return lambda request: httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=body)


async def collect(events: AsyncIterator[StreamEvent]) -> list[StreamEvent]:
    return [event async for event in events]


def stream(http: UpstreamHttp, upstream: Upstream = UPSTREAM, decoder: object = None) -> AsyncIterator[StreamEvent]:
    return http.stream(
        upstream,
        URL,
        headers={},
        body={"stream": True},
        decoder=decoder or openai.StreamDecoder(),  # type: ignore[arg-type]
    )


# -- domain ------------------------------------------------------------------------------------------------


def test_defaults_follow_the_decision() -> None:
    assert (Timeouts().first_event, Timeouts().total) == (120.0, 1800.0)
    upstream = Upstream(name="u", kind=UpstreamKind.OPENAI)
    assert (upstream.max_event_bytes, upstream.max_response_bytes) == (4 * 1024 * 1024, 16 * 1024 * 1024)


@pytest.mark.parametrize("field", ["connect", "read", "first_event", "total"])
def test_timeouts_must_be_positive(field: str) -> None:
    with pytest.raises(ValueError, match=field):
        Timeouts(**{field: 0.0})


@pytest.mark.parametrize("field", ["max_event_bytes", "max_response_bytes"])
def test_caps_must_be_positive(field: str) -> None:
    with pytest.raises(ValueError, match=field):
        Upstream(name="u", kind=UpstreamKind.OPENAI, **{field: 0})  # type: ignore[arg-type]


# -- the SSE decoder's cap ---------------------------------------------------------------------------------


def test_a_line_growing_past_the_cap_is_refused_before_it_is_buffered() -> None:
    decoder = SSEDecoder(max_event_bytes=100)
    decoder.feed(b"data: " + b"x" * 60)
    with pytest.raises(SSEEventTooLarge) as caught:
        decoder.feed(b"x" * 60)  # 126 bytes of one unterminated line
    assert caught.value.limit == 100
    assert sum(len(piece) for piece in decoder._tail) <= 100  # the refused piece was never kept


def test_a_line_that_ends_past_the_cap_is_refused_before_joining() -> None:
    decoder = SSEDecoder(max_event_bytes=100)
    decoder.feed(b"data: " + b"x" * 90)
    with pytest.raises(SSEEventTooLarge):
        decoder.feed(b"x" * 20 + b"\n\n")


def test_an_event_of_many_short_data_lines_is_capped_too() -> None:
    decoder = SSEDecoder(max_event_bytes=100)
    decoder.feed(b"data: " + b"x" * 40 + b"\n" + b"data: " + b"y" * 40 + b"\n")
    with pytest.raises(SSEEventTooLarge):
        decoder.feed(b"data: " + b"z" * 40 + b"\n")


def test_an_endless_comment_line_is_capped() -> None:
    decoder = SSEDecoder(max_event_bytes=64)
    for _ in range(3):
        decoder.feed(b":" + b" " * 20)
    with pytest.raises(SSEEventTooLarge):
        decoder.feed(b":" + b" " * 20)


def test_events_up_to_the_cap_pass_and_the_count_restarts_per_event() -> None:
    decoder = SSEDecoder(max_event_bytes=100)
    events: list[tuple[str | None, bytes]] = []
    for _ in range(5):  # 5 events of one 100-byte line, each split in two chunks
        events += decoder.feed(b"data: " + b"a" * 44)
        events += decoder.feed(b"a" * 50 + b"\n\n")
    assert events == [(None, b"a" * 94)] * 5


# -- first_event -------------------------------------------------------------------------------------------


async def test_a_comment_only_stream_fails_over_at_first_event() -> None:
    body = Script(repeat=b": keep-alive\n\n")
    started = time.monotonic()
    with pytest.raises(UpstreamTimeoutError, match=r"no event within 0\.2 seconds"):
        await collect(stream(core(sse(body))))
    assert 0.15 < time.monotonic() - started < 2.0
    assert body.sent > 3 and body.closed  # comments kept coming; the response was closed


async def test_anthropic_pings_do_not_count_as_a_first_event() -> None:
    body = Script(b'event: message_start\ndata: {"type":"ping"}\n\n', repeat=b'event: ping\ndata: {"type": "ping"}\n\n')
    upstream = attrs.evolve(UPSTREAM, kind=UpstreamKind.ANTHROPIC)
    with pytest.raises(UpstreamTimeoutError):
        await collect(stream(core(sse(body), anthropic), upstream, anthropic.StreamDecoder()))
    assert body.closed


async def test_openai_chunks_without_content_do_not_count_either() -> None:
    body = Script(repeat=b'data: {"choices":[]}\n\n')
    with pytest.raises(UpstreamTimeoutError):
        await collect(stream(core(sse(body))))


async def test_an_upstream_that_never_answers_the_request_fails_at_first_event_not_read() -> None:
    async def never(request: httpx.Request) -> httpx.Response:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    started = time.monotonic()
    with pytest.raises(UpstreamTimeoutError):
        await collect(stream(core(never)))
    assert time.monotonic() - started < 2.0  # read is 5 s


async def test_silence_before_the_first_event_is_bounded_by_first_event() -> None:
    body = Script(b": hello\n\n", STALL)
    with pytest.raises(UpstreamTimeoutError):
        await collect(stream(core(sse(body))))
    assert body.closed


async def test_first_event_no_longer_applies_once_an_event_arrived() -> None:
    pause = 0.05
    steps: list[object] = [chunk("Hi")]
    for n in range(8):  # 0.4 s in all: twice first_event
        steps += [pause, chunk(f" {n}")]
    body = Script(*steps, chunk("", "stop"), b"data: [DONE]\n\n")
    events = await collect(stream(core(sse(body))))
    assert isinstance(events[-1], Finished)
    assert sum(isinstance(e, TextDelta) for e in events) == 9


async def test_a_json_answer_is_bounded_by_total_not_by_first_event() -> None:
    """A non-streamed answer comes whole when the generation is done: ``first_event`` would cut every long
    generation (and have it paid for twice on failover), so only ``total`` bounds it."""
    upstream = attrs.evolve(UPSTREAM, timeouts=attrs.evolve(FAST, first_event=0.1, total=0.5))

    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.3)  # past first_event, within total
        return httpx.Response(200, json={"ok": True})

    assert await core(slow).request_json(upstream, "POST", URL, headers={}, body={}) == {"ok": True}

    async def stuck(request: httpx.Request) -> httpx.Response:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    with pytest.raises(UpstreamTimeoutError, match=r"longer than 0\.5 seconds"):
        await core(stuck).request_json(upstream, "POST", URL, headers={}, body={})


# -- total -------------------------------------------------------------------------------------------------


async def test_total_ends_a_started_stream_with_stream_failed() -> None:
    upstream = attrs.evolve(UPSTREAM, timeouts=attrs.evolve(FAST, total=0.3))
    body = Script(chunk("Hi"), repeat=chunk(" more"))
    started = time.monotonic()
    events = await collect(stream(core(sse(body)), upstream))
    assert time.monotonic() - started < 2.0
    assert isinstance(events[0], TextDelta) or any(isinstance(e, TextDelta) for e in events)
    assert isinstance(events[-1], StreamFailed)
    assert "longer than 0.3 seconds" in events[-1].message
    assert body.closed


async def test_total_interrupts_a_read_even_when_reads_are_only_watched_near_the_end() -> None:
    """Reads that start long before the deadline are not watched (the idle timeout ends them in time);
    the ones near it are, so the deadline still cuts a trickling stream."""
    upstream = attrs.evolve(UPSTREAM, timeouts=attrs.evolve(FAST, read=0.1, total=0.4))
    body = Script(chunk("Hi"), repeat=chunk(" more"))
    events = await collect(stream(core(sse(body)), upstream))
    assert isinstance(events[-1], StreamFailed) and "longer than 0.4 seconds" in events[-1].message
    assert body.sent > 5 and body.closed


async def test_total_shorter_than_first_event_names_total() -> None:
    upstream = attrs.evolve(UPSTREAM, timeouts=attrs.evolve(FAST, first_event=5.0, total=0.2))
    with pytest.raises(UpstreamTimeoutError, match=r"longer than 0\.2 seconds"):
        await collect(stream(core(sse(Script(STALL))), upstream))


async def test_total_passing_while_the_consumer_works_does_not_cancel_the_consumer() -> None:
    """The deadline interrupts reads only: a consumer busy between two events is never cancelled, and its
    next read is refused instead."""
    upstream = attrs.evolve(UPSTREAM, timeouts=attrs.evolve(FAST, total=0.2))
    body = Script(chunk("Hi"), chunk(" there"), STALL)  # " there" is ready but read only after total
    events: list[StreamEvent] = []
    async for event in stream(core(sse(body)), upstream):
        events.append(event)
        if len(events) == 1:
            await asyncio.sleep(0.4)  # the consumer's own wait, across the deadline
    assert [type(e) for e in events] == [MessageStarted, TextDelta, StreamFailed]


async def test_total_bounds_a_slow_json_body_after_its_first_bytes() -> None:
    upstream = attrs.evolve(UPSTREAM, timeouts=attrs.evolve(FAST, total=0.3))
    body = Script(b'{"id":', repeat=b" ")
    answer = httpx.Response(200, headers={"content-type": "application/json"}, stream=body)
    with pytest.raises(UpstreamTimeoutError, match=r"longer than 0\.3 seconds"):
        await core(lambda r: answer).request_json(upstream, "POST", URL, headers={}, body={})
    assert body.closed


async def test_a_cancelled_caller_is_not_mistaken_for_a_timeout() -> None:
    events = stream(core(sse(Script(STALL))))
    task = asyncio.ensure_future(anext(events))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_caller_cancelled_as_the_deadline_fires_stays_cancelled() -> None:
    upstream = attrs.evolve(UPSTREAM, timeouts=attrs.evolve(FAST, first_event=0.1))
    events = stream(core(sse(Script(STALL))), upstream)
    task = asyncio.ensure_future(anext(events))
    loop = asyncio.get_running_loop()
    loop.call_at(loop.time() + 0.1, task.cancel)  # the same tick as the deadline, give or take
    with pytest.raises((asyncio.CancelledError, UpstreamTimeoutError)):
        await task
    assert task.cancelled() or isinstance(task.exception(), UpstreamTimeoutError)


# -- sizes -------------------------------------------------------------------------------------------------


async def test_a_huge_event_before_the_first_event_fails_over_without_reading_on() -> None:
    upstream = attrs.evolve(UPSTREAM, max_event_bytes=1000)
    body = Script(b"data: ", repeat=b"x" * 256)
    with pytest.raises(UpstreamResponseTooLargeError, match="longer than 1000 bytes"):
        await collect(stream(core(sse(body)), upstream))
    assert body.sent <= 6 and body.closed


async def test_a_huge_event_after_the_first_event_ends_the_stream() -> None:
    upstream = attrs.evolve(UPSTREAM, max_event_bytes=1000)
    body = Script(chunk("Hi"), b"data: ", repeat=b"x" * 256)
    events = await collect(stream(core(sse(body)), upstream))
    assert [type(e) for e in events][1:] == [TextDelta, StreamFailed]
    assert isinstance(events[-1], StreamFailed) and "longer than 1000 bytes" in events[-1].message
    assert body.sent <= 7 and body.closed


async def test_a_json_answer_past_the_cap_is_refused_while_it_is_read() -> None:
    upstream = attrs.evolve(UPSTREAM, max_response_bytes=10_000)
    body = Script(b"[", repeat=b"1," * 1024)
    answer = httpx.Response(200, headers={"content-type": "application/json"}, stream=body)
    with pytest.raises(UpstreamResponseTooLargeError, match="longer than 10000 bytes"):
        await core(lambda r: answer).request_json(upstream, "GET", URL, headers={})
    assert body.sent <= 6 and body.closed


async def test_a_json_answer_up_to_the_cap_is_read() -> None:
    upstream = attrs.evolve(UPSTREAM, max_response_bytes=16)
    answer = httpx.Response(200, stream=Script(b'{"a":', b' "0123456"}'))  # 16 bytes
    assert await core(lambda r: answer).request_json(upstream, "GET", URL, headers={}) == {"a": "0123456"}


def tool_chunk(arguments: str, *, first: bool = False) -> bytes:
    head = (
        '"id":"call_1","type":"function","function":{"name":"f","arguments":' if first else '"function":{"arguments":'
    )
    return (
        b'data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,'
        + (head + f'"{arguments}"' + "}}]}}]}\n\n").encode()
    )


async def test_one_tool_calls_arguments_are_capped_across_fragments() -> None:
    upstream = attrs.evolve(UPSTREAM, max_response_bytes=1000)
    body = Script(tool_chunk("", first=True), repeat=tool_chunk("a" * 100))
    events = await collect(stream(core(sse(body)), upstream))
    fragments = [e for e in events if isinstance(e, ToolCallDelta)]
    assert sum(len(e.fragment) for e in fragments) <= 1000
    assert isinstance(events[-1], StreamFailed) and "tool call's arguments" in events[-1].message
    assert body.closed


async def test_tool_arguments_past_the_cap_in_the_first_chunk_end_the_stream() -> None:
    """The call's start commits the stream (it is relayed); its oversized arguments then end it."""
    upstream = attrs.evolve(UPSTREAM, max_response_bytes=50)
    body = Script(tool_chunk("a" * 80, first=True), STALL)
    events = await collect(stream(core(sse(body)), upstream))
    assert [type(e) for e in events] == [MessageStarted, ToolCallStarted, StreamFailed]
    assert body.closed


async def test_bound_errors_fail_over_like_any_unavailable_upstream() -> None:
    assert issubclass(UpstreamTimeoutError, UpstreamUnavailableError)
    assert issubclass(UpstreamResponseTooLargeError, UpstreamUnavailableError)
