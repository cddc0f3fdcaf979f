"""Anthropic error bodies: rendering apipod's errors for clients, and reading an upstream's error answer."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson

from apipod.dialects.upstream_faults import upstream_error
from apipod.domain.errors import UpstreamError

_MAX_MESSAGE = 500
# Anthropic reports an account without credit as a 400 invalid_request_error; only its text says so.
_NO_CREDIT = ("credit balance", "quota", "billing")


def encode_error(
    *, status: int, kind: str, message: str, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    """``{"type": "error", "error": {type, message}}``. Anthropic's shape has no ``param`` or ``code``;
    they are accepted for parity with the other dialects and dropped."""
    return {"type": "error", "error": {"type": kind, "message": message}}


def decode_error(status: int, body: bytes, headers: Mapping[str, str], *, now: datetime | None = None) -> UpstreamError:
    """An upstream's error answer as the domain error that decides retry, failover and the client's status
    (``apipod.dialects.upstream_faults``); this part only reads Anthropic's ``error.type`` and
    ``message``."""
    kind, message = _parse(body)
    return upstream_error(
        status, codes=(kind,), hints=no_credit_hint(message), message=message, headers=headers, now=now
    )


def no_credit_hint(message: str) -> tuple[str, ...]:
    """``billing_error`` when the text says the account is out of credit, whatever its type."""
    lowered = message.lower()
    return ("billing_error",) if any(words in lowered for words in _NO_CREDIT) else ()


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
