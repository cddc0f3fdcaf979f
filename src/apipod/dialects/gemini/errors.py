"""Gemini error answers -> domain errors (gemini.md §6).

``RESOURCE_EXHAUSTED`` carries its own retry delay (``RetryInfo.retryDelay``, a protobuf Duration such as
``"34.4s"``) and, in ``QuotaFailure``, which quota ran out: a per-day quota means the account is spent until
tomorrow, not briefly rate limited. A dead or unusable key (``API_KEY_INVALID``, ``FAILED_PRECONDITION``)
comes as a 400 but is the account's fault, so it is an auth error that fails over.
"""

from __future__ import annotations

import email.utils
import time
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
_TYPE_PREFIX = "type.googleapis.com/google.rpc."


def decode_error(status: int, body: bytes, headers: Mapping[str, str]) -> UpstreamError:
    """Only a caller-fault rejection passes the upstream's message on; the others concern apipod's account
    (quota names, project numbers, key problems) and only say what kind of failure it was."""
    error = _error_object(body)
    rpc_status = str(error.get("status") or "")
    message = str(error.get("message") or "")[:_MAX_MESSAGE] or _fallback_message(status, body)
    details = [d for d in error.get("details") or () if isinstance(d, Mapping)]
    label = " ".join(x for x in (f"HTTP {status}", rpc_status) if x)
    if status == 429 or rpc_status == "RESOURCE_EXHAUSTED":
        delay = _retry_delay(details)
        if delay is None:
            delay = retry_after_header(headers)
        exhausted = _per_day(details)
        what = "daily quota is exhausted" if exhausted else "rate limit was hit"
        return UpstreamRateLimitedError(
            f"The upstream account's {what} ({label}).", retry_after=delay, exhausted=exhausted
        )
    if status in (401, 403) or rpc_status == "FAILED_PRECONDITION" or _reason(details) == "API_KEY_INVALID":
        return UpstreamAuthError(f"The upstream refused apipod's credentials ({label}).")
    if status in _CALLER_FAULT:
        return UpstreamRejectedError(message, status=status)
    if status in (503, 529):
        return UpstreamOverloadedError(
            f"The upstream is overloaded ({label}).", retry_after=retry_after_header(headers)
        )
    if status >= 500 or status in (408, 409):
        return UpstreamUnavailableError(f"The upstream failed ({label}).", retry_after=retry_after_header(headers))
    return UpstreamError(f"The upstream answered {label}: {message}")


def retry_after_header(headers: Mapping[str, str]) -> float | None:
    """``retry-after`` in seconds (a number or an HTTP date), or None."""
    value = headers.get("retry-after") or headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def parse_duration(value: Any) -> float | None:
    """A protobuf Duration string (``"34.4s"``, ``"0.479417207s"``) in seconds."""
    if not isinstance(value, str) or not value.endswith("s"):
        return None
    try:
        return max(0.0, float(value[:-1]))
    except ValueError:
        return None


def _error_object(body: bytes) -> Mapping[str, Any]:
    try:
        parsed = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        return {}
    if isinstance(parsed, list) and parsed:  # the non-SSE streaming method wraps answers in an array
        parsed = parsed[0]
    error = parsed.get("error") if isinstance(parsed, Mapping) else None
    return error if isinstance(error, Mapping) else {}


def _fallback_message(status: int, body: bytes) -> str:
    text = body[:_MAX_MESSAGE].decode("utf-8", "replace").strip()
    return text or f"The upstream answered HTTP {status}."


def _typed(details: list[Mapping[str, Any]], name: str) -> list[Mapping[str, Any]]:
    return [d for d in details if d.get("@type") == _TYPE_PREFIX + name]


def _retry_delay(details: list[Mapping[str, Any]]) -> float | None:
    for detail in _typed(details, "RetryInfo"):
        delay = parse_duration(detail.get("retryDelay"))
        if delay is not None:
            return delay
    return None


def _per_day(details: list[Mapping[str, Any]]) -> bool:
    for detail in _typed(details, "QuotaFailure"):
        for violation in detail.get("violations") or ():
            if not isinstance(violation, Mapping):
                continue
            quota = f"{violation.get('quotaId') or ''} {violation.get('quotaMetric') or ''}".lower()
            if "perday" in quota or "per_day" in quota:
                return True
    return False


def _reason(details: list[Mapping[str, Any]]) -> str | None:
    for detail in _typed(details, "ErrorInfo"):
        reason = detail.get("reason")
        if isinstance(reason, str):
            return reason
    return None
