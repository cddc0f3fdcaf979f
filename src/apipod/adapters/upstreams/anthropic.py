"""Anthropic-compatible upstreams (Anthropic, and gateways that speak Messages): ``/v1/messages`` over HTTP.

``base_url`` has no version path, as the Anthropic SDK's does (``https://api.anthropic.com``); apipod
appends ``/v1/messages`` and ``/v1/models``. See docs/protocols/anthropic-messages.md.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from urllib.parse import urlencode

import attrs
import httpx

from apipod.adapters.retry import DEFAULT_RETRY, RetryPolicy
from apipod.adapters.upstreams._faults import dated
from apipod.adapters.upstreams._http import UpstreamHttp, join_url, merge_headers
from apipod.application.ports import Clock, UpstreamCall, UpstreamClient
from apipod.dialects import anthropic as dialect
from apipod.dialects.anthropic.stream_relay import StreamRelay
from apipod.domain.catalog import Upstream, UpstreamKind
from apipod.domain.chat import ChatRequest, ChatResult
from apipod.domain.errors import UpstreamUnavailableError
from apipod.domain.stream import StreamEvent

API_VERSION = "2023-06-01"
_BETA = "anthropic-beta"
_MODEL_PAGES = 10  # a models listing longer than 10 pages of 1000 is not a real upstream


class AnthropicUpstream(UpstreamClient):
    """Talks to upstreams that speak Anthropic Messages.

    Sends ``x-api-key`` and ``anthropic-version``. A client's ``anthropic-beta`` flags are forwarded when
    the request arrived in the Anthropic dialect (Claude Code relies on them); flags configured in the
    upstream's ``headers`` are added to the client's rather than replacing them.
    """

    kind = UpstreamKind.ANTHROPIC

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        retry: RetryPolicy = DEFAULT_RETRY,
        clock: Clock | None = None,
        relay: bool = True,
    ) -> None:
        """``relay``: an Anthropic client's stream is relayed in the upstream's bytes (Copilot's delegate decodes
        its answers, whose signatures it tags)."""
        self._http = UpstreamHttp(client, decode_error=dated(dialect.decode_error, clock), retry=retry)
        self._relay = relay

    async def complete(self, call: UpstreamCall, request: ChatRequest) -> ChatResult:
        body = dialect.encode_request(request, model=call.model.upstream_model, stream=False)
        answer = await self._http.request_json(
            call.upstream,
            "POST",
            join_url(call.upstream.base_url, "/v1/messages"),
            headers=_headers(call.upstream, call.account.secret, request),
            body=body,
        )
        if not isinstance(answer, Mapping):
            raise UpstreamUnavailableError("The upstream's answer is not a JSON object.", upstream=call.upstream.name)
        result = dialect.decode_response(answer)
        return result if result.model else attrs.evolve(result, model=call.model.upstream_model)

    def stream(self, call: UpstreamCall, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        # The body is encoded now (pure, cheap); the request itself opens on the first __anext__.
        body = dialect.encode_request(request, model=call.model.upstream_model, stream=True)
        url = join_url(call.upstream.base_url, "/v1/messages")
        headers = _headers(call.upstream, call.account.secret, request)
        if self._relay and request.dialect == "anthropic" and request.raw is not None:
            # Same dialect: the upstream's events go to the client as they came (dialects/anthropic/stream_relay.py).
            relay = StreamRelay(model=request.model)
            return self._http.stream(call.upstream, url, headers=headers, body=body, relay=relay)
        return self._http.stream(call.upstream, url, headers=headers, body=body, decoder=dialect.StreamDecoder())

    async def list_models(self, upstream: Upstream) -> list[str]:
        """``GET /v1/models`` page by page with the pool's first account; ids in the upstream's order."""
        secret = upstream.accounts[0].secret if upstream.accounts else ""
        headers = _headers(upstream, secret, None)
        names: list[str] = []
        after: str | None = None
        for _ in range(_MODEL_PAGES):
            query = "?" + urlencode({"limit": 1000, **({"after_id": after} if after else {})})
            page = await self._http.request_json(
                upstream, "GET", join_url(upstream.base_url, "/v1/models" + query), headers=headers
            )
            data = page.get("data") if isinstance(page, Mapping) else None
            if not isinstance(data, list):
                break
            names.extend(m["id"] for m in data if isinstance(m, Mapping) and isinstance(m.get("id"), str))
            last = page.get("last_id")
            if page.get("has_more") is not True or not isinstance(last, str) or not last:
                break
            after = last
        return names


def _headers(upstream: Upstream, secret: str, request: ChatRequest | None) -> dict[str, str]:
    headers = {"anthropic-version": API_VERSION}
    if secret:
        headers["x-api-key"] = secret
    client_beta = request.raw_headers.get(_BETA) if request is not None and request.dialect == "anthropic" else None
    if client_beta:
        headers[_BETA] = client_beta
    merge_headers(headers, upstream.headers)
    if client_beta and headers[_BETA] != client_beta:
        headers[_BETA] = f"{client_beta},{headers[_BETA]}"
    return headers
