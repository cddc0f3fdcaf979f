"""The first-event rule of ``UpstreamClient.stream``, applied to a dialect decoder's output."""

from __future__ import annotations

from apipod.domain.catalog import Upstream
from apipod.domain.errors import (
    UpstreamError,
    UpstreamOverloadedError,
    UpstreamRateLimitedError,
    UpstreamUnavailableError,
)
from apipod.domain.stream import Finished, MessageStarted, StreamEvent, StreamFailed, UsageReported


def failure_error(event: StreamFailed, upstream: Upstream) -> UpstreamError:
    """An in-stream error that arrived before anything was relayed: an ordinary error, so it fails over."""
    if event.kind == "overloaded":
        return UpstreamOverloadedError(event.message, upstream=upstream.name)
    if event.kind == "rate_limited":
        return UpstreamRateLimitedError(event.message, upstream=upstream.name)
    return UpstreamUnavailableError(event.message, upstream=upstream.name)


class Gate:
    """Holds ``MessageStarted``/``UsageReported`` back until the first event that commits the stream.

    Why: Anthropic may answer 200, send ``message_start``, then an ``overloaded_error`` event. Held back, that
    failure comes out of the first ``__anext__`` as an error the dispatcher fails over, instead of a stream
    that already started and can only end in ``StreamFailed``.
    """

    __slots__ = ("done", "finished", "held", "open")

    def __init__(self) -> None:
        self.held: list[StreamEvent] = []
        self.open = False
        self.done = False  # a terminal event went out
        self.finished = False  # ... and it was Finished, so the body should end right away

    def admit(self, events: list[StreamEvent], upstream: Upstream) -> list[StreamEvent]:
        """The events to relay now (none while holding back). A ``StreamFailed`` before the stream committed
        is raised as the matching ``UpstreamError`` instead."""
        if not self.open:
            self.held.extend(events)
            first = next((e for e in self.held if not isinstance(e, MessageStarted | UsageReported)), None)
            if first is None:
                return []
            if isinstance(first, StreamFailed):
                raise failure_error(first, upstream)
            self.open = True
            events, self.held = self.held, []
        if events and isinstance(events[-1], Finished | StreamFailed):
            self.done = True
            self.finished = isinstance(events[-1], Finished)
        return events
