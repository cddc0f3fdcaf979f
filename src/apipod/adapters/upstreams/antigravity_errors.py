"""Antigravity (Cloud Code) error answers -> domain errors (antigravity.md §8).

A 429 from Cloud Code means one of three things, and the dispatcher must tell them apart: a short rate limit
(rest this account and model briefly), an exhausted quota (rest it until the quota resets, let the other
accounts serve) or a model out of capacity (not the account's fault). The reset delay comes from, in order:
the ``Retry-After`` header, ``RetryInfo.retryDelay``, ``ErrorInfo.metadata.quotaResetDelay`` (a Go
duration), ``quotaResetTimeStamp`` (RFC 3339) and the message's "reset after 3s". Everything that is not
Antigravity-specific falls through to the Gemini codec's ``decode_error``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import orjson

from apipod.dialects import gemini
from apipod.domain.errors import (
    UpstreamAuthError,
    UpstreamError,
    UpstreamOverloadedError,
    UpstreamRateLimitedError,
)

MIN_REST = 2.0  # floor of any reset delay: shorter waits only make the account fail again at once
SHORT_LIMIT = 60.0  # a delay below this is a rate limit, at or above it the quota is spent
EXHAUSTED_REST = 60.0  # an exhausted quota that states no reset time: the first fallback tier
CAPACITY_REST = 5.0  # model out of capacity: the first step of the reference's backoff

_TYPE = "type.googleapis.com/google.rpc."
_EXHAUSTED_REASONS = frozenset({"QUOTA_EXHAUSTED", "INSUFFICIENT_G1_CREDITS_BALANCE"})
_CAPACITY_MARKERS = ("model_capacity_exhausted", "capacity_exhausted", "model is currently overloaded")
_VERIFY_REASONS = frozenset({"VALIDATION_REQUIRED", "ACCOUNT_DISABLED", "USER_DISABLED"})
_GO_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
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
    error = _error_object(body)
    rpc_status = str(error.get("status") or "")
    if status == 429 or rpc_status == "RESOURCE_EXHAUSTED":
        return _too_many(status, error, headers, now)
    if status == 401:
        return AccessTokenRejectedError(f"Cloud Code rejected the account's access token (HTTP 401 {rpc_status}).")
    if status == 403:
        message = str(error.get("message") or "")
        reason = _error_info(error).get("reason")
        if "violation of Terms of Service" in message or "has been disabled" in message:
            return UpstreamAuthError("Google has disabled this Antigravity account (HTTP 403).")
        if reason in _VERIFY_REASONS:
            return UpstreamAuthError(f"The Google account must be verified in a browser (HTTP 403 {reason}).")
    return gemini.decode_error(status, body, headers)


def _too_many(status: int, error: Mapping[str, Any], headers: Mapping[str, str], now: datetime) -> UpstreamError:
    info = _error_info(error)
    reason = str(info.get("reason") or "")
    message = str(error.get("message") or "")
    delay = reset_delay(error, headers, now)
    label = f"HTTP {status} {reason or error.get('status') or ''}".rstrip()
    if reason == "MODEL_CAPACITY_EXHAUSTED" or any(m in message.lower() for m in _CAPACITY_MARKERS):
        return UpstreamOverloadedError(
            f"The model has no capacity right now ({label}).", retry_after=max(delay or CAPACITY_REST, MIN_REST)
        )
    if reason in _EXHAUSTED_REASONS:
        exhausted = True
    elif reason == "RATE_LIMIT_EXCEEDED":
        exhausted = False
    elif delay is not None:
        exhausted = delay >= SHORT_LIMIT
    else:
        exhausted = "quota" in message.lower()
    rest = max(delay, MIN_REST) if delay is not None else (EXHAUSTED_REST if exhausted else None)
    what = "quota for this model is exhausted" if exhausted else "rate limit was hit"
    return UpstreamRateLimitedError(
        f"The Antigravity account's {what} ({label}).", retry_after=rest, exhausted=exhausted
    )


def reset_delay(error: Mapping[str, Any], headers: Mapping[str, str], now: datetime) -> float | None:
    """Seconds until the upstream says to try again, from the first source that states it."""
    header = gemini.retry_after_header(headers)
    if header is not None:
        return header
    for detail in _details(error, "RetryInfo"):
        delay = gemini.parse_duration(detail.get("retryDelay"))
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


def parse_go_duration(value: Any) -> float | None:
    """A Go duration string (``479.417207ms``, ``1.5s``, ``1h2m3s``) in seconds, or None."""
    if not isinstance(value, str) or not value:
        return None
    total = 0.0
    end = 0
    for match in _GO_DURATION.finditer(value):
        if match.start() != end:
            return None
        total += float(match.group(1)) * _GO_UNITS[match.group(2)]
        end = match.end()
    return total if end == len(value) else None


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
