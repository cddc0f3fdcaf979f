"""Telemetry: what the request path reports about itself (metrics, the access log), as one port.

The pipeline calls it at a few points only (a request's end with everything its usage row has, a failover,
a wait in the queue, a refusal), never per chunk, so an implementation costs a handful of counter updates
per request. Gauges (in flight, queue depth, resting accounts) are read when scraped, not pushed.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Protocol

import attrs

from apipod.domain.chat import Usage
from apipod.domain.usage import Attempt, UsageStatus


@attrs.frozen(slots=True)
class FinishedRequest:
    """A chat request at its end: what its usage row says, plus the labels metrics need.

    Attributes:
        route: the plan alias the client named, or ``default``; never the raw model string (it is free text).
        provider, model, account: where it was served ("" when no upstream was reached).
        duration, ttft: seconds from arrival to the end and to the upstream's first event.
    """

    request_id: str
    key_id: str
    plan: str
    route: str
    requested_model: str
    provider: str
    model: str
    account: str
    status: UsageStatus
    usage: Usage
    duration: float
    ttft: float | None
    attempts: tuple[Attempt, ...]


class Telemetry(Protocol):
    def request_finished(self, finished: FinishedRequest, dialect: str) -> None:
        """Once per admitted chat request, however it ended."""
        ...

    def response_sent(self, dialect: str, status: int) -> None:
        """Once per HTTP response (any route), with its status."""
        ...

    def failover(self, provider: str, model: str, reason: str) -> None:
        """An attempt failed before the first byte and the request moves on; ``reason`` is an error class."""
        ...

    def queue_wait(self, seconds: float, *, served: bool) -> None:
        """A request waited in the WaitQueue; ``served``: False when it gave up at its deadline."""
        ...

    def refused(self, plan: str, reason: str) -> None:
        """A request refused by the gateway's own rules (``budget``, ``key_rpm``)."""
        ...


class NoTelemetry:
    """The default: reports nothing."""

    __slots__ = ()

    def request_finished(self, finished: FinishedRequest, dialect: str) -> None:
        return None

    def response_sent(self, dialect: str, status: int) -> None:
        return None

    def failover(self, provider: str, model: str, reason: str) -> None:
        return None

    def queue_wait(self, seconds: float, *, served: bool) -> None:
        return None

    def refused(self, plan: str, reason: str) -> None:
        return None


class MetricsPage(Protocol):
    """The metrics in an exposition format, for ``GET /metrics``."""

    def render(self) -> tuple[bytes, str]:
        """The body and its content type."""
        ...


class RequestNotes:
    """One HTTP request's notes, shared by the code serving it through ``REQUEST_NOTES``: its id (for log
    lines), the client's dialect (a metrics label), and the finished chat request (for the access log).

    The HTTP entrypoint sets it when a request arrives; the pipeline fills ``finished``. A context variable
    rather than a parameter because log lines come from every layer and the pipeline's callers have no
    say in it."""

    __slots__ = ("dialect", "finished", "request_id")

    def __init__(self, request_id: str, dialect: str = "") -> None:
        self.request_id = request_id
        self.dialect = dialect
        self.finished: FinishedRequest | None = None


REQUEST_NOTES: ContextVar[RequestNotes | None] = ContextVar("apipod_request_notes", default=None)
