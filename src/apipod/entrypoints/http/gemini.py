"""Gemini's own API for Gemini-native clients (the Gemini CLI, the google-genai SDKs):
``POST /v1beta/models/{model}:generateContent | :streamGenerateContent | :countTokens`` and ``GET
/v1beta/models[/{model}]``, the same under ``/v1/``. The key comes from ``x-goog-api-key``, ``?key=`` or a bearer
header (``request_scope.credential_of``); errors are Google's envelope (``errors.error_body``)."""

from __future__ import annotations

import falcon
import falcon.asgi
import orjson
from dishka import FromDishka

from apipod.application.authenticate_key import Principal
from apipod.application.gateway import Gateway
from apipod.dialects import gemini as gemini_dialect
from apipod.dialects import openai as openai_dialect
from apipod.domain.errors import InvalidRequestError, ModelNotFoundError, NotFoundError
from apipod.entrypoints.http.chat import ChatCall
from apipod.entrypoints.http.client_dialects import GeminiCall
from apipod.entrypoints.http.errors import GEMINI, OPENAI
from apipod.entrypoints.http.request_body import read_json_object
from apipod.entrypoints.http.request_scope import RequestId, RequestLifetime, inject

_METHODS = ("generateContent", "streamGenerateContent", "countTokens")


class GeminiModels:
    """``GET /v1beta/models``: the names the key may ask for, in Gemini's shape."""

    dialect = GEMINI

    @inject
    async def on_get(
        self,
        req: falcon.asgi.Request,
        resp: falcon.asgi.Response,
        principal: FromDishka[Principal],
        gateway: FromDishka[Gateway],
    ) -> None:
        resp.content_type = falcon.MEDIA_JSON
        resp.data = orjson.dumps(gemini_dialect.encode_models(await gateway.models(principal)))


class GeminiModel:
    """``/v1beta/models/{target}``: ``GET`` one model; ``POST`` with ``{model}:{method}`` a call.

    Under ``/v1/models/{target}`` a ``GET`` without Gemini's credentials (``x-goog-api-key`` or ``?key=``) is
    OpenAI's retrieve-model, in OpenAI's shape."""

    def __init__(self, *, max_body_bytes: int, openai_too: bool = False) -> None:
        self._max_body_bytes = max_body_bytes
        self._openai_too = openai_too
        self._chat = ChatCall()
        self.dialect = GEMINI

    @inject
    async def on_get(
        self,
        req: falcon.asgi.Request,
        resp: falcon.asgi.Response,
        target: str,
        principal: FromDishka[Principal],
        gateway: FromDishka[Gateway],
    ) -> None:
        name = _model_name(target)
        gemini = not self._openai_too or _gemini_credentials(req)
        if not gemini:
            req.context.dialect = OPENAI
        if name not in await gateway.models(principal):
            raise ModelNotFoundError(f"The model '{name}' does not exist or you do not have access to it.")
        resp.content_type = falcon.MEDIA_JSON
        if gemini:
            resp.data = orjson.dumps(gemini_dialect.encode_model(name))
        else:
            created = int(principal.key.created_at.timestamp())
            [entry] = openai_dialect.encode_models([name], created=created)["data"]
            resp.data = orjson.dumps(entry)

    @inject
    async def on_post(
        self,
        req: falcon.asgi.Request,
        resp: falcon.asgi.Response,
        target: str,
        principal: FromDishka[Principal],
        request_id: FromDishka[RequestId],
        lifetime: FromDishka[RequestLifetime],
    ) -> None:
        model, _, method = target.rpartition(":")
        model = _model_name(model)
        if method not in _METHODS or not model:
            raise NotFoundError(f"Method not found: '{target}'. Expected {{model}}:generateContent, ...")
        body = await read_json_object(req, self._max_body_bytes)
        if method == "countTokens":
            request = gemini_dialect.decode_count_tokens_request(body, model=model)
            resp.content_type = falcon.MEDIA_JSON
            resp.data = orjson.dumps({"totalTokens": gemini_dialect.count_tokens(request)})
            return
        stream = method == "streamGenerateContent"
        alt = req.get_param("alt")
        if alt not in (None, "sse", "json"):
            raise InvalidRequestError(f"Unsupported alt={alt!r}: expected 'sse' or 'json'.", param="alt")
        dialect = GeminiCall(model, stream=stream, sse=alt == "sse")
        await self._chat.serve(req, resp, dialect, body, principal, request_id, lifetime)


def _model_name(value: str) -> str:
    """``models/x`` and ``x`` name the same model (the SDKs send either)."""
    return value.removeprefix("models/")


def _gemini_credentials(req: falcon.asgi.Request) -> bool:
    return req.get_header("x-goog-api-key") is not None or req.get_param("key") is not None
