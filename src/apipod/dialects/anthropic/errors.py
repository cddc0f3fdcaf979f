"""Anthropic error bodies: rendering apipod's errors for clients, and reading an upstream's error answer."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import orjson

from apipod.domain.errors import (
    UpstreamAuthError,
    UpstreamError,
    UpstreamOverloadedError,
    UpstreamRateLimitedError,
    UpstreamRejectedError,
    UpstreamUnavailableError,
)

_CALLER_FAULT = frozenset({400, 404, 413, 422})
_MAX_MESSAGE = 500
# An account without credit is exhausted, not the caller's fault, whatever status it came with.
_EXHAUSTED_HINTS = ("credit balance", "quota", "billing")


def encode_error(
    *, status: int, kind: str, message: str, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    """``{"type": "error", "error": {type, message}}``. Anthropic's shape has no ``param`` or ``code``;
    they are accepted for parity with the other dialects and dropped."""
    return {"type": "error", "error": {"type": kind, "message": message}}


def decode_error(status: int, body: bytes, headers: Mapping[str, str]) -> UpstreamError:
    """An upstream's error answer as the domain error that decides retry, failover and the client's status."""
    kind, message = _parse(body)
    message = message or f"upstream answered HTTP {status}"
    retry_after = _retry_after(headers)
    exhausted = kind == "billing_error" or status == 402 or any(h in message.lower() for h in _EXHAUSTED_HINTS)
    if status == 429 or (exhausted and status in (400, 402)):
        return UpstreamRateLimitedError(message, retry_after=retry_after, exhausted=exhausted)
    if status in _CALLER_FAULT:
        return UpstreamRejectedError(message, status=status)
    if status in (401, 403):
        return UpstreamAuthError(message)
    if status in (503, 529) or kind == "overloaded_error":
        return UpstreamOverloadedError(message, retry_after=retry_after)
    if status >= 500 or status == 408:
        return UpstreamUnavailableError(message, retry_after=retry_after)
    return UpstreamRejectedError(message, status=status)


def _parse(body: bytes) -> tuple[str, str]:
    """``(error.type, error.message)``; for a non-JSON body the start of its text is the message."""
    try:
        payload = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        return "", body[:_MAX_MESSAGE].decode("utf-8", "replace").strip()
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, dict):
        kind, message = error.get("type"), error.get("message")
        return (kind if isinstance(kind, str) else "", message if isinstance(message, str) else "")
    if isinstance(error, str):
        return "", error
    return "", ""


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("retry-after")
    if value is None:
        value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None  # an HTTP date: the caller's default cooldown applies
    return max(seconds, 0.0) if math.isfinite(seconds) else None
