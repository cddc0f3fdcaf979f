"""Limits on request headers: too many or too large is 431, in the caller's dialect (issue 9, finding 10).

Nothing a client of this gateway legitimately sends comes near the limits (the SDKs send about twenty short
headers); without them a 1 MB header or 5,000 headers were accepted and held in memory. ``HeaderLimits`` is a
pure ASGI middleware that checks ``scope["headers"]`` before the app runs, whatever server runs it. The
server itself must also stop reading an oversized head before it is buffered: ``apipod serve`` does that
with ``bounded_protocol.BoundedHttpToolsProtocol``, which bounds a head's bytes while parsing and applies the
same ``Limits`` to each complete head.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from itertools import chain
from typing import Any

import attrs
import orjson

from apipod.dialects import anthropic as anthropic_dialect
from apipod.dialects import gemini as gemini_dialect
from apipod.dialects import openai as openai_dialect
from apipod.entrypoints.http.errors import is_gemini_path

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

STATUS = 431
MAX_HEADERS = 100
MAX_HEADER_LINE_BYTES = 16 * 1024  # one header's name plus value
MAX_HEADER_BYTES = 32 * 1024  # every header's name plus value


@attrs.frozen
class Limits:
    max_headers: int = MAX_HEADERS
    max_line_bytes: int = MAX_HEADER_LINE_BYTES
    max_total_bytes: int = MAX_HEADER_BYTES

    def exceeded(self, count: int, size: int, total: int) -> str | None:
        """Why the ``count``-th header, of ``size`` bytes, ``total`` with those before it, is one too many."""
        if count > self.max_headers:
            return f"more than {self.max_headers} request headers"
        if size > self.max_line_bytes:
            return f"a request header of {size} bytes (at most {self.max_line_bytes})"
        if total > self.max_total_bytes:
            return f"request headers over {self.max_total_bytes} bytes in all"
        return None

    def problem(self, headers: Iterable[tuple[bytes, bytes]]) -> str | None:
        """Why ``headers`` are refused, or None. The text names sizes, never a header's value."""
        if isinstance(headers, list | tuple) and len(headers) <= self.max_headers:
            # PERF: the common case in C: headers that fit one line's limit in all fit every limit
            total = sum(map(len, chain.from_iterable(headers)))
            if total <= self.max_line_bytes and total <= self.max_total_bytes:
                return None
        total = 0
        for count, (name, value) in enumerate(headers, start=1):
            size = len(name) + len(value)
            total += size
            problem = self.exceeded(count, size, total)
            if problem is not None:
                return problem
        return None


def dialect_for(path: str, headers: Iterable[tuple[bytes, bytes]]) -> str:
    """The caller's protocol from what is known before routing (as ``errors.dialect_of`` for unrouted paths)."""
    if path.startswith("/admin"):
        return "admin"
    if path.startswith("/v1/messages") or any(name.lower() == b"anthropic-version" for name, _ in headers):
        return "anthropic"
    if is_gemini_path(path):
        return "gemini"
    return "openai"


def refusal_body(dialect: str, problem: str) -> bytes:
    message = f"Request header fields too large: {problem}."
    if dialect == "anthropic":
        body = anthropic_dialect.encode_error(status=STATUS, kind="request_too_large", message=message)
    elif dialect == "gemini":
        body = gemini_dialect.error_body(STATUS, message)
    elif dialect == "admin":
        body = {"error": {"type": "invalid_request", "message": message}}
    else:
        body = openai_dialect.encode_error(
            status=STATUS, kind="invalid_request_error", message=message, code="request_header_fields_too_large"
        )
    return orjson.dumps(body)


class HeaderLimits:
    """Wraps an ASGI app; HTTP requests over ``limits`` get 431 and never reach it."""

    def __init__(self, app: ASGIApp, limits: Limits = Limits()) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = scope.get("headers") or ()
            problem = self.limits.problem(headers)
            if problem is not None:
                body = refusal_body(dialect_for(scope.get("path", ""), headers), problem)
                await send(
                    {
                        "type": "http.response.start",
                        "status": STATUS,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close"),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
