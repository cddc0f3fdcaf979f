from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Protocol, runtime_checkable

import attrs

from apipod.domain.catalog import Account, Upstream, UpstreamModel
from apipod.domain.chat import ChatRequest, ChatResult
from apipod.domain.stream import StreamEvent


@attrs.frozen
class UpstreamCall:
    """Where one attempt goes: an upstream, one account of its pool, and the model there."""

    upstream: Upstream
    account: Account
    model: UpstreamModel

    @property
    def label(self) -> str:
        return f"{self.upstream.name}/{self.account.label}"


class UpstreamClient(Protocol):
    """Talks to upstreams of one kind. Errors come out as ``apipod.domain.errors.UpstreamError``s."""

    async def complete(self, call: UpstreamCall, request: ChatRequest) -> ChatResult:
        """One non-streamed answer. ``result.model`` is the upstream's model name."""
        ...

    def stream(self, call: UpstreamCall, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        """Canonical events as they arrive. Errors before the first event are raised from the first
        ``__anext__``; errors after it end the stream with ``StreamFailed``. Closing the iterator early
        cancels the upstream request. The iterator may also be ``EventBatches``."""
        ...

    async def list_models(self, upstream: Upstream) -> list[str]:
        """Model ids the upstream offers (best effort; may be empty)."""
        ...


@runtime_checkable
class EventBatches(Protocol):
    """What an upstream stream may offer besides its events one by one: the events of each network read
    together, in order, never an empty batch. The same rules hold per batch as per event (errors before the
    first batch are raised from it; closing the stream closes the batches). Use one way or the other.

    PERF: one upstream read often brings many events (a fast upstream, a busy machine). Taken together, the
    layers between the upstream and the client's socket (the relay's books, the encoder's loop, the ASGI
    send) do their per-step work once per read instead of once per event; the client still gets every
    event, encoded one by one, in one write."""

    def batches(self) -> AsyncIterator[Sequence[StreamEvent]]: ...


class UpstreamRegistry(Protocol):
    def client_for(self, upstream: Upstream) -> UpstreamClient:
        """The client for ``upstream.kind``. Raises NotFoundError for a kind with no client."""
        ...
