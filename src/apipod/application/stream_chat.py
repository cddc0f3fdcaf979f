"""StreamChat: canonical events from the upstream to the client as they arrive."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence

from apipod.application.authenticate_key import Principal
from apipod.application.chat_pipeline import ChatPipeline, ChatTurn
from apipod.application.dispatch import Slot
from apipod.application.event_batches import batches_of, one_by_one
from apipod.application.ports import Clock
from apipod.application.signature_memory import SignatureMemory
from apipod.domain.chat import ChatRequest, Usage
from apipod.domain.quota import CHARS_PER_TOKEN
from apipod.domain.stream import (
    FailureKind,
    MessageStarted,
    Relayed,
    StreamEvent,
    StreamFailed,
    TextDelta,
    ThinkingDelta,
    ToolCallDelta,
    ToolCallStarted,
    UsageReported,
)
from apipod.domain.usage import UsageStatus


class StreamChat:
    """Rules:
    - route, admit, reserve and open the upstream stream up to its first event before returning, so every
      failure before the first byte is an ordinary error (and fails over like CompleteChat);
    - after the first event there is no retry and no failover: an upstream failure becomes a
      ``StreamFailed`` event;
    - however the stream ends (finished, failed, client gone, cancelled) the books are closed exactly once:
      the real usage is settled, or estimated from what was relayed when the upstream never reported it.
    """

    def __init__(self, pipeline: ChatPipeline, clock: Clock, signatures: SignatureMemory) -> None:
        self._pipeline = pipeline
        self._clock = clock
        self._signatures = signatures

    async def execute(self, principal: Principal, request: ChatRequest, request_id: str) -> ChatStream:
        first_event: list[float] = []

        async def call(slot: Slot) -> tuple[AsyncIterator[Sequence[StreamEvent]], Sequence[StreamEvent]]:
            events = slot.client.stream(slot.call, self._signatures.restore(request, slot.call.upstream.kind.value))
            batches = batches_of(events)
            try:
                first = await anext(batches)
            except BaseException:
                await _close(batches)
                raise
            first_event.append(self._clock.monotonic())  # time to first token: the upstream's first event
            return batches, first

        turn, (batches, first) = await self._pipeline.start(principal, request, request_id, call)
        turn.first_event = first_event[-1]

        async def close_unstarted() -> None:
            try:
                await _close(batches)
            finally:
                await self._pipeline.finish(
                    turn, status=UsageStatus.CANCELLED, usage=None, error="closed before reading"
                )

        return ChatStream(self._relay(turn, batches, first), close_unstarted)

    async def _relay(
        self, turn: ChatTurn, batches: AsyncIterator[Sequence[StreamEvent]], first: Sequence[StreamEvent]
    ) -> AsyncGenerator[Sequence[StreamEvent], None]:
        """The upstream's batches as they come (the first one given), with the books kept on every event."""
        usage = Usage()
        chars = 0
        status = UsageStatus.CANCELLED
        error: str | None = None
        batch = first
        following = batches.__anext__
        try:
            head = first[0]
            if isinstance(head, MessageStarted):
                usage = usage.merged(head.usage)
                origin = turn.slot.call.upstream.kind.value if turn.slot is not None else ""
                head = MessageStarted(
                    id=head.id, model=turn.request.model, usage=head.usage, origin=origin, relayed=head.relayed
                )
                batch = (head, *first[1:])
            while True:
                for event in batch:
                    kind = type(event)
                    if kind is TextDelta:  # PERF: most events of a translated stream; one check, not a chain
                        chars += len(event.text)  # type: ignore[union-attr]
                    elif kind is Relayed:
                        chars += event.events * CHARS_PER_TOKEN  # type: ignore[union-attr]  # a chunk: about a token
                    elif kind is MessageStarted:
                        continue  # the first one's usage is counted above; a dialect sends no second
                    elif isinstance(event, TextDelta | ThinkingDelta):
                        chars += len(event.text)
                    elif isinstance(event, ToolCallDelta):
                        chars += len(event.fragment)
                    elif isinstance(event, ToolCallStarted) and event.signature and turn.slot is not None:
                        self._signatures.remember(event.id, event.signature, turn.slot.call.upstream.kind.value)
                    elif isinstance(event, UsageReported):
                        usage = usage.merged(event.usage)
                    elif isinstance(event, StreamFailed):
                        status, error = UsageStatus.UPSTREAM_ERROR, event.message
                yield batch
                try:
                    batch = await following()
                except StopAsyncIteration:
                    break
            if status is UsageStatus.CANCELLED:
                status = UsageStatus.SUCCESS
        except Exception as exc:  # noqa: BLE001 - an adapter fault after the first byte ends the stream in-band
            status, error = UsageStatus.UPSTREAM_ERROR, f"{type(exc).__name__}: {exc}"
            yield (StreamFailed(kind=FailureKind.UPSTREAM, message="The upstream stream broke off."),)
        finally:
            try:
                await _close(batches)
            finally:
                if not usage.output_tokens and chars:
                    usage = Usage(
                        input_tokens=usage.input_tokens or turn.input_estimate,
                        output_tokens=max(1, chars // CHARS_PER_TOKEN),
                        cached_input_tokens=usage.cached_input_tokens,
                    )
                await self._pipeline.finish(turn, status=status, usage=usage, error=error)


class ChatStream(AsyncIterator[StreamEvent]):
    """The relay, read one event at a time (a library caller) or by the upstream read that brought them
    (``batches()``: the HTTP entrypoint, which writes each read's events in one send). Closable before its
    first read too: an async generator that was never started runs no ``finally`` on ``aclose()``, and the
    books must close however the stream ends."""

    __slots__ = ("_close_unstarted", "_events", "_relay", "_started")

    def __init__(
        self,
        relay: AsyncGenerator[Sequence[StreamEvent], None],
        close_unstarted: Callable[[], Awaitable[None]],
    ) -> None:
        self._relay = relay
        self._close_unstarted = close_unstarted
        self._started = False
        self._events: AsyncGenerator[StreamEvent, None] | None = None

    def __aiter__(self) -> ChatStream:
        return self

    def __anext__(self) -> Awaitable[StreamEvent]:
        self._started = True
        if self._events is None:
            self._events = one_by_one(self._relay)
        return self._events.__anext__()

    def batches(self) -> ChatBatches:
        """The events per upstream read, never an empty batch. Read the stream one way or the other."""
        return ChatBatches(self)

    def next_batch(self) -> Awaitable[Sequence[StreamEvent]]:
        # PERF: the relay's own awaitable, not a coroutine around it: one frame less per read
        self._started = True
        return self._relay.__anext__()

    async def aclose(self) -> None:
        if not self._started:
            self._started = True
            await self._close_unstarted()
        if self._events is not None:
            await self._events.aclose()
        await self._relay.aclose()


class ChatBatches(AsyncIterator[Sequence[StreamEvent]]):
    """``ChatStream.batches()``: closing it closes the stream."""

    __slots__ = ("_stream",)

    def __init__(self, stream: ChatStream) -> None:
        self._stream = stream

    def __aiter__(self) -> ChatBatches:
        return self

    def __anext__(self) -> Awaitable[Sequence[StreamEvent]]:
        return self._stream.next_batch()

    async def aclose(self) -> None:
        await self._stream.aclose()


async def _close(batches: AsyncIterator[object]) -> None:
    """Close the batches, and so the adapter's stream under them (``batches_of``)."""
    aclose = getattr(batches, "aclose", None)
    if aclose is not None:
        await aclose()
