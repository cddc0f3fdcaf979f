"""Domain errors to HTTP: one table, rendered in the caller's dialect (OpenAI, Anthropic or admin)."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

import attrs
import falcon
import falcon.asgi
import orjson

from apipod.application.ports import REQUEST_NOTES
from apipod.dialects import anthropic as anthropic_dialect
from apipod.dialects import gemini as gemini_dialect
from apipod.dialects import openai as openai_dialect
from apipod.domain.errors import (
    ApipodError,
    AuthenticationError,
    ConflictError,
    InvalidRequestError,
    ModelNotFoundError,
    NoCapacityError,
    NotFoundError,
    PermissionDeniedError,
    QuotaExceededError,
    RateLimitedError,
    RequestTooLargeError,
    StorageError,
    UpstreamAuthError,
    UpstreamError,
    UpstreamOverloadedError,
    UpstreamRateLimitedError,
    UpstreamRejectedError,
    UpstreamUnavailableError,
)

log = logging.getLogger("apipod.http")

OPENAI = "openai"
ANTHROPIC = "anthropic"
RESPONSES = "responses"  # OpenAI's Responses API: OpenAI's error shape
GEMINI = "gemini"
ADMIN = "admin"


@attrs.frozen
class ErrorSpec:
    status: int
    openai_type: str
    openai_code: str | None
    anthropic_type: str
    admin_type: str


INTERNAL = ErrorSpec(500, "server_error", None, "api_error", "internal_error")

# Looked up along the exception's MRO, most specific first.
ERROR_TABLE: dict[type[Exception], ErrorSpec] = {
    InvalidRequestError: ErrorSpec(400, "invalid_request_error", None, "invalid_request_error", "invalid_request"),
    RequestTooLargeError: ErrorSpec(
        413, "invalid_request_error", "request_too_large", "request_too_large", "invalid_request"
    ),
    AuthenticationError: ErrorSpec(
        401, "invalid_request_error", "invalid_api_key", "authentication_error", "unauthorized"
    ),
    PermissionDeniedError: ErrorSpec(
        403, "invalid_request_error", "permission_denied", "permission_error", "forbidden"
    ),
    NotFoundError: ErrorSpec(404, "invalid_request_error", "model_not_found", "not_found_error", "not_found"),
    ConflictError: ErrorSpec(409, "invalid_request_error", "conflict", "invalid_request_error", "conflict"),
    QuotaExceededError: ErrorSpec(429, "insufficient_quota", "insufficient_quota", "billing_error", "quota_exceeded"),
    RateLimitedError: ErrorSpec(429, "rate_limit_error", "rate_limit_exceeded", "rate_limit_error", "rate_limited"),
    NoCapacityError: ErrorSpec(429, "rate_limit_error", "rate_limit_exceeded", "rate_limit_error", "rate_limited"),
    UpstreamRateLimitedError: ErrorSpec(
        429, "rate_limit_error", "rate_limit_exceeded", "rate_limit_error", "rate_limited"
    ),
    # the caller's fault, passed on with the upstream's status (status_for) and message
    UpstreamRejectedError: ErrorSpec(400, "invalid_request_error", None, "invalid_request_error", "invalid_request"),
    UpstreamOverloadedError: ErrorSpec(503, "server_error", None, "overloaded_error", "upstream_unavailable"),
    UpstreamUnavailableError: ErrorSpec(503, "server_error", None, "api_error", "upstream_unavailable"),
    UpstreamAuthError: ErrorSpec(503, "server_error", None, "api_error", "upstream_unavailable"),
    UpstreamError: ErrorSpec(502, "server_error", None, "api_error", "upstream_error"),
    StorageError: ErrorSpec(503, "server_error", None, "api_error", "storage_unavailable"),
}

_UPSTREAM_REJECTED_ANTHROPIC = {404: "not_found_error", 413: "request_too_large"}


def spec_for(error: Exception) -> ErrorSpec:
    for klass in type(error).__mro__:
        spec = ERROR_TABLE.get(klass)
        if spec is not None:
            return spec
    return INTERNAL


def status_for(error: Exception, dialect: str) -> int:
    if isinstance(error, UpstreamRejectedError):
        return error.status
    if isinstance(error, QuotaExceededError) and dialect == ANTHROPIC:
        return 402  # billing_error: SDKs do not retry it, which is right for a spent budget
    if isinstance(error, UpstreamOverloadedError) and dialect == ANTHROPIC:
        return 529
    return spec_for(error).status


def retry_after(error: Exception) -> float | None:
    value = getattr(error, "retry_after", None)
    return value if isinstance(value, int | float) and value > 0 else None


def error_body(error: Exception, dialect: str) -> dict[str, Any]:
    spec = spec_for(error)
    message = error.message if isinstance(error, ApipodError) else "Internal server error."
    if dialect == ANTHROPIC:
        kind = spec.anthropic_type
        if isinstance(error, UpstreamRejectedError):
            kind = _UPSTREAM_REJECTED_ANTHROPIC.get(error.status, "invalid_request_error")
        answer = anthropic_dialect.encode_error(status=status_for(error, dialect), kind=kind, message=message)
        return _with_request_id(answer, answer)
    if dialect == GEMINI:
        answer = gemini_dialect.error_body(status_for(error, dialect), message)
        return _with_request_id(answer, answer.get("error"))
    if dialect in (OPENAI, RESPONSES):
        param = error.param if isinstance(error, InvalidRequestError) else None
        code = spec.openai_code
        if isinstance(error, NotFoundError) and not isinstance(error, ModelNotFoundError):
            code = "not_found"
        elif isinstance(error, InvalidRequestError) and error.code:
            code = error.code
        answer = openai_dialect.encode_error(
            status=status_for(error, dialect), kind=spec.openai_type, message=message, param=param, code=code
        )
        return _with_request_id(answer, answer.get("error"))
    body: dict[str, Any] = {"type": spec.admin_type, "message": message}
    if isinstance(error, InvalidRequestError) and error.param:
        body["field"] = error.param  # the path of the offending value (docs/behaviour.md §9)
    return {"error": body}


def _with_request_id(body: dict[str, Any], holder: object) -> dict[str, Any]:
    """The request's id in its error body, so a user's complaint can be traced: Anthropic's shape has a
    top-level ``request_id``; OpenAI's error object takes it as an extra member (both SDKs ignore members
    they do not know)."""
    notes = REQUEST_NOTES.get()
    if notes is not None and isinstance(holder, dict):
        holder["request_id"] = notes.request_id
    return body


def render(resp: falcon.asgi.Response, error: Exception, dialect: str) -> None:
    resp.status = status_for(error, dialect)
    resp.content_type = falcon.MEDIA_JSON
    resp.data = orjson.dumps(error_body(error, dialect))
    wait = retry_after(error)
    if wait is not None:
        resp.set_header("retry-after", str(max(1, math.ceil(wait))))


def dialect_of(req: falcon.asgi.Request) -> str:
    """The dialect is a property of the route; unrouted paths fall back to their prefix."""
    dialect = getattr(req.context, "dialect", None)
    if isinstance(dialect, str):
        return dialect
    path = req.path
    if path.startswith("/admin"):
        return ADMIN
    if path.startswith("/v1/messages") or req.get_header("anthropic-version"):
        return ANTHROPIC
    if is_gemini_path(path) or req.get_header("x-goog-api-key"):
        return GEMINI
    return OPENAI


def is_gemini_path(path: str) -> bool:
    """Gemini's URLs: anything under ``/v1beta/``, and ``/v1/models/{model}:{method}``."""
    return path.startswith("/v1beta/") or path == "/v1beta" or (path.startswith("/v1/models/") and ":" in path)


async def handle_apipod_error(
    req: falcon.asgi.Request, resp: falcon.asgi.Response, error: ApipodError, params: dict[str, Any]
) -> None:
    render(resp, error, dialect_of(req))


async def handle_unexpected(
    req: falcon.asgi.Request, resp: falcon.asgi.Response, error: Exception, params: dict[str, Any]
) -> None:
    if isinstance(error, falcon.HTTPError):
        serialize_http_error(req, resp, error)
        return
    log.exception("unhandled error on %s %s", req.method, req.path)
    render(resp, error, dialect_of(req))


def _falcon_error(status: int, detail: str) -> ApipodError:
    if status == 404:
        return NotFoundError(f"Not found: {detail}")
    if status == 405:
        return InvalidRequestError(f"Method not allowed: {detail}")
    if status == 413:
        return RequestTooLargeError(detail)
    return InvalidRequestError(detail)


def serialize_http_error(req: falcon.Request, resp: falcon.Response, exc: falcon.HTTPError) -> None:
    """Falcon's own errors (404, 405, ...) in the caller's dialect."""
    status = exc.status_code
    detail = exc.description or exc.title or "error"
    error = _falcon_error(status, detail)
    dialect = dialect_of(req)  # type: ignore[arg-type]
    resp.status = status
    resp.content_type = falcon.MEDIA_JSON
    resp.data = orjson.dumps(error_body(error, dialect))
    headers = exc.headers or {}
    for name, value in headers.items() if isinstance(headers, Mapping) else headers:
        resp.set_header(name, value)
