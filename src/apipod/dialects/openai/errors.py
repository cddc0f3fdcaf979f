"""OpenAI error bodies: rendering apipod's errors for clients, and reading an upstream's error answer
(openai-chat.md §7)."""

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
# A spent account (OpenAI insufficient_quota, Copilot quota_exceeded) is exhausted, not briefly limited.
_EXHAUSTED_HINTS = ("insufficient_quota", "quota_exceeded", "billing")


def encode_error(
    *, status: int, kind: str, message: str, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    """``{"error": {message, type, param, code}}``; ``status`` is the caller's business (the HTTP line)."""
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def decode_error(status: int, body: bytes, headers: Mapping[str, str]) -> UpstreamError:
    """An upstream's error answer as the domain error that decides retry, failover and the client's status.

    Only a caller-fault rejection carries the upstream's message on to the client; the others describe
    apipod's account (an API key fragment, an organisation id) and say only what kind of failure it was.
    """
    kind, code, message = _parse(body)
    label = " ".join(x for x in (f"HTTP {status}", kind, code) if x)
    retry_after = _retry_after(headers)
    if status == 429 or status == 402:
        exhausted = status == 402 or any(hint in f"{kind} {code}".lower() for hint in _EXHAUSTED_HINTS)
        what = "quota is exhausted" if exhausted else "rate limit was hit"
        return UpstreamRateLimitedError(
            f"The upstream account's {what} ({label}).", retry_after=retry_after, exhausted=exhausted
        )
    if status in _CALLER_FAULT:
        return UpstreamRejectedError(message or f"The upstream rejected the request ({label}).", status=status)
    if status in (401, 403):
        return UpstreamAuthError(f"The upstream refused apipod's credentials ({label}).")
    if status in (503, 529):
        return UpstreamOverloadedError(f"The upstream is overloaded ({label}).", retry_after=retry_after)
    if status >= 500 or status in (408, 409):
        return UpstreamUnavailableError(f"The upstream failed ({label}).", retry_after=retry_after)
    return UpstreamError(f"The upstream answered {label}: {message}" if message else f"The upstream answered {label}.")


def _parse(body: bytes) -> tuple[str, str, str]:
    """``(error.type, error.code, error.message)``; a non-JSON body's start is the message."""
    try:
        payload = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        return "", "", body[:_MAX_MESSAGE].decode("utf-8", "replace").strip()
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, dict):
        return _text(error.get("type")), _text(error.get("code")), _text(error.get("message"))[:_MAX_MESSAGE]
    if isinstance(error, str):
        return "", "", error[:_MAX_MESSAGE]
    if isinstance(payload, dict):  # some servers answer {"message": ...} or {"detail": ...}
        return "", "", (_text(payload.get("message")) or _text(payload.get("detail")))[:_MAX_MESSAGE]
    return "", "", ""


def _text(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return ""


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """``retry-after-ms`` or ``retry-after`` in seconds; an HTTP date is left to the caller's default."""
    found: dict[str, str] = {}
    for name, value in headers.items():
        lowered = name.lower()
        if lowered in ("retry-after", "retry-after-ms"):
            found[lowered] = value
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        try:
            seconds = float(found[name]) * scale
        except (KeyError, ValueError):
            continue
        if math.isfinite(seconds) and seconds >= 0:
            return seconds
    return None
