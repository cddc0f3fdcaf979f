from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

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
        cancels the upstream request."""
        ...

    async def list_models(self, upstream: Upstream) -> list[str]:
        """Model ids the upstream offers (best effort; may be empty)."""
        ...


class UpstreamRegistry(Protocol):
    def client_for(self, upstream: Upstream) -> UpstreamClient:
        """The client for ``upstream.kind``. Raises NotFoundError for a kind with no client."""
        ...
