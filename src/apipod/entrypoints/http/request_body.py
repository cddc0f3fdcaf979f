"""Reading a JSON body within the size limit."""

from __future__ import annotations

from typing import Any

import falcon.asgi
import orjson

from apipod.domain.errors import InvalidRequestError, RequestTooLargeError


async def read_json_object(req: falcon.asgi.Request, limit: int) -> dict[str, Any]:
    """The body as a JSON object. Malformed JSON, a non-object, or a body over ``limit`` bytes raise the
    matching domain error."""
    length = req.content_length
    if length is not None and length > limit:
        raise RequestTooLargeError(f"The request body is {length} bytes; the limit is {limit}.")
    # At most one read past the limit is held (a chunked body says no length); no async generator per request.
    data = await req.stream.read(limit + 1)
    if len(data) > limit:
        raise RequestTooLargeError(f"The request body is over the limit of {limit} bytes.")
    if not data:
        raise InvalidRequestError("The request body is empty; send a JSON object.")
    try:
        body = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequestError(f"The request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise InvalidRequestError("The request body must be a JSON object.")
    return body
