"""Errors for Gemini clients: Google's envelope ``{"error": {"code", "message", "status"}}`` (docs/protocols/gemini.md
§6) and the mid-stream failure the SDKs recognise (docs/protocols/gemini-cli.md §6)."""

from __future__ import annotations

from typing import Any

import orjson

from apipod.domain.stream import FailureKind, StreamFailed

# HTTP status -> google.rpc status name. Google answers an oversized payload with 400 INVALID_ARGUMENT, so 413
# says the same.
_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    408: "DEADLINE_EXCEEDED",
    409: "ABORTED",
    413: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "NOT_IMPLEMENTED",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
# StreamFailed.kind -> HTTP code. The Gemini CLI retries 429 and 5xx mid-stream, and gives up on anything else.
_FAILURE_CODE = {
    FailureKind.RATE_LIMITED: 429,
    FailureKind.OVERLOADED: 503,
    FailureKind.UPSTREAM: 503,
    FailureKind.INTERNAL: 500,
}


def status_name(status: int) -> str:
    named = _STATUS.get(status)
    if named is not None:
        return named
    return "INTERNAL" if status >= 500 else "FAILED_PRECONDITION"


def error_body(status: int, message: str) -> dict[str, Any]:
    return {"error": {"code": status, "message": message, "status": status_name(status)}}


def stream_error_frame(failure: StreamFailed) -> bytes:
    """A bare error object, no ``data:`` prefix and no separator: the SDKs only recognise it when it arrives as its
    own network chunk, so the HTTP layer must flush what came before and write it alone."""
    code = _FAILURE_CODE.get(failure.kind, 500)
    return orjson.dumps(error_body(code, failure.message))
