"""OpenAI's Responses API: ``POST /v1/responses`` (the Codex CLI's only call), and the stored responses a
follow-up continues with ``previous_response_id`` (``GET|DELETE /v1/responses/{id}``), scoped to the key that
made them. The chat itself is ``ChatCall``'s, as for every dialect."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import falcon
import falcon.asgi
import orjson
from dishka import FromDishka

from apipod.application.authenticate_key import Principal
from apipod.application.response_history import ResponseHistory
from apipod.dialects import responses as responses_dialect
from apipod.domain.errors import InvalidRequestError, NotFoundError
from apipod.entrypoints.http.chat import ChatCall
from apipod.entrypoints.http.client_dialects import ResponsesClients
from apipod.entrypoints.http.errors import RESPONSES
from apipod.entrypoints.http.request_body import read_json_object
from apipod.entrypoints.http.request_scope import RequestId, RequestLifetime, inject


class CreateResponse:
    """``POST /v1/responses``. ``store`` defaults to true, as at OpenAI (the SDKs leave it out and expect
    ``previous_response_id`` to work); the Codex CLI sends ``store: false`` and nothing is kept."""

    dialect = RESPONSES

    def __init__(self, *, max_body_bytes: int) -> None:
        self._max_body_bytes = max_body_bytes
        self._dialect = ResponsesClients()
        self._chat = ChatCall()

    @inject
    async def on_post(
        self,
        req: falcon.asgi.Request,
        resp: falcon.asgi.Response,
        principal: FromDishka[Principal],
        request_id: FromDishka[RequestId],
        lifetime: FromDishka[RequestLifetime],
        history: FromDishka[ResponseHistory],
    ) -> None:
        body = await read_json_object(req, self._max_body_bytes)
        previous = body.get("previous_response_id")
        if previous is not None:
            if not isinstance(previous, str) or not previous:
                raise InvalidRequestError(
                    "previous_response_id must be a response id string.", param="previous_response_id"
                )
            try:
                stored = await history.load(principal.key.id, previous)
            except NotFoundError:  # OpenAI's answer: a 400, the request is what is wrong
                raise InvalidRequestError(
                    f"Previous response with id '{previous}' not found.",
                    param="previous_response_id",
                    code="previous_response_not_found",
                ) from None
            body = responses_dialect.continued(body, list(stored.items))
            body["previous_response_id"] = previous  # echoed in the answer
        store = body.get("store", True)
        if not isinstance(store, bool):
            raise InvalidRequestError("store must be a boolean.", param="store")
        after: Callable[[dict[str, Any]], Awaitable[None]] | None = None
        if store:
            key_id, asked = principal.key.id, body

            async def keep(answer: dict[str, Any]) -> None:
                await history.save(key_id, answer["id"], answer, responses_dialect.stored_items(asked, answer))

            after = keep
        await self._chat.serve(req, resp, self._dialect, body, principal, request_id, lifetime, after=after)


class StoredResponse:
    """``GET`` and ``DELETE /v1/responses/{response_id}``: the caller's own stored responses only (another
    key's, or an expired one, is a 404)."""

    dialect = RESPONSES

    @inject
    async def on_get(
        self,
        req: falcon.asgi.Request,
        resp: falcon.asgi.Response,
        response_id: str,
        principal: FromDishka[Principal],
        history: FromDishka[ResponseHistory],
    ) -> None:
        stored = await history.load(principal.key.id, response_id)
        resp.content_type = falcon.MEDIA_JSON
        resp.data = orjson.dumps(stored.response)

    @inject
    async def on_delete(
        self,
        req: falcon.asgi.Request,
        resp: falcon.asgi.Response,
        response_id: str,
        principal: FromDishka[Principal],
        history: FromDishka[ResponseHistory],
    ) -> None:
        await history.delete(principal.key.id, response_id)
        resp.content_type = falcon.MEDIA_JSON
        resp.data = orjson.dumps({"id": response_id, "object": "response", "deleted": True})
