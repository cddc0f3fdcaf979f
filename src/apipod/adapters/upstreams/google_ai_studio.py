"""Google AI Studio (the Gemini Developer API): ``generateContent`` and ``streamGenerateContent?alt=sse``.

``base_url`` is the host (default ``https://generativelanguage.googleapis.com``); apipod appends
``/v1beta/models/{model}:generateContent``, the streaming method and ``/v1beta/models``. The key travels in
``x-goog-api-key``, never in the URL (URLs end up in logs). See docs/protocols/gemini.md.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from urllib.parse import quote

import attrs
import httpx

from apipod.adapters.retry import DEFAULT_RETRY, RetryPolicy
from apipod.adapters.upstreams._faults import dated
from apipod.adapters.upstreams._http import UpstreamHttp, join_url
from apipod.application.ports import Clock, UpstreamCall, UpstreamClient
from apipod.dialects import gemini as dialect
from apipod.dialects.gemini.request import forwards_raw
from apipod.domain.catalog import Upstream, UpstreamKind
from apipod.domain.chat import ChatRequest, ChatResult
from apipod.domain.errors import UpstreamUnavailableError
from apipod.domain.stream import StreamEvent

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com"
_PAGE_SIZE = 1000
_MAX_PAGES = 20


class GoogleAIStudioUpstream(UpstreamClient):
    """Talks to Google AI Studio with the account's API key.

    Gemini rarely returns tool call ids, so the codec makes them (``ids``: injectable for tests). Tool
    names Gemini would reject are rewritten on the way out and restored on the way back. The upstream's
    configured ``headers`` are added first; the key header always wins. A Gemini client's own body is
    forwarded as it is (its names untouched), not translated.
    """

    kind = UpstreamKind.GOOGLE_AI_STUDIO

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        retry: RetryPolicy = DEFAULT_RETRY,
        ids: dialect.IdFactory = dialect.new_call_id,
        clock: Clock | None = None,
    ) -> None:
        self._http = UpstreamHttp(client, decode_error=dated(dialect.decode_error, clock), retry=retry)
        self._ids = ids

    async def complete(self, call: UpstreamCall, request: ChatRequest) -> ChatResult:
        model = _model_id(call.model.upstream_model)
        body = dialect.encode_request(request, model=model, stream=False)
        answer = await self._http.request_json(
            call.upstream,
            "POST",
            _method_url(call.upstream, model, "generateContent"),
            headers=_headers(call.upstream, call.account.secret),
            body=body,
        )
        if not isinstance(answer, Mapping):
            raise UpstreamUnavailableError("The upstream's answer is not a JSON object.", upstream=call.upstream.name)
        result = dialect.decode_response(answer, ids=self._ids, names=_names(request))
        return result if result.model else attrs.evolve(result, model=model)

    def stream(self, call: UpstreamCall, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        # The body is encoded now (pure, cheap); the request itself opens on the first __anext__.
        model = _model_id(call.model.upstream_model)
        body = dialect.encode_request(request, model=model, stream=True)
        return self._http.stream(
            call.upstream,
            _method_url(call.upstream, model, "streamGenerateContent") + "?alt=sse",
            headers=_headers(call.upstream, call.account.secret),
            body=body,
            decoder=dialect.StreamDecoder(ids=self._ids, names=_names(request)),
        )

    async def list_models(self, upstream: Upstream) -> list[str]:
        """``GET /v1beta/models`` with the pool's first account, every page; only models that can
        ``generateContent`` (the list also holds embedding, imagen and TTS models), without ``models/``."""
        secret = upstream.accounts[0].secret if upstream.accounts else ""
        url = join_url(_base_url(upstream), "/v1beta/models")
        names: list[str] = []
        token = ""
        for _ in range(_MAX_PAGES):
            query = f"?pageSize={_PAGE_SIZE}" + (f"&pageToken={quote(token, safe='')}" if token else "")
            answer = await self._http.request_json(upstream, "GET", url + query, headers=_headers(upstream, secret))
            if not isinstance(answer, Mapping):
                break
            for entry in answer.get("models") or ():
                if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str):
                    continue
                if "generateContent" in (entry.get("supportedGenerationMethods") or ()):
                    names.append(_model_id(entry["name"]))
            token = answer.get("nextPageToken") or ""
            if not isinstance(token, str) or not token:
                break
        return names


def _names(request: ChatRequest) -> dict[str, str]:
    """Wire name -> client name; nothing to restore when the client's body went as it is."""
    return {} if forwards_raw(request) else dialect.tool_name_map(request)


def _base_url(upstream: Upstream) -> str:
    return upstream.base_url or DEFAULT_BASE_URL


def _model_id(name: str) -> str:
    """Resource names carry a ``models/`` prefix; URLs want the bare id."""
    return name.removeprefix("models/")


def _method_url(upstream: Upstream, model: str, method: str) -> str:
    return join_url(_base_url(upstream), f"/v1beta/models/{model}:{method}")


def _headers(upstream: Upstream, secret: str) -> dict[str, str]:
    headers = dict(upstream.headers)
    if secret:
        headers["x-goog-api-key"] = secret
    return headers
