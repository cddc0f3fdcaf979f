"""The chat resources: OpenAI's /v1/chat/completions and Anthropic's /v1/messages. They only decode, call
the gateway and encode: every rule lives in the application layer."""

from __future__ import annotations

import falcon
import falcon.asgi
import orjson

from apipod.dialects import anthropic as anthropic_dialect
from apipod.dialects import openai as openai_dialect
from apipod.entrypoints.http.client_dialects import ClientDialect
from apipod.entrypoints.http.errors import ANTHROPIC, OPENAI
from apipod.entrypoints.http.request_body import credential, read_json_object
from apipod.entrypoints.http.services import Services
from apipod.entrypoints.http.streaming import close_on_exit, frames


class ChatResource:
    """One chat endpoint in one client dialect."""

    def __init__(self, services: Services, dialect: ClientDialect) -> None:
        self._services = services
        self._dialect = dialect
        self.dialect = dialect.name

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        gateway, clock, ids = self._services.ready()
        principal = await gateway.authenticate(credential(req))
        body = await read_json_object(req, self._services.max_body_bytes)
        request = self._dialect.decode(body, req.headers)
        created = int(clock.now().timestamp())
        if not request.stream:
            result = await gateway.complete(principal, request)
            resp.content_type = falcon.MEDIA_JSON
            resp.data = orjson.dumps(self._dialect.encode(result, model=request.model, created=created))
            return
        events = await gateway.stream(principal, request)
        close_on_exit(req, events)
        encoder = self._dialect.stream_encoder(body, model=request.model, message_id=ids.new_id(), created=created)
        resp.set_header("cache-control", "no-cache")
        resp.set_header("x-accel-buffering", "no")
        resp.sse = frames(events, encoder)


class CountTokens:
    """Anthropic's /v1/messages/count_tokens: an estimate, no upstream call."""

    dialect = ANTHROPIC

    def __init__(self, services: Services) -> None:
        self._services = services

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        gateway, _, _ = self._services.ready()
        await gateway.authenticate(credential(req))
        body = await read_json_object(req, self._services.max_body_bytes)
        request = anthropic_dialect.decode_count_tokens_request(body, req.headers)
        resp.content_type = falcon.MEDIA_JSON
        resp.data = orjson.dumps({"input_tokens": anthropic_dialect.count_tokens(request)})


class Models:
    """/v1/models: the names the key may ask for, in OpenAI's shape or, when the request carries
    ``anthropic-version``, Anthropic's."""

    def __init__(self, services: Services) -> None:
        self._services = services

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        anthropic = req.get_header("anthropic-version") is not None
        req.context.dialect = ANTHROPIC if anthropic else OPENAI
        gateway, _, _ = self._services.ready()
        principal = await gateway.authenticate(credential(req))
        names = await gateway.models(principal)
        created = int(principal.key.created_at.timestamp())
        codec = anthropic_dialect if anthropic else openai_dialect
        resp.content_type = falcon.MEDIA_JSON
        resp.data = orjson.dumps(codec.encode_models(names, created=created))


class Health:
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        resp.content_type = falcon.MEDIA_JSON
        resp.data = b'{"status":"healthy","service":"apipod-smart-proxy"}'

    on_post = on_get
    on_head = on_get
