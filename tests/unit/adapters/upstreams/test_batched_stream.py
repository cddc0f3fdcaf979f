"""UpstreamHttp.stream per network read (``batches()``) and one event at a time: the same events either way,
a batch per read that brought events, and the bounds applied inside a read."""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from apipod.adapters.upstreams._batched import BatchedStream
from apipod.application.ports import EventBatches
from apipod.domain.stream import (
    Finished,
    MessageStarted,
    StreamEvent,
    StreamFailed,
    TextDelta,
    ToolCallStarted,
)
from tests.unit.adapters.upstreams.test_bounds import STALL, UPSTREAM, Script, chunk, core, sse, stream, tool_chunk

DONE = b"data: [DONE]\n\n"


def script() -> Script:
    return Script(chunk("a") + chunk("b") + chunk("c"), b": keep-alive\n\n", chunk("d"), chunk("", "stop") + DONE)


async def batches_of(events: object) -> list[Sequence[StreamEvent]]:
    assert isinstance(events, BatchedStream) and isinstance(events, EventBatches)
    return [batch async for batch in events.batches()]


async def test_each_read_that_brings_events_is_one_batch() -> None:
    body = script()
    batches = await batches_of(stream(core(sse(body))))
    assert [[type(event) for event in batch] for batch in batches] == [
        [MessageStarted, TextDelta, TextDelta, TextDelta],
        [TextDelta],
        [Finished],
    ]
    assert body.closed


async def test_one_by_one_gives_the_same_events() -> None:
    by_read = [event for batch in await batches_of(stream(core(sse(script())))) for event in batch]
    one_by_one = [event async for event in stream(core(sse(script())))]
    assert one_by_one == by_read


async def test_closing_after_the_first_batch_closes_the_body() -> None:
    body = Script(chunk("a"), STALL)
    events = stream(core(sse(body)))
    assert isinstance(events, BatchedStream)
    assert [type(event) for event in await anext(events.batches())] == [MessageStarted, TextDelta]
    await events.aclose()
    assert body.closed


async def test_arguments_past_the_cap_inside_a_read_end_the_stream_after_the_events_before_them() -> None:
    upstream = attrs.evolve(UPSTREAM, max_response_bytes=50)
    body = Script(chunk("a") + tool_chunk("", first=True) + tool_chunk("x" * 80), STALL)
    batches = await batches_of(stream(core(sse(body)), upstream))
    assert [[type(event) for event in batch] for batch in batches] == [
        [MessageStarted, TextDelta, ToolCallStarted],
        [StreamFailed],
    ]
    assert "tool call's arguments" in batches[-1][0].message  # type: ignore[union-attr]
    assert body.closed
