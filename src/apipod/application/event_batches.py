"""An upstream stream's events taken per network read (``EventBatches``), and back one by one: how the
stream relay reads any upstream adapter, and how a reader of events one by one reads the relay."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from typing import cast

from apipod.application.ports.upstream import EventBatches
from apipod.domain.stream import StreamEvent


def batches_of(events: AsyncIterator[StreamEvent]) -> AsyncIterator[Sequence[StreamEvent]]:
    """``events`` per read when the adapter offers that, else each event a batch of its own. Either way,
    closing the batches closes the adapter's stream.

    PERF: asked with ``hasattr``, not ``isinstance`` on the protocol: Python's check of a runtime protocol
    walks its attributes in Python, some 300 bytecodes per stream."""
    if hasattr(events, "batches"):
        return cast(EventBatches, events).batches()
    return _each_alone(events)


async def _each_alone(events: AsyncIterator[StreamEvent]) -> AsyncGenerator[Sequence[StreamEvent], None]:
    """Closing these batches closes ``events``, as closing an adapter's own batches closes its stream."""
    try:
        async for event in events:
            yield (event,)
    finally:
        aclose = getattr(events, "aclose", None)
        if aclose is not None:
            await aclose()


async def one_by_one(batches: AsyncIterator[Sequence[StreamEvent]]) -> AsyncGenerator[StreamEvent, None]:
    """The events of ``batches``, one at a time. Closing this does not close ``batches``."""
    async for batch in batches:
        for event in batch:
            yield event
