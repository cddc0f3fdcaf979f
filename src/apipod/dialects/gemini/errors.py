"""Gemini error answers -> domain errors (docs/protocols/gemini.md §6).

This part only reads Gemini's error shape: the rpc ``status``, ``ErrorInfo.reason``, which quota in
``QuotaFailure`` ran out (a per-day quota means the account is spent until tomorrow, not briefly rate
limited) and ``RetryInfo``; ``apipod.dialects.upstream_faults`` decides. A dead or unusable key
(``API_KEY_INVALID``, ``FAILED_PRECONDITION``) comes as a 400 but is the account's fault.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs
import orjson

from apipod.dialects.upstream_faults import parse_duration, upstream_error
from apipod.domain.errors import UpstreamError

__all__ = ["GeminiError", "decode_error", "parse_duration", "read_error"]

_MAX_MESSAGE = 500
_TYPE_PREFIX = "type.googleapis.com/google.rpc."


@attrs.frozen
class GeminiError:
    """What a Gemini error object says, for the shared policy. ``codes``: the rpc status and the
    ErrorInfo reason (shown in the client's message); ``hints``: ``daily_quota`` for a per-day quota."""

    rpc_status: str
    reason: str
    message: str
    details: tuple[Mapping[str, Any], ...]
    hints: tuple[str, ...]

    @property
    def codes(self) -> tuple[str, str]:
        return self.rpc_status, self.reason


def decode_error(status: int, body: bytes, headers: Mapping[str, str], *, now: datetime | None = None) -> UpstreamError:
    """An upstream's error answer as the domain error that decides retry, failover and the client's status."""
    error = read_error(_error_object(body))
    message = error.message or _fallback_text(body)
    return upstream_error(
        status,
        codes=error.codes,
        hints=error.hints,
        message=message,
        headers=headers,
        now=now,
        details=error.details,
    )


def read_error(error: Mapping[str, Any]) -> GeminiError:
    """A Gemini ``error`` object (also an in-stream one): its rpc status, text, details and hints (the
    ErrorInfo reason, ``daily_quota`` for a per-day quota)."""
    raw = error.get("details")
    details = tuple(d for d in raw if isinstance(d, Mapping)) if isinstance(raw, list) else ()
    return GeminiError(
        rpc_status=str(error.get("status") or ""),
        reason=_reason(details) or "",
        message=str(error.get("message") or "")[:_MAX_MESSAGE],
        details=details,
        hints=("daily_quota",) if _per_day(details) else (),
    )


def _error_object(body: bytes) -> Mapping[str, Any]:
    try:
        parsed = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        return {}
    if isinstance(parsed, list) and parsed:  # the non-SSE streaming method wraps answers in an array
        parsed = parsed[0]
    error = parsed.get("error") if isinstance(parsed, Mapping) else None
    return error if isinstance(error, Mapping) else {}


def _fallback_text(body: bytes) -> str:
    return body[:_MAX_MESSAGE].decode("utf-8", "replace").strip()


def _typed(details: tuple[Mapping[str, Any], ...], name: str) -> list[Mapping[str, Any]]:
    return [d for d in details if d.get("@type") == _TYPE_PREFIX + name]


def _per_day(details: tuple[Mapping[str, Any], ...]) -> bool:
    for detail in _typed(details, "QuotaFailure"):
        for violation in detail.get("violations") or ():
            if not isinstance(violation, Mapping):
                continue
            quota = f"{violation.get('quotaId') or ''} {violation.get('quotaMetric') or ''}".lower()
            if "perday" in quota or "per_day" in quota:
                return True
    return False


def _reason(details: tuple[Mapping[str, Any], ...]) -> str | None:
    for detail in _typed(details, "ErrorInfo"):
        reason = detail.get("reason")
        if isinstance(reason, str):
            return reason
    return None
