"""StreamChat over an upstream that hands over its events per network read (``EventBatches``): the batches
reach the client's writer as they came, the books see every event in them, and a reader of events one by one
sees the same stream."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Sequence

from apipod.application.ports import EventBatches, UpstreamCall
from apipod.domain.chat import ChatRequest, ChatResult, FinishReason, Usage
from apipod.domain.stream import Finished, MessageStarted, StreamEvent, TextDelta, UsageReported
from tests.unit.application.catalogs import daily_tokens, two_upstreams
from tests.unit.application.fakes import OneClientRegistry, World, make_world, text_events, user_request

Batches = list[Sequence[StreamEvent]]


class ReadsUpstream:
    """An upstream client whose streams come in scripted reads; records how many streams were closed."""

    def __init__(self, *reads: Sequence[StreamEvent]) -> None:
        self.reads = reads
        self.closed = 0

    async def complete(self, call: UpstreamCall, request: ChatRequest) -> ChatResult:
        raise AssertionError("only streams are scripted")

    def stream(self, call: UpstreamCall, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        return Read(self._reads())

    async def _reads(self) -> AsyncGenerator[Sequence[StreamEvent], None]:
        try:
            for read in self.reads:
                yield read
        finally:
            self.closed += 1

    async def list_models(self, upstream: object) -> list[str]:
        return []


class Read(AsyncIterator[StreamEvent]):
    """The adapter side of ``EventBatches``: only the batches are read in these tests."""

    def __init__(self, batches: AsyncGenerator[Sequence[StreamEvent], None]) -> None:
        self._batches = batches

    def batches(self) -> AsyncGenerator[Sequence[StreamEvent], None]:
        return self._batches

    async def __anext__(self) -> StreamEvent:
        raise AssertionError("read per event although it offers batches")

    async def aclose(self) -> None:
        await self._batches.aclose()


READS: tuple[Sequence[StreamEvent], ...] = (
    (MessageStarted(id="m1", model="up-model"), TextDelta("Hello"), TextDelta(" there")),
    (TextDelta(" you"),),
    (TextDelta(" all"), UsageReported(Usage(input_tokens=7, output_tokens=4)), Finished(FinishReason.END_TURN)),
)


async def world_over(upstream: object) -> tuple[World, str]:
    world = await make_world(two_upstreams(budgets=daily_tokens(100_000)), registry=OneClientRegistry(upstream))  # type: ignore[arg-type]
    return world, (await world.gateway.issue_key(name="alice", plan="pro")).plaintext


def test_the_fake_offers_batches() -> None:
    assert isinstance(Read(ReadsUpstream()._reads()), EventBatches)


async def test_batches_reach_the_writer_as_the_upstream_read_them_and_the_books_close_from_inside_them() -> None:
    upstream = ReadsUpstream(*READS)
    world, key = await world_over(upstream)
    stream = await world.gateway.stream(key, user_request(model="x", stream=True))
    batches: Batches = [batch async for batch in stream.batches()]
    assert [len(batch) for batch in batches] == [3, 1, 3]
    assert batches[0][0] == MessageStarted(id="m1", model="x", origin="openai")  # the client's model name
    assert list(batches[0][1:]) == list(READS[0][1:]) and batches[1:] == list(READS[1:])
    assert upstream.closed == 1
    [row] = world.usage.records()
    assert (row.status, row.usage.input_tokens, row.usage.output_tokens) == ("success", 7, 4)


async def test_without_usage_the_estimate_counts_the_text_of_every_batch() -> None:
    upstream = ReadsUpstream((MessageStarted(), TextDelta("a" * 8), TextDelta("b" * 8)), (TextDelta("c" * 16),))
    world, key = await world_over(upstream)
    stream = await world.gateway.stream(key, user_request(stream=True))
    async for _ in stream.batches():
        pass
    [row] = world.usage.records()
    assert row.usage.output_tokens == 32 // 4


async def test_a_reader_of_events_one_by_one_gets_the_same_events() -> None:
    world, key = await world_over(ReadsUpstream(*READS))
    events = [event async for event in await world.gateway.stream(key, user_request(model="x", stream=True))]
    assert [type(event) for event in events] == [type(event) for read in READS for event in read]
    assert "".join(event.text for event in events if isinstance(event, TextDelta)) == "Hello there you all"


async def test_an_upstream_without_batches_is_read_one_event_a_batch() -> None:
    world = await make_world(two_upstreams())
    key = (await world.gateway.issue_key(name="alice", plan="pro")).plaintext
    world.upstream.script("a", text_events(["one", "two"]))
    stream = await world.gateway.stream(key, user_request(stream=True))
    batches: Batches = [batch async for batch in stream.batches()]
    assert [len(batch) for batch in batches] == [1, 1, 1, 1, 1]


async def test_batches_closed_before_reading_close_the_upstream_and_the_books() -> None:
    upstream = ReadsUpstream(*READS)
    world, key = await world_over(upstream)
    stream = await world.gateway.stream(key, user_request(stream=True))
    await stream.batches().aclose()
    assert upstream.closed == 1
    [row] = world.usage.records()
    assert row.status == "cancelled"


async def test_batches_closed_midway_close_the_upstream_and_settle_what_was_relayed() -> None:
    upstream = ReadsUpstream(*READS)
    world, key = await world_over(upstream)
    batches = (await world.gateway.stream(key, user_request(stream=True))).batches()
    await anext(batches)
    await batches.aclose()
    assert upstream.closed == 1
    [row] = world.usage.records()
    assert (row.status, row.usage.output_tokens) == ("cancelled", len("Hello there") // 4)
