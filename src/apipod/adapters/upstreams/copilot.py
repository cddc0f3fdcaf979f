"""GitHub Copilot upstreams: chat through Copilot's API ("CAPI") with tokens minted from GitHub tokens.

Accounts are GitHub tokens (``apipod copilot login`` or ``github_tokens``); ``copilot_auth`` trades each
for a short-lived Copilot token. Chat goes to the OpenAI-compatible ``/chat/completions``, except for
models whose Copilot model entry lists ``/v1/messages``: those speak Anthropic Messages natively, which
keeps thinking blocks and their signatures. The HTTP work is ``OpenAIUpstream``'s and
``AnthropicUpstream``'s, reached with a per-request view of the upstream (Copilot's base URL, token and
headers). See docs/protocols/copilot.md.
"""

from __future__ import annotations

import functools
import re
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any

import attrs
import httpx

from apipod.adapters.retry import DEFAULT_RETRY, RetryPolicy
from apipod.adapters.upstreams._faults import dated
from apipod.adapters.upstreams._http import UpstreamHttp, join_url, merge_headers
from apipod.adapters.upstreams._single_flight import SingleFlight
from apipod.adapters.upstreams.anthropic import AnthropicUpstream
from apipod.adapters.upstreams.copilot_auth import (
    DEFAULT_INTEGRATION_ID,
    CopilotToken,
    CopilotTokens,
    editor_headers,
)
from apipod.adapters.upstreams.openai import OpenAIUpstream
from apipod.application.ports import Clock, UpstreamCall, UpstreamClient
from apipod.dialects import openai
from apipod.domain.catalog import Account, Upstream, UpstreamKind
from apipod.domain.chat import ChatRequest, ChatResult, ImagePart, Message, Role, ToolResultPart, ToolUsePart
from apipod.domain.errors import UpstreamAuthError, UpstreamError
from apipod.domain.stream import StreamEvent

MESSAGES_ENDPOINT = "/v1/messages"
MODELS_TTL = 3600.0  # how long an account's model list decides routing
_MODELS_RETRY = 60.0  # after a failed model listing, route everything to /chat/completions this long
# Claude Code betas Copilot's /v1/messages rejects (docs/protocols/copilot.md §4).
_DROPPED_BETAS = frozenset({"claude-code-20250219", "context-1m-2025-08-07"})
_DASHED_CLAUDE = re.compile(r"^(claude-[a-z]+-\d+)-(\d)(?:-\d{8})?$")


@attrs.frozen
class _Models:
    native: frozenset[str]  # models served on /v1/messages
    until: float


class CopilotUpstream(UpstreamClient):
    """Talks to GitHub Copilot.

    Options (``upstream.options``): ``token_url``, ``editor_version``, ``editor_plugin_version``,
    ``integration_id``, ``user_agent``. ``upstream.base_url`` set in the configuration overrides the API
    host the token exchange names. A chat answer of 401/403 drops the Copilot token and the request is sent
    once more with a fresh one; a second refusal is an ``UpstreamAuthError`` (the dispatcher fails over).
    """

    kind = UpstreamKind.COPILOT

    def __init__(self, client: httpx.AsyncClient, clock: Clock, *, retry: RetryPolicy = DEFAULT_RETRY) -> None:
        self._tokens = CopilotTokens(client, clock, retry=retry)
        self._clock = clock
        # NOTE: responses=False: a Responses client is translated to Chat Completions here (the reasoning items it
        # replays are tagged "copilot" and Copilot's /responses is not modelled).
        self._openai = OpenAIUpstream(client, retry=retry, reasoning_opaque=True, clock=clock, responses=False)
        self._anthropic = AnthropicUpstream(client, retry=retry, clock=clock, relay=False)
        self._http = UpstreamHttp(client, decode_error=dated(openai.decode_error, clock), retry=retry)
        self._models: dict[tuple[str, str], _Models] = {}
        self._models_flight: SingleFlight[tuple[str, str], _Models] = SingleFlight()

    async def complete(self, call: UpstreamCall, request: ChatRequest) -> ChatResult:
        secret = call.account.secret
        for attempt in (1, 2):
            token = await self._tokens.get(call.upstream, secret)
            client, routed, shaped = await self._prepare(call, request, token)
            try:
                return await client.complete(routed, shaped)
            except UpstreamAuthError:
                self._tokens.invalidate(call.upstream, secret, token)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def stream(self, call: UpstreamCall, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        return self._stream(call, request)

    async def _stream(self, call: UpstreamCall, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        secret = call.account.secret
        for attempt in (1, 2):
            token = await self._tokens.get(call.upstream, secret)
            client, routed, shaped = await self._prepare(call, request, token)
            events = client.stream(routed, shaped)
            try:
                first = await anext(events)
            except StopAsyncIteration:
                return
            except UpstreamAuthError:
                await _aclose(events)
                self._tokens.invalidate(call.upstream, secret, token)
                if attempt == 2:
                    raise
                continue
            try:
                yield first
                async for event in events:
                    yield event
            finally:
                await _aclose(events)
            return

    async def list_models(self, upstream: Upstream) -> list[str]:
        """Chat models of the pool's first account (``GET /models``), in Copilot's order."""
        if not upstream.accounts:
            return []
        token = await self._tokens.get(upstream, upstream.accounts[0].secret)
        entries = await self._fetch_models(upstream, token)
        return [entry["id"] for entry in entries if _is_chat_model(entry)]

    # -- routing ---------------------------------------------------------------------------------------------
    async def _prepare(
        self, call: UpstreamCall, request: ChatRequest, token: CopilotToken
    ) -> tuple[UpstreamClient, UpstreamCall, ChatRequest]:
        """The delegate client, the call it should make (Copilot's host, token, headers and model name)
        and the request shaped for Copilot."""
        upstream = call.upstream
        base = upstream.base_url or token.api_base
        model = copilot_model_name(call.model.upstream_model)
        headers = self._headers(upstream, request)
        native = model in await self._native_models(upstream, call.account.secret, token)
        if native:
            headers["authorization"] = f"Bearer {token.value}"
            account = Account(call.account.index, "", call.account.project)
            client: UpstreamClient = self._anthropic
            request = _without_dropped_betas(request)
        else:
            account = Account(call.account.index, token.value, call.account.project)
            client = self._openai
            request = _flatten_assistant_content(request)
        view = attrs.evolve(upstream, base_url=base, headers=merge_headers(headers, upstream.headers))
        upstream_model = (
            call.model if model == call.model.upstream_model else attrs.evolve(call.model, upstream_model=model)
        )
        return client, UpstreamCall(view, account, upstream_model), request

    def _headers(self, upstream: Upstream, request: ChatRequest) -> dict[str, str]:
        """Copilot's per-request headers (docs/protocols/copilot.md §5) without the token."""
        headers = _static_headers(upstream)
        headers["x-initiator"] = initiator(request)
        if _has_image(request.messages):
            headers["copilot-vision-request"] = "true"
        return headers

    async def _native_models(self, upstream: Upstream, secret: str, token: CopilotToken) -> frozenset[str]:
        key = (upstream.name, secret)
        models = self._models.get(key)
        if models is not None and self._clock.monotonic() < models.until:
            return models.native
        models = await self._models_flight.run(key, functools.partial(self._load_models, upstream, key, token))
        return models.native

    async def _load_models(self, upstream: Upstream, key: tuple[str, str], token: CopilotToken) -> _Models:
        try:
            entries = await self._fetch_models(upstream, token)
        except UpstreamError:
            # NOTE: routing is an optimisation: every Copilot chat model also answers on /chat/completions.
            models = _Models(frozenset(), self._clock.monotonic() + _MODELS_RETRY)
        else:
            native = frozenset(e["id"] for e in entries if MESSAGES_ENDPOINT in (e.get("supported_endpoints") or ()))
            models = _Models(native, self._clock.monotonic() + MODELS_TTL)
        self._models[key] = models
        return models

    async def _fetch_models(self, upstream: Upstream, token: CopilotToken) -> list[Mapping[str, Any]]:
        headers = _static_headers(upstream)
        headers["authorization"] = f"Bearer {token.value}"
        answer = await self._http.request_json(
            upstream,
            "GET",
            join_url(upstream.base_url or token.api_base, "/models"),
            headers=merge_headers(headers, upstream.headers),
        )
        data = answer.get("data") if isinstance(answer, Mapping) else None
        if not isinstance(data, list):
            return []
        return [m for m in data if isinstance(m, Mapping) and isinstance(m.get("id"), str)]


# -- request shaping (docs/protocols/copilot.md §5, §7) ----------------------------------------------------------------
def _static_headers(upstream: Upstream) -> dict[str, str]:
    headers = editor_headers(upstream.options)
    headers["copilot-integration-id"] = str(upstream.options.get("integration_id") or DEFAULT_INTEGRATION_ID)
    headers["openai-intent"] = "conversation-panel"
    headers["x-request-id"] = str(uuid.uuid4())
    return headers


def initiator(request: ChatRequest) -> str:
    """``agent`` for tool-loop continuations, ``user`` for a person's turn (docs/protocols/copilot.md §5.3), computed
    honestly: Copilot bills premium requests by it."""
    messages = request.messages
    if not messages:
        return "user"
    last = messages[-1]
    if last.role is Role.ASSISTANT or last.role is Role.TOOL:
        return "agent"
    if last.role is Role.USER and len(messages) > 1:
        previous = messages[-2]
        if previous.role is Role.ASSISTANT and any(isinstance(p, ToolUsePart) for p in previous.parts):
            return "agent"
        # An Anthropic user turn holding tool results decodes to a tool message plus a user message.
        if previous.role is Role.TOOL and request.dialect == "anthropic":
            return "agent"
    return "user"


def _has_image(messages: tuple[Message, ...]) -> bool:
    for message in messages:
        for part in message.parts:
            if isinstance(part, ImagePart):
                return True
            if isinstance(part, ToolResultPart) and any(isinstance(p, ImagePart) for p in part.content):
                return True
    return False


@functools.lru_cache(maxsize=256)
def copilot_model_name(name: str) -> str:
    """Copilot spells Claude versions with dots: ``claude-sonnet-4-5`` (and its dated form) becomes
    ``claude-sonnet-4.5``; every other name is kept."""
    match = _DASHED_CLAUDE.match(name)
    return f"{match[1]}.{match[2]}" if match else name


def _flatten_assistant_content(request: ChatRequest) -> ChatRequest:
    """Copilot accepts only a string as an assistant message's content; a client body passed through may
    hold a list of text parts. Copies nothing when there is nothing to flatten."""
    raw = request.raw
    if request.dialect != "openai" or raw is None:
        return request
    messages = raw.get("messages")
    if not isinstance(messages, list):
        return request
    fixed: list[Any] | None = None
    for i, message in enumerate(messages):
        if isinstance(message, Mapping) and message.get("role") == "assistant":
            content = message.get("content")
            if isinstance(content, list):
                if fixed is None:
                    fixed = list(messages)
                text = "".join(p.get("text", "") for p in content if isinstance(p, Mapping) and p.get("type") == "text")
                fixed[i] = {**message, "content": text or (None if message.get("tool_calls") else "")}
    if fixed is None:
        return request
    return attrs.evolve(request, raw={**raw, "messages": fixed})


def _without_dropped_betas(request: ChatRequest) -> ChatRequest:
    beta = request.raw_headers.get("anthropic-beta")
    if not beta:
        return request
    flags = [f.strip() for f in beta.split(",") if f.strip()]
    kept = [f for f in flags if f not in _DROPPED_BETAS]
    if len(kept) == len(flags):
        return request
    headers = {k: v for k, v in request.raw_headers.items() if k != "anthropic-beta"}
    if kept:
        headers["anthropic-beta"] = ",".join(kept)
    return attrs.evolve(request, raw_headers=headers)


def _is_chat_model(entry: Mapping[str, Any]) -> bool:
    """docs/protocols/copilot.md §6: a chat model, enabled by policy (or without one), not hidden from the picker."""
    capabilities = entry.get("capabilities")
    if not isinstance(capabilities, Mapping) or capabilities.get("type") != "chat":
        return False
    policy = entry.get("policy")
    if isinstance(policy, Mapping) and policy.get("state") not in (None, "enabled"):
        return False
    return entry.get("model_picker_enabled") is not False


async def _aclose(events: AsyncIterator[StreamEvent]) -> None:
    aclose = getattr(events, "aclose", None)
    if aclose is not None:
        await aclose()
