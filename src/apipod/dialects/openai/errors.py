"""OpenAI error bodies: rendering apipod's errors for clients, and reading an upstream's error answer
(docs/protocols/openai-chat.md §7)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson

from apipod.dialects.upstream_faults import upstream_error
from apipod.domain.errors import UpstreamError

_MAX_MESSAGE = 500


def encode_error(
    *, status: int, kind: str, message: str, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    """``{"error": {message, type, param, code}}``; ``status`` is the caller's business (the HTTP line)."""
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def decode_error(status: int, body: bytes, headers: Mapping[str, str], *, now: datetime | None = None) -> UpstreamError:
    """An upstream's error answer as the domain error that decides retry, failover and the client's status
    (``apipod.dialects.upstream_faults``); this part only reads OpenAI's ``error.type``, ``code`` and
    ``message``."""
    kind, code, message = _parse(body)
    return upstream_error(status, codes=(kind, code), message=message, headers=headers, now=now)


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
