"""Antigravity (Cloud Code) error answers -> domain errors (docs/protocols/antigravity.md §8).

A 429 from Cloud Code means one of three things, and the dispatcher must tell them apart: a short rate limit
(rest this account and model briefly), an exhausted quota (rest it until the quota resets, let the other
accounts serve) or a model out of capacity (not the account's fault). This module only reads which one it
is, and the reset delay, from Cloud Code's error shape; ``apipod.dialects.upstream_faults`` decides, as for
every upstream. The delay comes from, in order: the shared parser (``Retry-After``, ``RetryInfo``), then
``ErrorInfo.metadata.quotaResetDelay`` (a Go duration), ``quotaResetTimeStamp`` (RFC 3339) and the
message's "reset after 3s".
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import orjson

from apipod.dialects import gemini
from apipod.dialects.upstream_faults import parse_go_duration, retry_after, upstream_error
from apipod.domain.errors import UpstreamAuthError, UpstreamError, UpstreamOverloadedError, UpstreamRateLimitedError

__all__ = ["AccessTokenRejectedError", "decode_error", "error_decoder", "parse_go_duration", "reset_delay"]

MIN_REST = 2.0  # floor of any reset delay: shorter waits only make the account fail again at once
SHORT_LIMIT = 60.0  # a delay below this is a rate limit, at or above it the quota is spent
EXHAUSTED_REST = 60.0  # an exhausted quota that states no reset time: the first fallback tier
CAPACITY_REST = 5.0  # model out of capacity: the first step of the reference's backoff

_TYPE = "type.googleapis.com/google.rpc."
_SPENT_REASONS = frozenset({"QUOTA_EXHAUSTED", "INSUFFICIENT_G1_CREDITS_BALANCE"})
_CAPACITY_MARKERS = ("model_capacity_exhausted", "capacity_exhausted", "model is currently overloaded")
_VERIFY_REASONS = frozenset({"VALIDATION_REQUIRED", "ACCOUNT_DISABLED", "USER_DISABLED"})
_RESET_AFTER = re.compile(r"reset after (\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h)(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))*)")


class AccessTokenRejectedError(UpstreamAuthError):
    """Cloud Code answered 401: the access token expired or was revoked. The adapter refreshes it once and
    retries; a second rejection reaches the dispatcher as the auth error it is."""


def error_decoder(now: Callable[[], datetime]) -> Callable[[int, bytes, Mapping[str, str]], UpstreamError]:
    """``decode_error`` bound to a wall clock (``quotaResetTimeStamp`` is absolute)."""

    def decode(status: int, body: bytes, headers: Mapping[str, str]) -> UpstreamError:
        return decode_error(status, body, headers, now=now())

    return decode


def decode_error(status: int, body: bytes, headers: Mapping[str, str], *, now: datetime) -> UpstreamError:
    raw = _error_object(body)
    error = gemini.read_error(raw)
    message = error.message or body[:500].decode("utf-8", "replace").strip()
    reason = str(_error_info(raw).get("reason") or "")
    if status != 429 and error.rpc_status != "RESOURCE_EXHAUSTED":
        decoded = upstream_error(
            status, codes=error.codes, hints=error.hints, message=message, headers=headers, now=now
        )
        return _account_error(status, reason, decoded) if isinstance(decoded, UpstreamAuthError) else decoded
    delay = reset_delay(raw, headers, now)
    hint = _too_many(reason, message, delay)
    decoded = upstream_error(
        status, codes=error.codes, hints=(*error.hints, hint), message=message, headers=headers, now=now, delay=delay
    )
    if isinstance(decoded, UpstreamOverloadedError):  # the model's capacity, whatever the account
        decoded.retry_after = max(delay or CAPACITY_REST, MIN_REST)
    elif isinstance(decoded, UpstreamRateLimitedError):
        fallback = EXHAUSTED_REST if decoded.exhausted else None
        decoded.retry_after = max(delay, MIN_REST) if delay is not None else fallback
    return decoded


def _too_many(reason: str, message: str, delay: float | None) -> str:
    """The hint that tells the shared table which kind of 429 this is."""
    if reason == "MODEL_CAPACITY_EXHAUSTED" or any(m in message.lower() for m in _CAPACITY_MARKERS):
        return "model_capacity_exhausted"
    if reason in _SPENT_REASONS:
        return reason
    if reason == "RATE_LIMIT_EXCEEDED":
        return reason
    spent = delay >= SHORT_LIMIT if delay is not None else "quota" in message.lower()
    return "QUOTA_EXHAUSTED" if spent else "RATE_LIMIT_EXCEEDED"


def _account_error(status: int, reason: str, error: UpstreamAuthError) -> UpstreamAuthError:
    """The shared auth error, with what it means for this Google account in ``detail`` (the operator's)
    and the token-refresh subclass for a 401."""
    detail = error.detail
    if "violation of Terms of Service" in detail or "has been disabled" in detail:
        detail = f"Google has disabled this Antigravity account: {detail}"
    elif reason in _VERIFY_REASONS:
        detail = f"The Google account must be verified in a browser ({reason}): {detail}"
    if status == 401:
        return AccessTokenRejectedError(error.message, detail=detail)
    error.detail = detail
    return error


def reset_delay(error: Mapping[str, Any], headers: Mapping[str, str], now: datetime) -> float | None:
    """Seconds until the upstream says to try again, from the first source that states it."""
    details = error.get("details")
    delay = retry_after(headers, now=now, details=details if isinstance(details, list) else (), limits=False)
    if delay is not None:
        return delay
    metadata = _error_info(error).get("metadata")
    if isinstance(metadata, Mapping):
        delay = parse_go_duration(metadata.get("quotaResetDelay"))
        if delay is not None:
            return delay
        stamp = metadata.get("quotaResetTimeStamp")
        if isinstance(stamp, str):
            try:
                when = datetime.fromisoformat(stamp)
            except ValueError:
                when = None
            if when is not None and when.tzinfo is not None:
                return max(0.0, (when - now).total_seconds())
    found = _RESET_AFTER.search(str(error.get("message") or ""))
    return parse_go_duration(found.group(1)) if found else None


def _error_object(body: bytes) -> Mapping[str, Any]:
    try:
        parsed = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        return {}
    if isinstance(parsed, list) and parsed:
        parsed = parsed[0]
    error = parsed.get("error") if isinstance(parsed, Mapping) else None
    return error if isinstance(error, Mapping) else {}


def _details(error: Mapping[str, Any], name: str) -> list[Mapping[str, Any]]:
    details = error.get("details")
    if not isinstance(details, list):
        return []
    return [d for d in details if isinstance(d, Mapping) and d.get("@type") == _TYPE + name]


def _error_info(error: Mapping[str, Any]) -> Mapping[str, Any]:
    found = _details(error, "ErrorInfo")
    return found[0] if found else {}
