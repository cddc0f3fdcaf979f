"""OpenAI-compatible upstreams (OpenAI, Groq, DeepSeek, OpenRouter, vLLM...): Chat Completions over HTTP.

``base_url`` includes the version path, as the OpenAI SDK's does (``https://api.openai.com/v1``);
apipod appends ``/chat/completions`` and ``/models``. See docs/protocols/openai-chat.md.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

import attrs
import httpx

from apipod.adapters.retry import DEFAULT_RETRY, RetryPolicy
from apipod.adapters.upstreams._faults import dated
from apipod.adapters.upstreams._http import UpstreamHttp, join_url, merge_headers
from apipod.application.ports import Clock, UpstreamCall, UpstreamClient
from apipod.dialects import openai as dialect
from apipod.domain.catalog import Upstream, UpstreamKind
from apipod.domain.chat import ChatRequest, ChatResult
from apipod.domain.errors import UpstreamUnavailableError
from apipod.domain.stream import StreamEvent


class OpenAIUpstream(UpstreamClient):
    """Talks to one kind of upstream: anything that speaks OpenAI Chat Completions.

    The account's secret goes in ``Authorization: Bearer`` (left out when empty, for keyless local
    servers); the upstream's configured ``headers`` are added last, so they may override (Azure's
    ``api-key``, ``OpenAI-Organization``).
    """

    kind = UpstreamKind.OPENAI

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        retry: RetryPolicy = DEFAULT_RETRY,
        reasoning_opaque: bool = False,
        clock: Clock | None = None,
    ) -> None:
        self._http = UpstreamHttp(client, decode_error=dated(dialect.decode_error, clock), retry=retry)
        self._opaque = reasoning_opaque

    async def complete(self, call: UpstreamCall, request: ChatRequest) -> ChatResult:
        body = dialect.encode_request(
            request, model=call.model.upstream_model, stream=False, reasoning_opaque=self._opaque
        )
        answer = await self._http.request_json(
            call.upstream,
            "POST",
            join_url(call.upstream.base_url, "/chat/completions"),
            headers=_headers(call.upstream, call.account.secret),
            body=body,
        )
        if not isinstance(answer, Mapping):
            raise UpstreamUnavailableError("The upstream's answer is not a JSON object.", upstream=call.upstream.name)
        result = dialect.decode_response(answer)
        return result if result.model else attrs.evolve(result, model=call.model.upstream_model)

    def stream(self, call: UpstreamCall, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        # The body is encoded now (pure, cheap); the request itself opens on the first __anext__.
        body = dialect.encode_request(
            request, model=call.model.upstream_model, stream=True, reasoning_opaque=self._opaque
        )
        return self._http.stream(
            call.upstream,
            join_url(call.upstream.base_url, "/chat/completions"),
            headers=_headers(call.upstream, call.account.secret),
            body=body,
            decoder=dialect.StreamDecoder(),
        )

    async def list_models(self, upstream: Upstream) -> list[str]:
        """``GET /models`` with the pool's first account; ids in the upstream's order."""
        secret = upstream.accounts[0].secret if upstream.accounts else ""
        answer = await self._http.request_json(
            upstream, "GET", join_url(upstream.base_url, "/models"), headers=_headers(upstream, secret)
        )
        data = answer.get("data") if isinstance(answer, Mapping) else None
        if not isinstance(data, list):
            return []
        return [m["id"] for m in data if isinstance(m, Mapping) and isinstance(m.get("id"), str)]


def _headers(upstream: Upstream, secret: str) -> dict[str, str]:
    return merge_headers({"authorization": f"Bearer {secret}"} if secret else {}, upstream.headers)
