"""An upstream stream that is read one event at a time (the ``UpstreamClient.stream`` port) or per network
read (``EventBatches``): the adapters' streams are made per read, and the port's view is made on demand."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Sequence

from apipod.application.event_batches import one_by_one
from apipod.domain.stream import StreamEvent


class BatchedStream(AsyncIterator[StreamEvent]):
    """``batches``, an async generator of the events of each read (never an empty batch), seen both ways.
    The request behind it opens on the first read, whichever way, and closing this closes it."""

    __slots__ = ("_batches", "_events")

    def __init__(self, batches: AsyncGenerator[Sequence[StreamEvent], None]) -> None:
        self._batches = batches
        self._events: AsyncGenerator[StreamEvent, None] | None = None

    def batches(self) -> AsyncGenerator[Sequence[StreamEvent], None]:
        return self._batches

    def __aiter__(self) -> BatchedStream:
        return self

    async def __anext__(self) -> StreamEvent:
        if self._events is None:
            self._events = one_by_one(self._batches)
        return await anext(self._events)

    async def aclose(self) -> None:
        try:
            if self._events is not None:
                await self._events.aclose()
        finally:
            await self._batches.aclose()
