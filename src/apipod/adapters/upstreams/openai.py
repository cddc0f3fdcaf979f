"""OpenAI-compatible upstreams (OpenAI, Groq, DeepSeek, OpenRouter, vLLM...): Chat Completions over HTTP, and
the Responses API for Responses clients when the upstream offers it.

``base_url`` includes the version path, as the OpenAI SDK's does (``https://api.openai.com/v1``);
apipod appends ``/chat/completions``, ``/responses`` and ``/models``. See docs/protocols/openai-chat.md and
docs/protocols/openai-responses.md.
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
from apipod.dialects.openai.stream_relay import StreamRelay
from apipod.dialects.responses import upstream_request as responses_request
from apipod.dialects.responses import upstream_response as responses_response
from apipod.dialects.responses import upstream_stream as responses_stream
from apipod.domain.catalog import Upstream, UpstreamKind
from apipod.domain.chat import ChatRequest, ChatResult
from apipod.domain.errors import UpstreamError, UpstreamUnavailableError
from apipod.domain.stream import StreamEvent

RESPONSES_OPTION = "responses_api"
"""The upstream option that says it serves ``/responses``: a Responses client's body is then forwarded as it is."""


class OpenAIUpstream(UpstreamClient):
    """Talks to one kind of upstream: anything that speaks OpenAI Chat Completions.

    The account's secret goes in ``Authorization: Bearer`` (left out when empty, for keyless local
    servers); the upstream's configured ``headers`` are added last, so they may override (Azure's
    ``api-key``, ``OpenAI-Organization``).

    A request that arrived as a Responses body goes to ``/responses`` untranslated when the upstream's
    ``responses_api`` option is on (and ``responses`` allows it: Copilot's delegate does not); otherwise
    it is translated to Chat Completions like any other dialect.
    """

    kind = UpstreamKind.OPENAI

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        retry: RetryPolicy = DEFAULT_RETRY,
        reasoning_opaque: bool = False,
        clock: Clock | None = None,
        responses: bool = True,
    ) -> None:
        self._http = UpstreamHttp(client, decode_error=dated(dialect.decode_error, clock), retry=retry)
        self._opaque = reasoning_opaque
        self._responses = responses

    async def complete(self, call: UpstreamCall, request: ChatRequest) -> ChatResult:
        if self._forwards_responses(call.upstream, request):
            return await self._complete_responses(call, request)
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
        if self._forwards_responses(call.upstream, request):
            return self._http.stream(
                call.upstream,
                join_url(call.upstream.base_url, "/responses"),
                headers=_headers(call.upstream, call.account.secret),
                body=responses_request.encode_passthrough(
                    request, model=call.model.upstream_model, stream=True, origin=self.kind
                ),
                decoder=responses_stream.StreamDecoder(),
            )
        body = dialect.encode_request(
            request, model=call.model.upstream_model, stream=True, reasoning_opaque=self._opaque
        )
        url = join_url(call.upstream.base_url, "/chat/completions")
        headers = _headers(call.upstream, call.account.secret)
        if request.dialect == "openai" and request.raw is not None and not self._opaque:
            # Same dialect: the upstream's chunks go to the client as they came (dialects/openai/stream_relay.py).
            relay = StreamRelay(model=request.model, include_usage=_asks_usage(request.raw))
            return self._http.stream(call.upstream, url, headers=headers, body=body, relay=relay)
        return self._http.stream(call.upstream, url, headers=headers, body=body, decoder=dialect.StreamDecoder())

    def _forwards_responses(self, upstream: Upstream, request: ChatRequest) -> bool:
        return (
            self._responses
            and request.dialect == "responses"
            and request.raw is not None
            and option_on(upstream.options.get(RESPONSES_OPTION))
        )

    async def _complete_responses(self, call: UpstreamCall, request: ChatRequest) -> ChatResult:
        body = responses_request.encode_passthrough(
            request, model=call.model.upstream_model, stream=False, origin=self.kind
        )
        answer = await self._http.request_json(
            call.upstream,
            "POST",
            join_url(call.upstream.base_url, "/responses"),
            headers=_headers(call.upstream, call.account.secret),
            body=body,
        )
        if not isinstance(answer, Mapping):
            raise UpstreamUnavailableError("The upstream's answer is not a JSON object.", upstream=call.upstream.name)
        try:
            result = responses_response.decode_response(answer)
        except UpstreamError as exc:
            exc.upstream = call.upstream.name
            raise
        return result if result.model else attrs.evolve(result, model=call.model.upstream_model)

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


def option_on(value: object) -> bool:
    """A boolean option as written in the catalog (``true``, or the string ``"true"`` from a flat source)."""
    return value is True or (isinstance(value, str) and value.strip().lower() in ("true", "1", "yes", "on"))


def _headers(upstream: Upstream, secret: str) -> dict[str, str]:
    return merge_headers({"authorization": f"Bearer {secret}"} if secret else {}, upstream.headers)


def _asks_usage(raw: Mapping[str, object]) -> bool:
    """Whether an OpenAI client asked for the usage chunk (``stream_options.include_usage``)."""
    options = raw.get("stream_options")
    return isinstance(options, Mapping) and options.get("include_usage") is True
