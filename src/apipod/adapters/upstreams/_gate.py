"""The first-event rule of ``UpstreamClient.stream``, applied to a dialect decoder's output."""

from __future__ import annotations

import logging

from apipod.domain.catalog import Upstream
from apipod.domain.errors import (
    UpstreamError,
    UpstreamOverloadedError,
    UpstreamRateLimitedError,
    UpstreamUnavailableError,
)
from apipod.domain.stream import FailureKind, Finished, MessageStarted, StreamEvent, StreamFailed, UsageReported

log = logging.getLogger("apipod.upstream")


def failure_error(event: StreamFailed, upstream: Upstream) -> UpstreamError:
    """An in-stream error that arrived before anything was relayed: an ordinary error, so it fails over."""
    if event.kind is FailureKind.OVERLOADED:
        return UpstreamOverloadedError(event.message, upstream=upstream.name, detail=event.detail)
    if event.kind is FailureKind.RATE_LIMITED:
        return UpstreamRateLimitedError(event.message, upstream=upstream.name, detail=event.detail)
    return UpstreamUnavailableError(event.message, upstream=upstream.name, detail=event.detail)


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
            if isinstance(events[-1], StreamFailed) and events[-1].detail:
                # The operator's copy of what the upstream said; the client got only ``message``.
                log.warning("upstream %s failed mid-stream: %s", upstream.name, events[-1].detail)
            self.done = True
            self.finished = isinstance(events[-1], Finished)
        return events
