"""The chat resources: OpenAI's /v1/chat/completions and Anthropic's /v1/messages (Responses and Gemini have
modules of their own, on the same ``ChatCall``). They only decode, call the gateway and encode: every rule
lives in the application layer."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import falcon
import falcon.asgi
import orjson
from dishka import FromDishka

from apipod.application.authenticate_key import Principal
from apipod.application.gateway import Gateway
from apipod.dialects import anthropic as anthropic_dialect
from apipod.dialects import gemini as gemini_dialect
from apipod.dialects import openai as openai_dialect
from apipod.domain.errors import (
    ApipodError,
    NoCapacityError,
    RateLimitedError,
    UpstreamError,
    UpstreamOverloadedError,
    UpstreamRateLimitedError,
    UpstreamUnavailableError,
)
from apipod.domain.stream import FailureKind, StreamEvent, StreamFailed
from apipod.entrypoints.http.client_dialects import ClientDialect
from apipod.entrypoints.http.errors import ANTHROPIC, GEMINI, OPENAI
from apipod.entrypoints.http.request_body import read_json_object
from apipod.entrypoints.http.request_scope import AppObjects, RequestId, RequestLifetime, inject
from apipod.entrypoints.http.serving import ServingOf
from apipod.entrypoints.http.streaming import SHUTTING_DOWN, FrameEncoder, StreamControl, failed, frames

log = logging.getLogger("apipod.http")


class ChatResource:
    """One chat endpoint in one client dialect."""

    def __init__(self, dialect: ClientDialect, *, max_body_bytes: int) -> None:
        self._dialect = dialect
        self._max_body_bytes = max_body_bytes
        self._chat = ChatCall()
        self.dialect = dialect.name

    @inject
    async def on_post(
        self,
        req: falcon.asgi.Request,
        resp: falcon.asgi.Response,
        principal: FromDishka[Principal],
        request_id: FromDishka[RequestId],
        lifetime: FromDishka[RequestLifetime],
    ) -> None:
        body = await read_json_object(req, self._max_body_bytes)
        await self._chat.serve(req, resp, self._dialect, body, principal, request_id, lifetime)


class ChatCall:
    """Serves one decoded chat call in any client dialect, streamed or not: what every chat resource shares.
    ``after`` (when given) receives the answer as the client got it, once it is complete (a stored Response)."""

    def __init__(self) -> None:
        self._engine = AppObjects()
        self._serving_of = ServingOf()

    async def serve(
        self,
        req: falcon.asgi.Request,
        resp: falcon.asgi.Response,
        dialect: ClientDialect,
        body: dict[str, Any],
        principal: Principal,
        request_id: str,
        lifetime: RequestLifetime,
        *,
        after: Callable[[dict[str, Any]], Awaitable[None]] | None = None,
    ) -> None:
        gateway, clock = await self._engine.of(req)
        request = dialect.decode(body, req.headers)
        created = int(clock.now().timestamp())
        lifetime.watch()  # from here a client that goes away cancels the upstream call at once
        if not request.stream:
            # the usage row and the telemetry run as the request closes, after the answer is written
            result = await gateway.complete(principal, request, request_id=request_id, after_answer=lifetime.on_close)
            answer = dialect.encode(result, body, response_id=request_id, created=created)
            if after is not None:
                await after(answer)
            resp.content_type = falcon.MEDIA_JSON
            resp.data = orjson.dumps(answer)
            return
        encoder, keepalive = dialect.stream_encoder(body, model=request.model, response_id=request_id, created=created)
        serving = await self._serving_of(req)
        control = StreamControl(
            serving.streams,
            interval=serving.keepalive_seconds,
            keepalive=keepalive,
            flush_delay=serving.flush_delay,
            content_type=dialect.content_type,
        )
        lifetime.on_close(control.aclose)
        events: AsyncIterator[Sequence[StreamEvent]]
        try:
            stream = await gateway.stream(principal, request, request_id=request_id)
        except asyncio.CancelledError:
            if not control.stopped_here():
                raise
            if not control.committed:
                raise UpstreamUnavailableError("The gateway is shutting down.") from None
            events = failed(SHUTTING_DOWN)
        except Exception as exc:
            if not control.committed:
                raise
            if not isinstance(exc, ApipodError):
                log.exception("a stream failed before its first event")
            # A keep-alive committed the 200 already: the failure goes in the stream, in the client's dialect.
            events = failed(_failure_of(exc))
        else:
            lifetime.on_close(stream.aclose)
            events = stream.batches()
        control.waiting = False
        if after is not None:
            lifetime.on_close(_after_stream(encoder, after))
        resp.content_type = dialect.content_type.decode()
        resp.set_header("cache-control", "no-cache")
        resp.set_header("x-accel-buffering", "no")
        resp.stream = frames(events, encoder, control)


def _after_stream(
    encoder: FrameEncoder, after: Callable[[dict[str, Any]], Awaitable[None]]
) -> Callable[[], Awaitable[None]]:
    """When the request ends: the complete answer to ``after``, if the stream got that far."""

    async def run() -> None:
        answer = getattr(encoder, "response", None)
        if isinstance(answer, dict):
            await after(answer)

    return run


def _failure_of(exc: Exception) -> StreamFailed:
    """A failure before the first event, once the response is committed, as a stream error event."""
    if not isinstance(exc, ApipodError):
        return StreamFailed(kind=FailureKind.INTERNAL, message="The gateway failed.")
    if isinstance(exc, RateLimitedError | UpstreamRateLimitedError):
        kind = FailureKind.RATE_LIMITED
    elif isinstance(exc, UpstreamOverloadedError | NoCapacityError):
        kind = FailureKind.OVERLOADED
    elif isinstance(exc, UpstreamError):
        kind = FailureKind.UPSTREAM
    else:
        kind = FailureKind.INTERNAL
    return StreamFailed(kind=kind, message=exc.message)


class CountTokens:
    """Anthropic's /v1/messages/count_tokens: an estimate, no upstream call."""

    dialect = ANTHROPIC

    def __init__(self, *, max_body_bytes: int) -> None:
        self._max_body_bytes = max_body_bytes

    @inject
    async def on_post(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, principal: FromDishka[Principal]
    ) -> None:
        body = await read_json_object(req, self._max_body_bytes)
        request = anthropic_dialect.decode_count_tokens_request(body, req.headers)
        resp.content_type = falcon.MEDIA_JSON
        resp.data = orjson.dumps({"input_tokens": anthropic_dialect.count_tokens(request)})


class Models:
    """/v1/models: the names the key may ask for, in OpenAI's shape or, when the request carries
    ``anthropic-version``, Anthropic's, or with ``x-goog-api-key`` Gemini's (errors too: see
    ``errors.dialect_of``)."""

    @inject
    async def on_get(
        self,
        req: falcon.asgi.Request,
        resp: falcon.asgi.Response,
        principal: FromDishka[Principal],
        gateway: FromDishka[Gateway],
    ) -> None:
        if req.get_header("x-goog-api-key") is not None:  # a Gemini client on /v1/ (GOOGLE_GENAI_API_VERSION=v1)
            req.context.dialect = GEMINI
            resp.content_type = falcon.MEDIA_JSON
            resp.data = orjson.dumps(gemini_dialect.encode_models(await gateway.models(principal)))
            return
        anthropic = req.get_header("anthropic-version") is not None
        req.context.dialect = ANTHROPIC if anthropic else OPENAI
        names = await gateway.models(principal)
        created = int(principal.key.created_at.timestamp())
        codec = anthropic_dialect if anthropic else openai_dialect
        resp.content_type = falcon.MEDIA_JSON
        resp.data = orjson.dumps(codec.encode_models(names, created=created))


class KeyInfo:
    """``GET /v1/key``: the caller's own key: plan, expiry, the plan's per-key limits and, per budget window and
    unit, the limit, what is used and what remains (DECISIONS.md "New endpoints"). OpenAI's error shape."""

    dialect = OPENAI

    @inject
    async def on_get(
        self,
        req: falcon.asgi.Request,
        resp: falcon.asgi.Response,
        principal: FromDishka[Principal],
        gateway: FromDishka[Gateway],
    ) -> None:
        key, plan = principal.key, principal.plan
        budgets = [
            {
                "window": b.window,
                "unit": b.unit,
                "limit": b.limit,
                "used": b.used,
                "remaining": b.remaining,
                "resets_at": _iso(b.resets_at),
            }
            for b in await gateway.budgets(principal)
        ]
        resp.content_type = falcon.MEDIA_JSON
        resp.data = orjson.dumps(
            {
                "id": key.id,
                "name": key.name,
                "plan": plan.name,
                "expires_at": _iso(key.expires_at) if key.expires_at else None,
                "limits": {"rpm": plan.rpm, "max_concurrency": plan.max_concurrency},
                "budgets": budgets,
            }
        )


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


class Health:
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        resp.content_type = falcon.MEDIA_JSON
        resp.data = b'{"status":"healthy","service":"apipod-smart-proxy"}'

    on_post = on_get
    on_head = on_get
